//! Server settings: embedded defaults, an optional TOML file (`--config`), and command
//! line flags, in rising precedence. Every setting has the same name in the file and as
//! a flag (`max_message_bytes` / `--max-message-bytes`). Resolving checks every value
//! and names the offending setting in a one-line error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::auth::Secret;
use crate::engine::{Limits, presence::MAX_SHARDS};

/// Settings as given by a config file or flags: everything optional, so the two can be
/// layered before defaults fill the gaps.
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port that all shards share.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Number of shards (pinned executors) [default: one per core].
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Pin each shard to its own core (turn off when shards outnumber cores).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub pin: Option<bool>,
    /// Serve the services the sockjs-protocol test suite expects (/echo, /close,
    /// /disabled_websocket_echo, /cookie_needed_echo); /echo is then SockJS's.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub sockjs_test_services: Option<bool>,
    /// Serve a plain WebSocket echo at /echo (for the Autobahn TestSuite).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub echo: Option<bool>,
    /// Largest WebSocket message accepted; bigger ones close the connection with 1009
    /// [default: 65536].
    #[arg(long, value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Outbound bytes queued for one connection before it is closed as a slow consumer
    /// [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub max_outbound_bytes: Option<usize>,
    /// Seconds of client silence before a connection is closed; the server pings after
    /// half of it [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<f64>,
    /// Seconds a new connection has to send its HTTP request [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub handshake_timeout: Option<f64>,
    /// Seconds to drain connections on SIGTERM/SIGINT before exiting [default: 3].
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_grace: Option<f64>,
    /// Users one connection may watch [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_watches_per_conn: Option<usize>,
    /// Channels one connection may join [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_channels_per_conn: Option<usize>,
    /// Memory each shard locks for io_uring buffers [default: 262144]; must fit under
    /// RLIMIT_MEMLOCK together with the other shards.
    #[arg(long, value_name = "BYTES")]
    pub io_memory: Option<usize>,
    /// Secret that signs client tokens (HS256 JWTs), at least 32 bytes [default:
    /// TURNTABLE_AUTH_SECRET; without one the server trusts client ids].
    #[arg(long, value_name = "SECRET")]
    pub auth_secret: Option<String>,
    /// Key application servers present to the HTTP API (`Authorization: apikey KEY`),
    /// at least 16 bytes [default: TURNTABLE_API_KEY; without one the API answers 403,
    /// except in development mode: no auth secret, loopback address].
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Allow running without an auth secret on a non-loopback address (clients are
    /// trusted to say who they are).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub insecure: Option<bool>,
    /// Seconds a Talker member whose connections dropped stays idle before the room
    /// is told they left [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub talker_idle_grace: Option<f64>,
    /// Seconds a Talker connection may stay silent (no event, not even
    /// {"type":"ping"}) before it counts as dropped [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub ping_timeout: Option<f64>,
    /// Milliseconds between the `#1` pings the server sends SocketCluster clients; must
    /// be shorter than --sc-ping-timeout [default: 8000].
    #[arg(long, value_name = "MS")]
    pub sc_ping_interval: Option<u64>,
    /// Milliseconds between SockJS heartbeats (`h`) to an idle receiver [default: 25000].
    #[arg(long, value_name = "MS")]
    pub sockjs_heartbeat: Option<u64>,
    /// Milliseconds a SockJS HTTP session waits for its next request before it ends
    /// [default: 5000].
    #[arg(long, value_name = "MS")]
    pub sockjs_disconnect_delay: Option<u64>,
    /// SockJS HTTP sessions one shard holds; a new one beyond it gets 503
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    pub sockjs_max_sessions: Option<usize>,
    /// Milliseconds of SocketCluster client silence before the server closes with
    /// 4001; announced in the handshake [default: 20000].
    #[arg(long, value_name = "MS")]
    pub sc_ping_timeout: Option<u64>,
    /// A World id served at /ws/world/<ID>; repeat for more [default: one world,
    /// "default"].
    #[arg(long, value_name = "ID")]
    pub world: Option<Vec<String>>,
    /// World connections one user may hold; opening one more closes the oldest with
    /// connection.replaced [default: no limit].
    #[arg(long, value_name = "N")]
    pub max_connections_per_user: Option<usize>,
    /// Collaborative documents one shard keeps in memory [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_documents: Option<usize>,
    /// A collaborative document's longest text, in UTF-16 code units
    /// [default: 1048576].
    #[arg(long, value_name = "UNITS")]
    pub max_document_len: Option<usize>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive)
    /// [default: info, or RUST_LOG].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl Settings {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &PathBuf) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_owned();
            format!("invalid config file {}: {msg}", path.display())
        })
    }

    /// These settings with `over`'s values taking precedence where given.
    pub fn overridden_by(self, over: Settings) -> Settings {
        Settings {
            listen: over.listen.or(self.listen),
            shards: over.shards.or(self.shards),
            pin: over.pin.or(self.pin),
            echo: over.echo.or(self.echo),
            sockjs_test_services: over.sockjs_test_services.or(self.sockjs_test_services),
            max_message_bytes: over.max_message_bytes.or(self.max_message_bytes),
            max_outbound_bytes: over.max_outbound_bytes.or(self.max_outbound_bytes),
            idle_timeout: over.idle_timeout.or(self.idle_timeout),
            handshake_timeout: over.handshake_timeout.or(self.handshake_timeout),
            shutdown_grace: over.shutdown_grace.or(self.shutdown_grace),
            max_watches_per_conn: over.max_watches_per_conn.or(self.max_watches_per_conn),
            max_channels_per_conn: over.max_channels_per_conn.or(self.max_channels_per_conn),
            max_documents: over.max_documents.or(self.max_documents),
            max_document_len: over.max_document_len.or(self.max_document_len),
            io_memory: over.io_memory.or(self.io_memory),
            talker_idle_grace: over.talker_idle_grace.or(self.talker_idle_grace),
            ping_timeout: over.ping_timeout.or(self.ping_timeout),
            auth_secret: over.auth_secret.or(self.auth_secret),
            insecure: over.insecure.or(self.insecure),
            api_key: over.api_key.or(self.api_key),
            sc_ping_interval: over.sc_ping_interval.or(self.sc_ping_interval),
            sockjs_heartbeat: over.sockjs_heartbeat.or(self.sockjs_heartbeat),
            sockjs_disconnect_delay: over
                .sockjs_disconnect_delay
                .or(self.sockjs_disconnect_delay),
            sockjs_max_sessions: over.sockjs_max_sessions.or(self.sockjs_max_sessions),
            sc_ping_timeout: over.sc_ping_timeout.or(self.sc_ping_timeout),
            world: over.world.or(self.world),
            max_connections_per_user: over
                .max_connections_per_user
                .or(self.max_connections_per_user),
            log_level: over.log_level.or(self.log_level),
        }
    }

    /// Fills defaults and checks every value.
    pub fn resolve(self) -> Result<Config, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = self.shards.unwrap_or(cores);
        if !(1..=MAX_SHARDS).contains(&shards) {
            return Err(format!(
                "invalid setting shards: {shards} (must be 1 to {MAX_SHARDS})"
            ));
        }
        let pin = self.pin.unwrap_or(shards <= cores);
        if pin && shards > cores {
            return Err(format!(
                "invalid setting shards: {shards} pinned shards but only {cores} cores (use --pin=false)"
            ));
        }
        let listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7400)));
        let auth_secret = self.auth_secret.map(Secret::new).transpose()?;
        let insecure = self.insecure.unwrap_or(false);
        if auth_secret.is_none() && !insecure && !listen.ip().is_loopback() {
            return Err(format!(
                "invalid setting listen: {listen} is not a loopback address and no auth_secret is set (set one, or pass --insecure to trust client ids)"
            ));
        }
        let sc_ping_timeout = millis("sc_ping_timeout", self.sc_ping_timeout.unwrap_or(20_000))?;
        let sc_ping_interval = millis("sc_ping_interval", self.sc_ping_interval.unwrap_or(8_000))?;
        if sc_ping_interval >= sc_ping_timeout {
            return Err(format!(
                "invalid setting sc_ping_interval: {} ms (must be shorter than sc_ping_timeout, {} ms)",
                sc_ping_interval.as_millis(),
                sc_ping_timeout.as_millis()
            ));
        }
        let worlds = self.world.unwrap_or_else(|| vec!["default".to_owned()]);
        if let Some(bad) = worlds.iter().find(|w| !valid_world_id(w)) {
            return Err(format!(
                "invalid setting world: {bad:?} (1 to 64 letters, digits, '-' or '_')"
            ));
        }
        if let Some(key) = self.api_key.as_ref().filter(|k| k.len() < 16) {
            return Err(format!(
                "invalid setting api_key: {} bytes (must be at least 16)",
                key.len()
            ));
        }
        let max_connections_per_user = self
            .max_connections_per_user
            .map(|n| within("max_connections_per_user", n, 1, 1 << 20))
            .transpose()?;
        Ok(Config {
            listen,
            sc_ping_interval,
            sockjs_heartbeat: millis("sockjs_heartbeat", self.sockjs_heartbeat.unwrap_or(25_000))?,
            sockjs_disconnect_delay: millis(
                "sockjs_disconnect_delay",
                self.sockjs_disconnect_delay.unwrap_or(5_000),
            )?,
            sockjs_max_sessions: within(
                "sockjs_max_sessions",
                self.sockjs_max_sessions.unwrap_or(10_000),
                1,
                1 << 24,
            )?,
            sc_ping_timeout,
            worlds: worlds.into_iter().map(String::into_boxed_str).collect(),
            max_connections_per_user,
            api_key: self.api_key.map(String::into_boxed_str),
            fault_injection: false,
            shards,
            pin,
            echo: self.echo.unwrap_or(false),
            sockjs_test_services: self.sockjs_test_services.unwrap_or(false),
            max_message_bytes: within(
                "max_message_bytes",
                self.max_message_bytes.unwrap_or(64 << 10),
                126,
                64 << 20,
            )?,
            max_outbound_bytes: within(
                "max_outbound_bytes",
                self.max_outbound_bytes.unwrap_or(1 << 20),
                4096,
                1 << 30,
            )?,
            idle_timeout: seconds("idle_timeout", self.idle_timeout.unwrap_or(60.0))?,
            handshake_timeout: seconds(
                "handshake_timeout",
                self.handshake_timeout.unwrap_or(10.0),
            )?,
            shutdown_grace: seconds("shutdown_grace", self.shutdown_grace.unwrap_or(3.0))?,
            limits: Limits {
                max_watches_per_conn: within(
                    "max_watches_per_conn",
                    self.max_watches_per_conn.unwrap_or(10_000),
                    1,
                    1 << 24,
                )?,
                max_channels_per_conn: within(
                    "max_channels_per_conn",
                    self.max_channels_per_conn.unwrap_or(1_000),
                    1,
                    1 << 24,
                )?,
                room_idle_grace_ms: seconds(
                    "talker_idle_grace",
                    self.talker_idle_grace.unwrap_or(30.0),
                )?
                .as_millis() as u64,
                max_documents: within(
                    "max_documents",
                    self.max_documents.unwrap_or(10_000),
                    1,
                    1 << 24,
                )?,
                max_document_len: within(
                    "max_document_len",
                    self.max_document_len.unwrap_or(1 << 20),
                    1,
                    1 << 28,
                )?,
            },
            ping_timeout: seconds("ping_timeout", self.ping_timeout.unwrap_or(60.0))?,
            io_memory: within(
                "io_memory",
                self.io_memory.unwrap_or(256 << 10),
                64 << 10,
                1 << 30,
            )?,
            auth_secret,
            log_level: self
                .log_level
                .unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned())),
        })
    }
}

