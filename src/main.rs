//! The `turntable` command line: `turntable serve` runs the server, `turntable token`
//! prints a signed client token for development and scripts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};
use tracing_subscriber::EnvFilter;
use turntable::auth::{Auth, Secret, now_secs};
use turntable::config::Settings;

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
    /// Run the server (settings: embedded defaults < TURNTABLE_AUTH_SECRET and
    /// TURNTABLE_API_KEY < --config file < flags).
    Serve {
        /// TOML file with the same settings as the flags (snake_case names).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// Print a token signed with the server secret (--auth-secret, the config file's
    /// auth_secret, or TURNTABLE_AUTH_SECRET).
    Token {
        /// The user id (the `sub` claim).
        #[arg(long, value_name = "ID")]
        user: String,
        /// The display name (the `name` claim; Talker requires it).
        #[arg(long)]
        name: Option<String>,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
        /// Extra profile claim; VALUE is JSON if it parses as JSON, else a string.
        #[arg(long = "claim", value_name = "KEY=VALUE", value_parser = parse_claim)]
        claims: Vec<(String, Value)>,
        /// TOML file to take auth_secret from.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The secret to sign with.
        #[arg(long, value_name = "SECRET")]
        auth_secret: Option<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve { config, settings } => serve(config, *settings),
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
        Err(msg) => {
            eprintln!("turntable: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Layers the settings: the environment, then the config file, then the flags.
fn load_settings(config: Option<PathBuf>, flags: Settings) -> Result<Settings, String> {
    let env = Settings {
        auth_secret: std::env::var("TURNTABLE_AUTH_SECRET").ok(),
        api_key: std::env::var("TURNTABLE_API_KEY").ok(),
        ..Settings::default()
    };
    let file = config
        .as_ref()
        .map(Settings::from_file)
        .transpose()?
        .unwrap_or_default();
    Ok(env.overridden_by(file).overridden_by(flags))
}

fn serve(config: Option<PathBuf>, flags: Settings) -> Result<(), String> {
    let config = load_settings(config, flags)?.resolve()?;
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|e| format!("invalid setting log_level: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if config.auth_secret.is_none() {
        tracing::warn!(
            "no auth_secret: insecure development mode, clients are trusted to say who they are"
        );
    }
    let shards = config.shards;
    let server = turntable::runtime::start(config).map_err(|e| e.to_string())?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, server.stop_flag())
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    println!("listening on {} ({shards} shards)", server.local_addr());
    let _ = std::io::stdout().flush();
    server.join().map_err(|e| e.to_string())
}

fn token(
    user: &str,
    name: Option<&str>,
    ttl: Duration,
    claims: Vec<(String, Value)>,
    config: Option<PathBuf>,
    auth_secret: Option<String>,
) -> Result<(), String> {
    let flags = Settings {
        auth_secret,
        ..Settings::default()
    };
    let secret = load_settings(config, flags)?.auth_secret.ok_or(
        "no secret: pass --auth-secret, set auth_secret in --config, or TURNTABLE_AUTH_SECRET",
    )?;
    let auth = Auth::new(&Secret::new(secret)?);
    let profile: Map<String, Value> = claims.into_iter().collect();
    println!(
        "{}",
        auth.issue(user, name, now_secs() + ttl.as_secs(), profile)
    );
    Ok(())
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: use seconds or a number with s, m, h or d"
            ));
        }
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n * scale)),
        _ => Err(format!("{text:?}: must be a positive number")),
    }
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
