//! One table of every result `scripts/bench.sh` has written (`reports/bench/*.json`),
//! a row per run: what it sustained, the server's CPU per unit of work, latency
//! percentiles, memory per idle connection, the generator's own CPU and whether
//! nothing was lost. `scripts/bench.sh all` prints it after running every scenario.

use std::io;
use std::path::Path;

use serde_json::Value;

/// Prints the table for the results in `dir`, sorted by file name.
pub fn print(dir: &Path) -> io::Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    println!(
        "| run | sustained | server CPU | latency p50 / p99 / p99.9 (µs) | RSS per idle connection | generator CPU | check |"
    );
    println!("|---|---|---|---|---|---|---|");
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let Ok(result) = serde_json::from_str::<Value>(&text) else {
            eprintln!("skipping {}: not a result", path.display());
            continue;
        };
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        println!("| {name} | {} |", row(&result).join(" | "));
    }
    Ok(())
}

/// The cells after the run's name.
fn row(r: &Value) -> [String; 6] {
    let num = |key: &str| r.get(key).and_then(Value::as_f64);
    let sustained = if let Some(n) = num("delivered_per_s") {
        format!("{n:.0} deliveries/s")
    } else if let Some(n) = num("connections_per_s") {
        format!("{n:.0} connections/s")
    } else if let Some(n) = num("rate") {
        format!("{n} publications/s")
    } else {
        String::new()
    };
    let cpu = [
        ("server_cpu_us_per_delivery", "delivery"),
        ("server_cpu_us_per_connection", "connection"),
        ("server_cpu_us_per_notification", "notification"),
        ("writer_cpu_us_per_write", "write (kernel only)"),
    ]
    .iter()
    .find_map(|(key, unit)| num(key).map(|us| format!("{us:.2} µs per {unit}")))
    .unwrap_or_default();
    let latency = match (num("p50_us"), num("p99_us"), num("p999_us")) {
        (Some(a), Some(b), Some(c)) => format!("{a} / {b} / {c}"),
        _ => String::new(),
    };
    let memory = num("rss_bytes_per_connection")
        .map(|b| format!("{b:.0} B"))
        .unwrap_or_default();
    let generator = num("loadgen_cpu_share")
        .map(|share| format!("{:.0} %", share * 100.0))
        .unwrap_or_default();
    let check = if let Some(lost) = num("lost") {
        format!("{lost} lost")
    } else if let (Some(right), Some(users)) = (num("correct_watchers"), num("users")) {
        format!("{right} of {users} watchers right")
    } else if let (Some(got), Some(sent)) = (num("received"), num("sent")) {
        format!("{got} of {sent} received")
    } else if let Some(failed) = num("failed_connections") {
        format!("{failed} connections failed")
    } else {
        String::new()
    };
    [sustained, cpu, latency, memory, generator, check]
}
