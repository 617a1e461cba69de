//! The `turntable` command line: `turntable serve` runs the server.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
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
    /// Run the server (settings: embedded defaults < --config file < flags).
    Serve {
        /// TOML file with the same settings as the flags (snake_case names).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
}

fn main() -> ExitCode {
    let Command::Serve { config, settings } = Cli::parse().command;
    let file = match config.as_ref().map(Settings::from_file).transpose() {
        Ok(file) => file.unwrap_or_default(),
        Err(msg) => return fail(&msg),
    };
    let config = match file.overridden_by(settings).resolve() {
        Ok(config) => config,
        Err(msg) => return fail(&msg),
    };
    let filter = match EnvFilter::try_new(&config.log_level) {
        Ok(filter) => filter,
        Err(e) => return fail(&format!("invalid setting log_level: {e}")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let shards = config.shards;
    let server = match turntable::runtime::start(config) {
        Ok(server) => server,
        Err(e) => return fail(&e.to_string()),
    };
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, server.stop_flag()) {
            return fail(&format!("cannot handle signal {signal}: {e}"));
        }
    }
    println!("listening on {} ({shards} shards)", server.local_addr());
    let _ = std::io::stdout().flush();
    match server.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("turntable: {msg}");
    ExitCode::from(2)
}
