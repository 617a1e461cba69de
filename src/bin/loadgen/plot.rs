//! A latency distribution as a small self-contained SVG chart: latency (log scale)
//! against percentile, drawn "HdrHistogram style" so the tail is visible — the x axis
//! is 1/(1-q), marked at 50 %, 90 %, 99 %, 99.9 % and 99.99 %.

use std::fmt::Write;

use hdrhistogram::Histogram;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const MARGIN: f64 = 60.0;

/// The chart of `hist` (microseconds) as SVG text.
pub fn latency_svg(hist: &Histogram<u64>, title: &str) -> String {
    let max_x = (1.0f64 / (1.0 - 0.9999)).log10();
    let max_us = hist.max().max(2) as f64;
    let (min_y, max_y) = (1.0f64.log10(), max_us.log10().ceil());
    let x = |q: f64| MARGIN + (1.0 / (1.0 - q)).log10() / max_x * (WIDTH - 2.0 * MARGIN);
    let y = |us: f64| {
        HEIGHT - MARGIN - (us.max(1.0).log10() - min_y) / (max_y - min_y) * (HEIGHT - 2.0 * MARGIN)
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="14">publish → delivery latency: {}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (q, label) in [
        (0.0, "0%"),
        (0.5, "50%"),
        (0.9, "90%"),
        (0.99, "99%"),
        (0.999, "99.9%"),
        (0.9999, "99.99%"),
    ] {
        let px = x(q);
        let _ = write!(
            svg,
            r##"<line x1="{px}" y1="{}" x2="{px}" y2="{}" stroke="#ddd"/><text x="{px}" y="{}" text-anchor="middle">{label}</text>"##,
            MARGIN,
            HEIGHT - MARGIN,
            HEIGHT - MARGIN + 18.0
        );
    }
    let mut decade = 1.0;
    while decade <= 10f64.powf(max_y) {
        let py = y(decade);
        let label = if decade >= 1000.0 {
            format!("{} ms", decade / 1000.0)
        } else {
            format!("{decade} µs")
        };
        let _ = write!(
            svg,
            r##"<line x1="{MARGIN}" y1="{py}" x2="{}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
            WIDTH - MARGIN,
            MARGIN - 6.0,
            py + 4.0
        );
        decade *= 10.0;
    }
    let points: Vec<String> = (0..=400)
        .map(|i| 1.0 - 10f64.powf(-(i as f64) / 100.0))
        .map(|q: f64| {
            let us = hist.value_at_quantile(q) as f64;
            format!("{:.1},{:.1}", x(q), y(us))
        })
        .collect();
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="{}"/>"##,
        points.join(" ")
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text></svg>"#,
        WIDTH / 2.0,
        HEIGHT - 12.0
    );
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
