//! The README's examples run as written: its configuration example serves (a World
//! client authenticates on the world it names), and each shell command in it is run, or,
//! where running it here would take too long or a machine of its own (the test suite
//! itself, a Docker build, a benchmark), what it names exists.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::json;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The fenced blocks of `lang` in `text`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_owned())
        .collect()
}

/// The commands of a shell block: continuation lines joined, comments dropped.
fn commands(block: &str) -> Vec<String> {
    block
        .replace("\\\n", " ")
        .lines()
        .map(|line| line.split(" #").next().unwrap().trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

const SECRET: &str = "a-readme-secret-of-at-least-32-bytes!!";

/// Runs `command` in `sh` from the repository's root, with the freshly built binary
/// first on PATH as `turntable`, `$SECRET` set and `$I` 0; exit code and output.
fn sh(command: &str) -> (i32, String, String) {
    let bin = Path::new(env!("CARGO_BIN_EXE_turntable"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .env("SECRET", SECRET)
        .env("I", "0")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_runs(command: &str) -> String {
    let (code, out, err) = sh(command);
    assert_eq!(code, 0, "`{command}` failed: {err}");
    out
}

/// A script the README names exists, is executable, and parses.
fn assert_script(path: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
    assert!(mode & 0o111 != 0, "{path} is not executable");
    assert_runs(&format!("bash -n {path}"));
}

#[test]
fn every_shell_command_in_the_readme_runs_or_names_what_exists() {
    let mut seen = 0;
    for block in blocks(&readme(), "sh") {
        for command in commands(&block) {
            seen += 1;
            let words: Vec<&str> = command.split_whitespace().collect();
            match words[0] {
                // Builds and runs the server: the same binary checks the same settings.
                "cargo" if command.starts_with("cargo run --release -- serve") => {
                    let rest = command.trim_start_matches("cargo run --release -- ");
                    assert_runs(&format!("turntable {rest} --check"));
                }
                "cargo" if command.starts_with("cargo bench --bench ") => {
                    let bench = format!("benches/{}.rs", words[3]);
                    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(&bench).exists());
                }
                "target/release/turntable" => {
                    let rest = command.trim_start_matches("target/release/turntable");
                    assert_runs(&format!("turntable{rest} --check"));
                }
                "turntable" => {
                    let printed = assert_runs(&command);
                    assert!(!printed.trim().is_empty(), "`{command}` printed nothing");
                    if words[1] == "token" {
                        let auth = turntable::auth::Auth::new(
                            &turntable::auth::Secret::new(SECRET.into()).unwrap(),
                        );
                        let who = auth
                            .verify(printed.trim())
                            .expect("a token the server accepts");
                        assert_eq!(&*who.user, "1:42");
                    }
                }
                script if script.starts_with("scripts/") => assert_script(script),
                "docker" => {
                    for file in words.iter().filter_map(|w| {
                        w.strip_prefix("seccomp=")
                            .or(w.starts_with("deploy/").then_some(*w))
                    }) {
                        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
                        assert!(path.exists(), "`{command}` names {file}, which is missing");
                    }
                }
                "valgrind" => {
                    assert!(
                        command.contains("target/release/deps/keepalive-"),
                        "{command}"
                    );
                }
                other => {
                    panic!("the README runs `{other}`, which this test does not know: {command}")
                }
            }
        }
    }
    assert!(seen >= 8, "the README's shell commands were found ({seen})");
}

#[test]
fn the_readme_config_example_serves() {
    let example = blocks(&readme(), "toml")
        .into_iter()
        .find(|block| block.starts_with("# turntable.toml"))
        .expect("the README's turntable.toml example");
    let dir = std::env::temp_dir().join(format!("turntable-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("turntable.toml");
    std::fs::write(&file, &example).unwrap();
    // As written but for the port, which a test cannot hold fixed (flags override the
    // file): every interface, as the example says.
    let (server, line) = common::spawn_binary(&[
        "serve",
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert!(line.contains("(8 shards)"), "{line}");
    let port: u16 = line
        .split_whitespace()
        .nth(2)
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let secret = example
        .lines()
        .find_map(|l| l.strip_prefix("auth_secret = "))
        .unwrap()
        .trim_matches('"');
    let auth = turntable::auth::Auth::new(&turntable::auth::Secret::new(secret.into()).unwrap());
    let token = auth.issue(
        "ann",
        Some("Ann"),
        turntable::auth::now_secs() + 60,
        Default::default(),
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut world = common::Client::connect(addr, "/ws/world/arena");
    world.send(json!(["authenticate", {"token": token}]));
    let answer = world.recv();
    assert_eq!(answer[0], "authenticated", "{answer}");
    assert_eq!(answer[1]["world"]["id"], "arena", "{answer}");
    // SAFETY: kill sends a signal to the child we started; no memory is involved.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    assert!(server.wait_with_output().unwrap().status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
