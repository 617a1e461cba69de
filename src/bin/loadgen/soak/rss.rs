//! The server's resident memory over the run: one sample a second, kept for the
//! verdict and written to a CSV file as it is taken (with the churn counters beside it,
//! so a chart can set the memory against the work).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// The figures of one second.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    pub rss_bytes: u64,
    /// The server's CPU time so far.
    pub server_cpu: Duration,
    /// Connections set up and not dropped.
    pub open: usize,
    pub connects: u64,
    pub drops: u64,
    pub published: u64,
    pub delivered: u64,
}

/// The samples so far and the CSV file they go to.
pub struct RssLog {
    samples: Vec<Sample>,
    csv: BufWriter<File>,
}

impl RssLog {
    /// Creates (or truncates) the CSV file at `path` and writes its header.
    pub fn create(path: &Path) -> io::Result<RssLog> {
        let mut csv = BufWriter::new(File::create(path)?);
        writeln!(
            csv,
            "t_s,rss_kib,server_cpu_s,open,connects,drops,published,delivered"
        )?;
        csv.flush()?;
        Ok(RssLog {
            samples: Vec::new(),
            csv,
        })
    }

    /// Keeps `s` and writes its line (flushed, so the file is whole at any moment).
    pub fn push(&mut self, s: Sample) -> io::Result<()> {
        writeln!(
            self.csv,
            "{:.1},{},{:.3},{},{},{},{},{}",
            s.t,
            s.rss_bytes / 1024,
            s.server_cpu.as_secs_f64(),
            s.open,
            s.connects,
            s.drops,
            s.published,
            s.delivered
        )?;
        self.csv.flush()?;
        self.samples.push(s);
        Ok(())
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

/// The median RSS of the samples taken from `from` up to (not including) `to` seconds;
/// `None` if there are none.
pub fn median_rss(samples: &[Sample], from: f64, to: f64) -> Option<u64> {
    let mut rss: Vec<u64> = samples
        .iter()
        .filter(|s| (from..to).contains(&s.t))
        .map(|s| s.rss_bytes)
        .collect();
    rss.sort_unstable();
    rss.get(rss.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: f64, rss_bytes: u64) -> Sample {
        Sample {
            t,
            rss_bytes,
            ..Sample::default()
        }
    }

    #[test]
    fn the_median_ignores_a_spike_and_samples_outside_the_window() {
        let samples = [
            at(0.0, 1),
            at(1.0, 10),
            at(2.0, 500),
            at(3.0, 12),
            at(4.0, 99),
        ];
        assert_eq!(median_rss(&samples, 1.0, 4.0), Some(12));
        assert_eq!(median_rss(&samples, 5.0, 9.0), None);
    }

    #[test]
    fn the_csv_has_a_header_and_a_line_per_sample() {
        let path = std::env::temp_dir().join(format!("soak-rss-{}.csv", std::process::id()));
        let mut log = RssLog::create(&path).unwrap();
        log.push(at(1.0, 2048)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("t_s,rss_kib,"));
        assert!(lines[1].starts_with("1.0,2,"));
    }
}
