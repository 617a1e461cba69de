//! The deployment files in deploy/: what can be checked on this machine. The systemd
//! unit passes `systemd-analyze verify` and its command lines are the binary's; the
//! seccomp profile allows io_uring; the image runs as a non-root user. (Building the
//! image needs a Docker engine, which this machine does not have.)

mod common;

use std::path::Path;
use std::process::Command;

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(name),
    )
    .unwrap()
}

/// The value of `Key=` in a unit file (the last one given).
fn directive<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .next_back()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = deploy_file("turntable.service");
    assert_eq!(directive(&unit, "LimitNOFILE"), Some("1048576"));
    assert_eq!(directive(&unit, "LimitMEMLOCK"), Some("infinity"));
    assert_eq!(directive(&unit, "KillSignal"), Some("SIGTERM"));
    let stop: u64 = directive(&unit, "TimeoutStopSec")
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(stop > 3, "TimeoutStopSec must outlast shutdown_grace");

    // The unit as installed, with this build's binary and a config file of its own.
    let dir = std::env::temp_dir().join(format!("turntable-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("turntable.toml");
    std::fs::write(&config, "shards = 1\n").unwrap();
    let local = unit
        .replace("/usr/local/bin/turntable", env!("CARGO_BIN_EXE_turntable"))
        .replace("/etc/turntable/turntable.toml", config.to_str().unwrap());
    let path = dir.join("turntable.service");
    std::fs::write(&path, &local).unwrap();

    // The command lines it runs are valid for the binary (serve checked with --check).
    for key in ["ExecStartPre", "ExecStart"] {
        let line = directive(&local, key).unwrap();
        let mut words: Vec<&str> = line.split_whitespace().skip(1).collect();
        if words.first() == Some(&"serve") {
            words.push("--check");
        }
        let (code, _, stderr) = common::run_binary(&words);
        assert_eq!(code, 0, "{key}: {stderr}");
    }

    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // verify reports a bad directive on stderr and still exits 0.
            assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
        }
        Err(_) => eprintln!("SKIPPED: systemd-analyze verify (systemd-analyze not installed)"),
    }
}

#[test]
fn the_seccomp_profile_allows_io_uring_and_the_image_runs_as_non_root() {
    let profile: serde_json::Value = serde_json::from_str(&deploy_file("seccomp.json")).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let allowed: Vec<&str> = profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["action"] == "SCMP_ACT_ALLOW" && rule.get("args").is_none())
        .flat_map(|rule| rule["names"].as_array().unwrap())
        .filter_map(|name| name.as_str())
        .collect();
    for syscall in [
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "mlock",
        "sched_setaffinity",
        "sendmsg",
    ] {
        assert!(allowed.contains(&syscall), "{syscall} is not allowed");
    }

    let dockerfile = deploy_file("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "a multi-stage build");
    let runtime = &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..];
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(!["root", "0"].contains(&user.trim()), "runs as {user}");
    assert!(dockerfile.contains("seccomp=deploy/seccomp.json"));
    assert!(dockerfile.contains("--ulimit memlock"));
}

/// A program to test with: `$VAR`, else `unpacked` (under the repository), else `name`
/// on PATH; `None` when none of them runs with `probe`.
fn tool(var: &str, unpacked: Option<&str>, name: &str, probe: &str) -> Option<std::path::PathBuf> {
    let unpacked = unpacked.map(|path| Path::new(env!("CARGO_MANIFEST_DIR")).join(path));
    std::env::var_os(var)
        .map(Into::into)
        .into_iter()
        .chain(unpacked)
        .chain([name.into()])
        .find(|path| {
            Command::new(path)
                .arg(probe)
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_nginx_example_serves_a_wss_client() {
    let Some(nginx) = tool("NGINX", Some(".cache/nginx/usr/sbin/nginx"), "nginx", "-v") else {
        eprintln!("SKIPPED: the nginx example (no nginx: run scripts/setup-nginx.sh)");
        return;
    };
    let Some(openssl) = tool("OPENSSL", None, "openssl", "version") else {
        eprintln!("SKIPPED: the nginx example (no openssl to make a certificate)");
        return;
    };
    let (mut server, line) = common::spawn_binary(&["serve", "--listen", "127.0.0.1:0"]);
    let upstream = line.split(' ').nth(2).unwrap().to_owned();

    let dir = std::env::temp_dir().join(format!("turntable-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=realtime.example.com", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");

    // The example as given, on this machine's ports and certificate (IPv4 only).
    let (http_port, https_port) = (free_port(), free_port());
    let site: String = deploy_file("nginx.conf")
        .lines()
        .filter(|l| !l.contains("listen [::]"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("server 127.0.0.1:7400;", &format!("server {upstream};"))
        .replace("listen 80;", &format!("listen 127.0.0.1:{http_port};"))
        .replace(
            "listen 443 ssl;",
            &format!("listen 127.0.0.1:{https_port} ssl;"),
        )
        .replace(
            "/etc/letsencrypt/live/realtime.example.com/fullchain.pem",
            dir.join("cert.pem").to_str().unwrap(),
        )
        .replace(
            "/etc/letsencrypt/live/realtime.example.com/privkey.pem",
            dir.join("key.pem").to_str().unwrap(),
        );
    std::fs::write(dir.join("turntable.conf"), site).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log stderr notice;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             include {d}/turntable.conf;\n}}\n"
        ),
    )
    .unwrap();
    let nginx_args = |extra: &[&str]| {
        let mut command = Command::new(&nginx);
        command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-e", "stderr"])
            .args(extra);
        command
    };
    let tested = nginx_args(&["-t"]).output().unwrap();
    assert!(
        tested.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let mut proxy = nginx_args(&[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::eventually(|| std::net::TcpStream::connect(("127.0.0.1", https_port)).is_ok());

    let client = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/wss_client.py"
        ))
        .args(["127.0.0.1", &https_port.to_string(), "through-nginx"])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&client.stdout).into_owned();
    proxy.kill().unwrap();
    let proxy_log = proxy.wait_with_output().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        client.status.success(),
        "{seen}{}\nnginx: {}",
        String::from_utf8_lossy(&client.stderr),
        String::from_utf8_lossy(&proxy_log.stderr)
    );
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"HTTP/1.1 101 Switching Protocols"),
        "{seen}"
    );
    assert_eq!(
        lines.get(1),
        Some(&r#"{"command":"idyou","data":{}}"#),
        "{seen}"
    );
    assert_eq!(
        lines.get(2),
        Some(&r#"{"command":"identified","data":{"id":"through-nginx"}}"#),
        "{seen}"
    );
}