fn within(name: &str, value: usize, min: usize, max: usize) -> Result<usize, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "invalid setting {name}: {value} (must be {min} to {max})"
        ))
    }
}

fn millis(name: &str, value: u64) -> Result<Duration, String> {
    if (10..=86_400_000).contains(&value) {
        Ok(Duration::from_millis(value))
    } else {
        Err(format!(
            "invalid setting {name}: {value} (must be 10 to 86400000 milliseconds)"
        ))
    }
}

/// World ids appear in URLs and channel names: keep them plain.
fn valid_world_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "invalid setting {name}: {value} (must be more than 0 and at most 86400 seconds)"
        ))
    }
}

/// The resolved settings a server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub shards: usize,
    pub pin: bool,
    pub echo: bool,
    pub sockjs_test_services: bool,
    pub max_message_bytes: usize,
    pub max_outbound_bytes: usize,
    pub idle_timeout: Duration,
    pub handshake_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Silence after which a Talker connection counts as dropped.
    pub ping_timeout: Duration,
    pub limits: Limits,
    pub io_memory: usize,
    /// Verifies client tokens; `None` is the insecure development mode.
    pub auth_secret: Option<Secret>,
    /// How often SocketCluster clients get `#1`.
    pub sc_ping_interval: Duration,
    /// Time between SockJS heartbeats to an idle receiver.
    pub sockjs_heartbeat: Duration,
    /// How long a SockJS HTTP session waits for its next request.
    pub sockjs_disconnect_delay: Duration,
    /// SockJS HTTP sessions per shard.
    pub sockjs_max_sessions: usize,
    /// SocketCluster client silence that closes the connection (4001).
    pub sc_ping_timeout: Duration,
    /// The World ids served at /ws/world/<id>.
    pub worlds: Vec<Box<str>>,
    /// World connections per user; `None` is no limit.
    pub max_connections_per_user: Option<usize>,
    /// The HTTP API key; `None` closes the API (but in development mode).
    pub api_key: Option<Box<str>>,
    /// Lets clients reach handlers that fail on purpose (World's `test.fail`); only
    /// tests set it, there is no flag.
    pub fault_injection: bool,
    pub log_level: String,
}

