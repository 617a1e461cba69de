//! The `turntable` command line: `turntable serve` runs the server, `check-config`
//! validates a settings file, `gen-config` writes one with every setting, `token`
//! prints a signed client token for development and scripts.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};
use tracing_subscriber::EnvFilter;
use turntable::auth::{Auth, now_secs};
use turntable::config::{self, ConfigError, Flags, LogFormat, Origin, SettingType, Settings};

/// turntable: a thread-per-core realtime server (presence, game rooms, chat, pub/sub)
/// over WebSocket.
#[derive(Parser)]
#[command(name = "turntable", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Each setting is a flag, a TURNTABLE_* environment variable and a
    /// key of the --config file; flags override the environment, which overrides the
    /// file, which overrides the defaults.
    Serve {
        /// TOML file of settings, keyed by their names (max_message_bytes = 65536)
        /// [default: none] [env: TURNTABLE_CONFIG]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Check the settings, print the values the server would run with (as TOML,
        /// secrets left out) and exit [default: false]
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        flags: Flags,
    },
    /// Check a config file: print the settings the server would run with from it (and the
    /// TURNTABLE_* environment), as TOML with secrets left out; exit 0 if they are valid,
    /// 2 with the first error if not.
    CheckConfig {
        /// The TOML file to check.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print every setting with its help and default as a commented TOML file, ready to
    /// edit (uncomment a line to change that setting).
    GenConfig,
    /// Print a token signed with the server secret (--auth-secret,
    /// TURNTABLE_AUTH_SECRET, or the config file's auth_secret).
    Token {
        /// The user id (the `sub` claim).
        #[arg(long, value_name = "ID")]
        user: String,
        /// The display name (the `name` claim; Talker requires it).
        #[arg(long)]
        name: Option<String>,
        /// Lifetime: a duration such as 90s, 30m, 2h or 7d.
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
        /// Extra profile claim; VALUE is JSON if it parses as JSON, else a string.
        #[arg(long = "claim", value_name = "KEY=VALUE", value_parser = parse_claim)]
        claims: Vec<(String, Value)>,
        /// TOML file to take auth_secret from [env: TURNTABLE_CONFIG].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The secret to sign with.
        #[arg(long, value_name = "SECRET")]
        auth_secret: Option<String>,
    },
}

/// Why the command failed; shown on one line.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] turntable::runtime::StartError),
    #[error("{0}")]
    Server(std::io::Error),
    #[error("cannot handle signal {signal}: {source}")]
    Signal { signal: i32, source: std::io::Error },
    #[error("no secret: pass --auth-secret, set TURNTABLE_AUTH_SECRET, or auth_secret in --config")]
    NoSecret,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve {
            config,
            check,
            flags,
        } => Settings::from_flags(&flags)
            .map_err(Failure::from)
            .and_then(|flags| serve(config, check, flags)),
        Command::CheckConfig { file } => check_config(file),
        Command::GenConfig => gen_config(),
        Command::Token {
            user,
            name,
            ttl,
            claims,
            config,
            auth_secret,
        } => token(&user, name.as_deref(), ttl, claims, config, auth_secret),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("turntable: {failure}");
            ExitCode::from(2)
        }
    }
}

/// The settings the server runs with: the defaults, then `file` (else the one
/// TURNTABLE_CONFIG names), the environment and `flags`, checked.
fn effective(file: Option<PathBuf>, flags: Settings) -> Result<config::Config, Failure> {
    Ok(config::gather(file, |name| std::env::var_os(name), flags)?.resolve()?)
}

fn serve(config: Option<PathBuf>, check: bool, flags: Settings) -> Result<(), Failure> {
    let config = effective(config, flags)?;
    if check {
        print!("{}", config.settings().to_toml());
        return Ok(());
    }
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| ConfigError::Invalid {
        origin: Origin::Given,
        name: "log_level",
        value: format!("{:?}", config.log_level),
        reason: e.to_string(),
    })?;
    init_logs(filter, config.log_format);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        settings = %settings_line(&config.settings()),
        "starting"
    );
    if config.auth_secret.is_none() {
        tracing::warn!(
            "no auth_secret: insecure development mode, clients are trusted to say who they are"
        );
    }
    let shards = config.shards;
    let grace = config.shutdown_grace;
    let server = turntable::runtime::start(config)?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, server.stop_flag())
            .map_err(|source| Failure::Signal { signal, source })?;
    }
    log_first_signal(grace)?;
    tracing::info!(addr = %server.local_addr(), shards, "listening");
    println!("listening on {} ({shards} shards)", server.local_addr());
    let _ = std::io::stdout().flush();
    server.join().map_err(Failure::Server)?;
    tracing::info!("stopped");
    Ok(())
}

