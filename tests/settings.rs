//! The settings as a user meets them, through the built binary: `turntable serve --help`
//! and the README's settings table agree, the sources layer as documented (defaults <
//! file < environment < flags), durations take human forms, and a bad value stops the
//! server with one line that names the setting and where it came from.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{Client, binary, run_binary, run_binary_with_env, spawn_binary};
use tungstenite::Message;

/// What one flag's row says: its TOML key, environment variable and default ("—" where
/// there is none).
#[derive(Debug, PartialEq, Eq)]
struct Row {
    key: String,
    env: String,
    default: String,
}

/// The flags `turntable serve --help` lists (but `--help`), each with what its help
/// text says.
fn help_rows() -> BTreeMap<String, Row> {
    let (code, help, err) = run_binary(&["serve", "--help"]);
    assert_eq!(code, 0, "{err}");
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let trimmed = trimmed.strip_prefix("-h, ").unwrap_or(trimmed);
        if trimmed.starts_with("--") {
            let (flag, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
            entries.push((flag.to_owned(), rest.to_owned()));
        } else if let Some((_, text)) = entries.last_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    let bracket = |text: &str, label: &str| -> String {
        let Some(start) = text.find(&format!("[{label}: ")) else {
            return "—".to_owned();
        };
        let rest = &text[start + label.len() + 3..];
        rest[..rest.find(']').expect("closing bracket")].to_owned()
    };
    entries
        .into_iter()
        .filter(|(flag, _)| flag != "--help")
        .map(|(flag, text)| {
            let env = bracket(&text, "env");
            let key = if env == "—" || flag == "--config" {
                "—".to_owned()
            } else {
                flag.trim_start_matches("--").replace('-', "_")
            };
            let row = Row {
                key,
                env,
                default: bracket(&text, "default"),
            };
            (flag, row)
        })
        .collect()
}

/// The rows of the README's settings table: `| flag | key | environment | default | meaning |`.
fn readme_rows() -> BTreeMap<String, Row> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split_once("\n## Settings\n")
        .expect("a Settings section")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let plain = |cell: &str| cell.trim().replace('`', "");
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 5, "a row of 5 cells: {line}");
        let row = Row {
            key: plain(cells[1]),
            env: plain(cells[2]),
            default: plain(cells[3]),
        };
        assert!(rows.insert(plain(cells[0]), row).is_none(), "twice: {line}");
    }
    rows
}

#[test]
fn the_readme_settings_table_matches_serve_help() {
    let help = help_rows();
    let readme = readme_rows();
    assert!(
        help.len() > 20,
        "parsed too few flags from --help: {help:?}"
    );
    let missing: Vec<&String> = help.keys().filter(|f| !readme.contains_key(*f)).collect();
    let extra: Vec<&String> = readme.keys().filter(|f| !help.contains_key(*f)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "in --help but not the README: {missing:?}; in the README but not --help: {extra:?}"
    );
    for (flag, row) in &help {
        assert_eq!(
            &readme[flag], row,
            "{flag}: the README (left) and --help disagree"
        );
    }
}