impl Config {
    /// A config for tests and embedding: loopback, an ephemeral port, unpinned shards.
    pub fn ephemeral(shards: usize) -> Config {
        Settings {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            shards: Some(shards),
            pin: Some(false),
            ..Settings::default()
        }
        .resolve()
        .expect("valid test settings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file: Settings = toml::from_str("shards = 1\nmax_message_bytes = 1000\n").unwrap();
        let flags = Settings {
            max_message_bytes: Some(2000),
            ..Settings::default()
        };
        let config = file.overridden_by(flags).resolve().unwrap();
        assert_eq!(config.shards, 1);
        assert_eq!(config.max_message_bytes, 2000);
        assert_eq!(config.listen.to_string(), "127.0.0.1:7400");
    }

    #[test]
    fn errors_name_the_setting() {
        let bad = |s: Settings| s.resolve().unwrap_err();
        assert!(
            bad(Settings {
                shards: Some(0),
                ..Default::default()
            })
            .starts_with("invalid setting shards:")
        );
        assert!(
            bad(Settings {
                idle_timeout: Some(-1.0),
                ..Default::default()
            })
            .starts_with("invalid setting idle_timeout:")
        );
        assert!(
            bad(Settings {
                auth_secret: Some("short".into()),
                ..Default::default()
            })
            .starts_with("invalid setting auth_secret:")
        );
        let public = Settings {
            listen: Some("0.0.0.0:7400".parse().unwrap()),
            ..Default::default()
        };
        assert!(bad(public.clone()).starts_with("invalid setting listen:"));
        let insecure = Settings {
            insecure: Some(true),
            ..Default::default()
        };
        assert!(public.overridden_by(insecure).resolve().is_ok());
        assert!(
            bad(Settings {
                sc_ping_interval: Some(5000),
                sc_ping_timeout: Some(4000),
                ..Default::default()
            })
            .starts_with("invalid setting sc_ping_interval:")
        );
        assert!(
            bad(Settings {
                world: Some(vec!["a/b".into()]),
                ..Default::default()
            })
            .starts_with("invalid setting world:")
        );
        let unknown = toml::from_str::<Settings>("shardz = 2").unwrap_err();
        assert!(unknown.message().contains("shardz"));
    }
}
