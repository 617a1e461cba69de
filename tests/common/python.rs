//! Running the Python interop harnesses in `tests/interop/` (e.g. the backend-bus backend
//! on redis-py) from the integration tests. `scripts/setup-python.sh` (idempotent) makes
//! their venv in `.cache/python` first, so these tests need `python3` with `venv`, and
//! the network on the first run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The venv's interpreter, made by `scripts/setup-python.sh` once per test process;
/// panics with the script's output if it fails.
fn interpreter() -> &'static PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let python = PYTHON.get_or_init(|| {
        let stdout = super::setup_script("setup-python.sh")?;
        stdout
            .lines()
            .last()
            .map(PathBuf::from)
            .ok_or_else(|| "scripts/setup-python.sh printed no interpreter".to_owned())
    });
    python
        .as_ref()
        .unwrap_or_else(|message| panic!("{message}"))
}

/// A running harness whose stdout is one JSON value per line; killed when dropped.
pub struct Harness {
    child: Child,
    lines: Receiver<String>,
}

impl Harness {
    /// Starts `python tests/interop/<script> <args>`; its stderr goes to the test's.
    pub fn start(script: &str, args: &[&str]) -> Harness {
        let mut child = Command::new(interpreter())
            .arg(PathBuf::from("tests/interop").join(script))
            .args(args)
            .current_dir(ROOT)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python harness");
        let lines = read_lines(child.stdout.take().unwrap());
        Harness { child, lines }
    }

    /// The next value the harness printed, within `patience`.
    pub fn recv(&mut self, patience: Duration) -> Value {
        match self.lines.recv_timeout(patience) {
            Ok(line) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("the harness printed {line:?}: {e}")),
            Err(RecvTimeoutError::Timeout) => panic!("the harness printed nothing in {patience:?}"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the harness ended: {:?}", self.child.wait())
            }
        }
    }

    /// Waits for the harness to end by itself; its exit code.
    pub fn wait(&mut self, patience: Duration) -> i32 {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the harness") {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the harness did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of `stdout`, read on a thread of their own.
fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