/// A scratch directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("turntable-settings-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `turntable serve --check` with `args` and `env`: the settings it prints.
fn checked(args: &[&str], env: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = vec!["serve", "--check"];
    all.extend_from_slice(args);
    let (code, out, err) = run_binary_with_env(&all, env);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    out.lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn sources_layer_defaults_then_file_then_environment_then_flags() {
    let dir = scratch("layers");
    let file = write(
        &dir,
        "turntable.toml",
        "idle_timeout = \"11s\"\nhandshake_timeout = \"12s\"\nshutdown_grace = \"13s\"\n",
    );
    let env = [
        ("TURNTABLE_HANDSHAKE_TIMEOUT", "22s"),
        ("TURNTABLE_SHUTDOWN_GRACE", "23s"),
    ];
    let settings = checked(&["--config", &file, "--shutdown-grace", "33s"], &env);
    assert_eq!(settings["talker_idle_grace"], "\"30s\"", "the default");
    assert_eq!(
        settings["idle_timeout"], "\"11s\"",
        "the file over the default"
    );
    assert_eq!(
        settings["handshake_timeout"], "\"22s\"",
        "the environment over the file"
    );
    assert_eq!(
        settings["shutdown_grace"], "\"33s\"",
        "the flag over the environment"
    );

    // TURNTABLE_CONFIG names the file when --config does not; empty variables are unset.
    let env = [
        ("TURNTABLE_CONFIG", file.as_str()),
        ("TURNTABLE_IDLE_TIMEOUT", ""),
    ];
    assert_eq!(checked(&[], &env)["idle_timeout"], "\"11s\"");

    // The variables that predate the others still work, and secrets are never printed.
    let secret = "a-secret-that-is-long-enough-for-hs256";
    let (code, out, _) = run_binary_with_env(
        &["serve", "--check"],
        &[
            ("TURNTABLE_AUTH_SECRET", secret),
            ("TURNTABLE_API_KEY", "an-api-key-for-the-tests"),
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("# auth_secret is set (not shown)\n"), "{out}");
    assert!(out.contains("# api_key is set (not shown)\n"), "{out}");
    assert!(
        !out.contains(secret) && !out.contains("an-api-key"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn durations_take_human_forms_in_the_file_flags_and_environment() {
    let dir = scratch("durations");
    let file = write(&dir, "t.toml", "talker_idle_grace = \"1m30s\"\n");
    let settings = checked(
        &[
            "--config",
            &file,
            "--talker-ping-timeout",
            "500ms",
            "--socketcluster-ping-timeout",
            "2m",
        ],
        &[("TURNTABLE_SOCKJS_DISCONNECT_DELAY", "1h 30m")],
    );
    assert_eq!(settings["talker_idle_grace"], "\"1m 30s\"");
    assert_eq!(settings["talker_ping_timeout"], "\"500ms\"");
    assert_eq!(settings["socketcluster_ping_timeout"], "\"2m\"");
    assert_eq!(settings["sockjs_disconnect_delay"], "\"1h 30m\"");

    // The server runs with a duration from the file: a silent client is closed after it.
    let file = write(
        &dir,
        "idle.toml",
        "listen = \"127.0.0.1:0\"\nshards = 1\npin = false\nidle_timeout = \"600ms\"\n",
    );
    let (mut child, line) = spawn_binary(&["serve", "--config", &file]);
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let mut c = Client::connect(addr, "/turntable");
    std::thread::sleep(Duration::from_millis(1000));
    let close = loop {
        match c.ws.read() {
            Ok(Message::Close(Some(frame))) => break frame,
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (1001, "idle timeout")
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());

    // A bare number is refused, not guessed at.
    let (code, _, err) = run_binary(&["serve", "--idle-timeout", "30"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "turntable: invalid setting idle_timeout: \"30\" (a duration needs a unit: 30s, 30ms, \
         30m or 30h)\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_toml_value_reports_the_file_the_line_and_the_key() {
    let dir = scratch("toml");
    let run = |text: &str| {
        let file = write(&dir, "config.toml", text);
        let (code, out, err) = run_binary(&["serve", "--config", &file]);
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        err.replace(&file, "config.toml")
    };
    assert_eq!(
        run("shards = 1\n# the next line is wrong\nidle_timeout = true\n"),
        "turntable: config.toml:3: idle_timeout: invalid type: boolean `true`, expected a \
         duration with a unit, such as \"30s\"\n"
    );
    assert_eq!(
        run("idle_timeout = 30\n"),
        "turntable: config.toml:1: idle_timeout: invalid type: integer `30`, expected a \
         duration with a unit, such as \"30s\"\n"
    );
    assert_eq!(
        run("shards = 1\n\nmax_message_bytes = 10\n"),
        "turntable: config.toml:3: invalid setting max_message_bytes: 10 (must be 126 to \
         67108864)\n"
    );
    assert_eq!(
        run("shards = 1\nping_timeout = \"1s\"\n"),
        "turntable: config.toml:2: ping_timeout: unknown setting (did you mean \
         talker_ping_timeout or socketcluster_ping_timeout?)\n"
    );
    assert!(
        run("shards = 1\nlisten = 127.0.0.1:0\n").starts_with("turntable: config.toml:2: "),
        "a syntax error gives its line"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_invalid_setting_stops_the_server_with_one_line_and_exit_code_2() {
    let expect = |args: &[&str], env: &[(&str, &str)], line: &str| {
        let (code, out, err) = run_binary_with_env(args, env);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (2, "", line),
            "{args:?} {env:?}"
        );
    };
    expect(
        &["serve", "--max-message-bytes", "10"],
        &[],
        "turntable: invalid setting max_message_bytes: 10 (must be 126 to 67108864)\n",
    );
    expect(
        &["serve"],
        &[("TURNTABLE_MAX_MESSAGE_BYTES", "10")],
        "turntable: TURNTABLE_MAX_MESSAGE_BYTES: invalid setting max_message_bytes: 10 (must \
         be 126 to 67108864)\n",
    );
    expect(
        &["serve", "--shards", "two"],
        &[],
        "turntable: invalid setting shards: \"two\" (expected a whole number)\n",
    );
    expect(
        &["serve", "--pin=maybe"],
        &[],
        "turntable: invalid setting pin: \"maybe\" (expected true or false)\n",
    );
    expect(
        &["serve", "--worlds", "ok,not/ok"],
        &[],
        "turntable: invalid setting worlds: ok,not/ok (\"not/ok\" is not 1 to 64 letters, \
         digits, '-' or '_')\n",
    );
    expect(
        &[
            "serve",
            "--socketcluster-ping-interval",
            "5s",
            "--socketcluster-ping-timeout",
            "5s",
        ],
        &[],
        "turntable: invalid setting socketcluster_ping_interval: 5s (must be shorter than \
         socketcluster_ping_timeout, 5s)\n",
    );
    expect(
        &[
            "serve",
            "--connection-rate-exempt",
            "10.0.0.0/8,10.0.0.0/33",
        ],
        &[],
        "turntable: invalid setting connection_rate_exempt: 10.0.0.0/8,10.0.0.0/33 \
         (\"10.0.0.0/33\" is not an address block: ADDRESS or ADDRESS/PREFIX, as 10.0.0.0/8 \
         or ::1)\n",
    );
    // A refused secret is shown by its length only.
    expect(
        &["serve"],
        &[("TURNTABLE_AUTH_SECRET", "too-short")],
        "turntable: TURNTABLE_AUTH_SECRET: invalid setting auth_secret: 9 bytes (must be at \
         least 32 bytes)\n",
    );
}

#[test]
fn the_old_names_are_gone() {
    for flag in [
        "--ping-timeout",
        "--sc-ping-interval",
        "--sc-ping-timeout",
        "--sockjs-heartbeat",
        "--world",
        "--max-connections-per-user",
    ] {
        let (code, _, err) = run_binary(&["serve", flag, "1s"]);
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(
            err.contains(&format!("unexpected argument '{flag}'")),
            "{flag}: {err}"
        );
    }
}

#[test]
fn help_shows_each_setting_with_its_default_and_variable() {
    let out = binary(
        &["serve", "--help"],
        &[("TURNTABLE_API_KEY", "a-key-that-must-not-show")],
    )
    .output()
    .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains(
            "Largest WebSocket message accepted; bigger ones close the connection with 1009 \
             [default: 65536] [env: TURNTABLE_MAX_MESSAGE_BYTES]"
        ),
        "{help}"
    );
    assert!(!help.contains("a-key-that-must-not-show"), "{help}");
}

/// The names of the threads of process `pid`.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[test]
fn without_hook_settings_no_hook_thread_runs() {
    let (mut child, line) = spawn_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "2",
        "--pin=false",
    ]);
    assert!(line.starts_with("listening on"), "{line}");
    let names = thread_names(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(names.iter().any(|n| n.starts_with("shard-1")), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("turntable-hook")),
        "{names:?}"
    );
}
