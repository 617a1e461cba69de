//! Running the Node.js interop harnesses in `tests/interop/` (real npm clients) from the
//! integration tests. `scripts/setup-node.sh` (idempotent) installs the pinned packages
//! into `.cache/node` first, so these tests need `node` (>= 18) and `npm` on PATH, and
//! the network on the first run.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `scripts/setup-node.sh` once per test process; panics with its output if it fails.
fn setup() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let done = DONE.get_or_init(|| {
        for tool in ["node", "npm"] {
            if let Err(e) = Command::new(tool).arg("--version").output() {
                return Err(format!(
                    "`{tool} --version` failed ({e}): the npm interop tests need Node.js >= 18 \
                     with npm on PATH"
                ));
            }
        }
        super::setup_script("setup-node.sh").map(drop)
    });
    if let Err(message) = done {
        panic!("{message}");
    }
}

/// Installs the interop packages, then runs `node tests/interop/<script> <args>` (see
/// [`run_script`]).
pub fn run_harness(script: &str, args: &[&str]) {
    setup();
    run_script(&Path::new("tests/interop").join(script), args);
}

/// Runs `node <script> <args>` (a path from the repository's root) and asserts that
/// every check passed (exit 0 and a `N passed, 0 failed` summary), printing its output
/// otherwise.
pub fn run_script(script: &Path, args: &[&str]) {
    let started = Instant::now();
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}) after {:.1?}:\n{stdout}{stderr}",
        script.display(),
        out.status,
        started.elapsed()
    );
    assert!(
        stdout.contains(" passed, 0 failed"),
        "no summary from {}:\n{stdout}{stderr}",
        script.display()
    );
}
