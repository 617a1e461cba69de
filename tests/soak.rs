//! The soak harness stays working: `scripts/soak.sh` with a small population for half
//! a minute, on this build's binaries (`--bin-dir`, no release build), passes with
//! churn under way, nothing lost, and a sample of the server's RSS each second. The
//! full run (15 000 connections for 10 minutes) is `scripts/soak.sh` by hand.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_soak_passes_with_churn_and_a_sample_each_second() {
    let root = env!("CARGO_MANIFEST_DIR");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_loadgen")).parent().unwrap();
    assert!(
        bin_dir.join("turntable").exists(),
        "the server is built beside loadgen"
    );
    let out = std::env::temp_dir().join(format!("turntable-soak-{}", std::process::id()));
    let run = Command::new(Path::new(root).join("scripts/soak.sh"))
        .args(["--connections", "500", "--minutes", "0.5", "--out"])
        .arg(&out)
        .arg("--bin-dir")
        .arg(bin_dir)
        .output()
        .expect("scripts/soak.sh runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "soak failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("verdict: PASS"), "{stdout}");

    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("soak.json")).unwrap())
            .expect("soak.json is the run's JSON line");
    let n = |key: &str| {
        result[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {result}"))
    };
    assert_eq!(
        (n("lost"), n("failed_connects"), n("server_closes")),
        (0, 0, 0)
    );
    // 1 % of 500 a second for 30 s: some 150 drops, each of the three kinds.
    for kind in ["drops_closed", "drops_mid_message", "drops_reset"] {
        assert!(n(kind) >= 10, "{kind} in {result}");
    }
    assert!(
        n("connects") >= 600 && n("published") > 0 && n("delivered") > 0,
        "{result}"
    );
    assert!(
        result["rss_ratio"]
            .as_f64()
            .is_some_and(|r| (0.95..=1.05).contains(&r))
    );

    let csv = std::fs::read_to_string(out.join("rss.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("t_s,rss_kib,"), "{}", lines[0]);
    assert_eq!(lines.len(), 1 + 31, "a header and seconds 0 to 30");
    std::fs::remove_dir_all(&out).unwrap();
}