/// Logs to stderr in `format`: text lines, coloured only when stderr is a terminal, or
/// one JSON object per line.
fn init_logs(filter: EnvFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Logs the first SIGTERM or SIGINT as the start of the shutdown (the stop flag
/// registered beside it does the stopping).
fn log_first_signal(grace: Duration) -> Result<(), Failure> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(|source| {
        Failure::Signal {
            signal: SIGTERM,
            source,
        }
    })?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let name = if signal == SIGTERM {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            tracing::info!(
                signal = name,
                grace = %humantime::format_duration(grace),
                "shutting down: no new connections, closing the open ones"
            );
        }
    });
    Ok(())
}

/// The settings on one line, `name=value` separated by spaces, for the start log:
/// what `--check` prints, secrets shown only as set, unset settings left out.
fn settings_line(settings: &Settings) -> String {
    let mut parts = Vec::new();
    for line in settings.to_toml().lines() {
        if let Some((name, value)) = line.split_once(" = ") {
            parts.push(format!("{name}={value}"));
        } else if let Some(name) = line
            .strip_prefix("# ")
            .and_then(|rest| rest.strip_suffix(" is set (not shown)"))
        {
            parts.push(format!("{name}=<redacted>"));
        }
    }
    parts.join(" ")
}

fn check_config(file: PathBuf) -> Result<(), Failure> {
    let config = effective(Some(file), Settings::default())?;
    print!("{}", config.settings().to_toml());
    Ok(())
}

/// The width gen-config wraps its comments at.
const COMMENT_WIDTH: usize = 88;

fn gen_config() -> Result<(), Failure> {
    let defaults = Settings::default().resolve()?.settings();
    let toml = defaults.to_toml();
    let assignments: std::collections::HashMap<&str, &str> = toml
        .lines()
        .filter_map(|line| Some((line.split_once(" = ")?.0, line)))
        .collect();
    let mut out = String::from(
        "# turntable settings (turntable gen-config). Every setting is commented out at its\n\
         # default: uncomment a line to change it. Check the file with\n\
         # `turntable check-config FILE`; run with `turntable serve --config FILE`.\n\
         # The environment (TURNTABLE_<KEY>) overrides this file, and flags override both.\n",
    );
    for spec in config::SETTINGS {
        out.push('\n');
        let about = format!(
            "{}. Default: {}. Flag {}, environment {}.",
            spec.help(),
            spec.default_text(&defaults),
            spec.flag(),
            spec.env()
        );
        for line in wrap(&about, COMMENT_WIDTH - 2) {
            out += &format!("# {line}\n");
        }
        match assignments.get(spec.name) {
            Some(line) => out += &format!("# {line}\n"),
            None => {
                out += &format!(
                    "# (no default: add `{} = ...` with a {} to set it)\n",
                    spec.name, spec.value_name
                )
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

fn token(
    user: &str,
    name: Option<&str>,
    ttl: Duration,
    claims: Vec<(String, Value)>,
    config: Option<PathBuf>,
    auth_secret: Option<String>,
) -> Result<(), Failure> {
    let mut flags = Settings::default();
    if let Some(secret) = &auth_secret {
        flags.set("auth_secret", secret)?;
    }
    let secret = config::gather(config, |name| std::env::var_os(name), flags)?
        .auth_secret
        .ok_or(Failure::NoSecret)?;
    let auth = Auth::new(&secret);
    let profile: Map<String, Value> = claims.into_iter().collect();
    println!(
        "{}",
        auth.issue(user, name, now_secs() + ttl.as_secs(), profile)
    );
    Ok(())
}

/// A token's lifetime: a duration as every duration setting takes it, of at least 1s.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = Duration::parse(text).map_err(|reason| format!("{text:?}: {reason}"))?;
    if ttl < Duration::from_secs(1) {
        return Err(format!("{text:?}: must be at least 1s"));
    }
    Ok(ttl)
}

fn parse_claim(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE"))?;
    if matches!(key, "sub" | "name" | "exp" | "iat" | "nbf") || key.is_empty() {
        return Err(format!(
            "{key:?}: not a profile claim (use --user, --name, --ttl)"
        ));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
    Ok((key.to_owned(), value))
}
