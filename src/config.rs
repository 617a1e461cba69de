//! Server settings. Each is declared once, in the `settings!` list below: its name, type,
//! default, value name, help text and check. From that one declaration come
//!
//! * the flag, `--max-message-bytes` (the name in kebab case), and its `--help` line,
//!   which shows the default;
//! * the TOML key, `max_message_bytes` (the name itself);
//! * the environment variable, `TURNTABLE_MAX_MESSAGE_BYTES`;
//! * a field of [`Settings`] (one source's values, all optional) and of [`Config`] (the
//!   resolved values the server runs with).
//!
//! Sources, in rising precedence: the declared defaults, the TOML file (`--config`, else
//! `TURNTABLE_CONFIG`), the environment, the flags ([`gather`], then
//! [`Settings::resolve`]). A value is checked where it is read, so an error names the
//! setting and, for the file and the environment, where the value came from
//! (`turntable.toml:3: idle_timeout: invalid type: ...`); resolving fills the defaults
//! and checks what involves several settings. Every error is a [`ConfigError`], shown on
//! one line.
//!
//! Durations are [`Duration`]s written with a unit, in flags, variables and the file
//! alike: `500ms`, `30s`, `2m`, `1h 30m` (the humantime crate's forms). A bare number is
//! refused rather than guessed at: durations used to be seconds in some settings and
//! milliseconds in others, and a guess would silently be off by 1000 for one of them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches};
use toml::Spanned;
use tracing_subscriber::EnvFilter;

use crate::auth::{Auth, MIN_SECRET_BYTES, Secret};
use crate::cluster::{ClusterSettings, RedisUrl};
use crate::engine::namespace::Namespaces;
use crate::engine::tap::Taps;
use crate::engine::{Limits, NodeId, Placement, presence::MAX_SHARDS};
use crate::hooks::{HookSettings, WebhookSettings};
use crate::protocol;

mod namespaces;

/// The prefix of every setting's environment variable.
pub const ENV_PREFIX: &str = "TURNTABLE_";

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "TURNTABLE_CONFIG";

/// The shortest and longest duration any duration setting takes.
const SHORTEST: Duration = Duration::from_millis(10);
const LONGEST: Duration = Duration::from_secs(86_400);

/// Declares the settings. Each entry is
///
/// ```text
/// /// Help text (the `--help` line and the field docs).
/// name: Type = default, "VALUE_NAME", default "shown instead", env "VARIABLE", check function;
/// ```
///
/// `env "VARIABLE"` names the environment variable where it is not `TURNTABLE_<NAME>`.
/// `= default` may be left out (the resolved value is then an `Option`, `None` when no
/// source gives one), as may `check`; `default "..."` replaces the default's own
/// rendering in `--help` and must be given when there is no `= default` or when the
/// default depends on the machine. A default may use the settings declared before it.
macro_rules! settings {
    (
        $(
            $(#[doc = $doc:literal])+
            $name:ident: $ty:ty $(= $default:expr)?, $value_name:literal
                $(, default $shown:literal)? $(, env $env:literal)? $(, check $check:expr)?;
        )+
    ) => {
        /// One source's settings (the file, the environment, the flags, or code): each
        /// `None` unless that source gives it, so sources can be layered with
        /// [`Settings::overridden_by`] before [`Settings::resolve`] fills the defaults.
        #[derive(Clone, Debug, Default)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $name: Option<$ty>, )+
        }

        /// The resolved settings a server runs with: every declared setting (those
        /// without a default are `Option`s), plus what only code sets.
        #[derive(Clone, Debug)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $name: settings!(@resolved $ty $(, $default)?), )+
            /// Lets clients reach handlers that fail on purpose (World's `test.fail`);
            /// only tests set it, there is no setting.
            pub fault_injection: bool,
        }

        /// Every setting, in declaration order (the order of `--help`).
        pub const SETTINGS: &[Spec] = &[
            $( Spec {
                name: stringify!($name),
                value_name: $value_name,
                help: &[$($doc),+],
                default_text: settings!(@shown [$($default)?] [$($shown)?]),
                env: settings!(@env [$($env)?]),
                arity: <$ty as SettingType>::ARITY,
            }, )+
        ];

        impl Settings {
            /// These settings with `over`'s taking precedence where given.
            pub fn overridden_by(self, over: Settings) -> Settings {
                Settings { $( $name: over.$name.or(self.$name), )+ }
            }

            /// Fills in the defaults, in declaration order. Checks nothing.
            fn complete(self) -> Config {
                $( let $name = settings!(@complete self.$name $(, $default)?); )+
                Config { $( $name, )+ fault_injection: false }
            }

            /// Parses `text` (a flag's or variable's) as setting `name` and checks it.
            fn set_text(&mut self, name: &str, text: &str) -> Result<(), Refusal> {
                match name {
                    $( stringify!($name) => {
                        let value = <$ty as SettingType>::parse(text).map_err(|reason| {
                            Refusal::Value {
                                value: <$ty as SettingType>::show_text(text),
                                reason,
                            }
                        })?;
                        store(&mut self.$name, value);
                    } )+
                    _ => return Err(Refusal::Unknown),
                }
                self.check_one(name)
            }

            /// Reads a TOML value as setting `name` and checks it.
            fn set_toml(&mut self, name: &str, value: &toml::Value) -> Result<(), Refusal> {
                match name {
                    $( stringify!($name) => {
                        self.$name = Some(from_toml::<$ty>(value)?);
                    } )+
                    _ => return Err(Refusal::Unknown),
                }
                self.check_one(name)
            }

            /// Runs setting `name`'s check, if it is given.
            fn check_one(&self, name: &str) -> Result<(), Refusal> {
                match name {
                    $( stringify!($name) => settings!(@check self.$name.as_ref(), $ty $(, $check)?), )+
                    _ => Ok(()),
                }
            }

            /// Setting `name` as its `--help` default and error messages show it.
            fn show(&self, name: &str) -> Option<String> {
                match name {
                    $( stringify!($name) => self.$name.as_ref().map(SettingType::show), )+
                    _ => None,
                }
            }

            /// The settings as a TOML document, one line per setting in declaration
            /// order; those not given, and secrets, are comments.
            pub fn to_toml(&self) -> String {
                let mut out = String::new();
                $( out += &toml_line(stringify!($name), self.$name.as_ref()); )+
                out
            }
        }

        impl Config {
            /// Every resolved value as given settings (`turntable serve --check` prints
            /// these).
            pub fn settings(&self) -> Settings {
                Settings { $( $name: settings!(@given self.$name.clone() $(, $default)?), )+ }
            }
        }
    };

    (@resolved $ty:ty, $default:expr) => { $ty };
    (@resolved $ty:ty) => { Option<$ty> };

    (@complete $value:expr, $default:expr) => {
        match $value {
            Some(value) => value,
            None => $default,
        }
    };
    (@complete $value:expr) => { $value };

    (@given $value:expr, $default:expr) => { Some($value) };
    (@given $value:expr) => { $value };

    (@check $value:expr, $ty:ty, $check:expr) => {
        match $value {
            Some(value) => check_with::<$ty>(value, $check),
            None => Ok(()),
        }
    };
    (@check $value:expr, $ty:ty) => { Ok(()) };

    (@env [$env:literal]) => { Some($env) };
    (@env []) => { None };

    (@shown [$default:expr] []) => { None };
    (@shown [$($default:expr)?] [$shown:literal]) => { Some($shown) };
    (@shown [] []) => {
        compile_error!("a setting without a default needs `default \"...\"` for --help")
    };
}

settings! {
    /// Address to listen on; port 0 picks a free port that all shards share.
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7400)), "ADDR:PORT";
    /// Shards: executors, each owning a share of the users and channels.
    shards: usize = cores(), "N", default "one per core", check range(1, MAX_SHARDS);
    /// Pin each shard to its own core (turn off when shards outnumber cores).
    pin: bool = shards <= cores(), "BOOL", default "true unless shards outnumber cores";
    /// Secret that signs client tokens (HS256 JWTs), at least 32 bytes; without one the
    /// server runs in an insecure development mode and trusts the ids clients give.
    auth_secret: Secret, "SECRET", default "none";
    /// Allow running without an auth secret on a non-loopback address (clients are
    /// trusted to say who they are).
    insecure: bool = false, "BOOL";
    /// How far ahead of the server's clock a token's nbf or iat may be (0s to 1h).
    token_leeway: Duration = crate::auth::DEFAULT_LEEWAY, "DURATION", check range(Duration::ZERO, Duration::from_secs(3600));
    /// Key application servers present to the HTTP API (`Authorization: apikey KEY`), at
    /// least 16 bytes; without one the API answers 403, except in development mode (no
    /// auth secret, loopback address).
    api_key: Redacted, "KEY", default "none", check min_bytes(16);
    /// Largest WebSocket message accepted; bigger ones close the connection with 1009.
    max_message_bytes: usize = 64 << 10, "BYTES", check range(126, 64 << 20);
    /// Messages one connection may send per second (0: no limit); more are dropped with
    /// the dialect's rate.limited error, and a client that goes on past a further burst
    /// is closed (1008).
    message_rate: usize = 10_000, "N", check range(0, 1 << 24);
    /// Messages one connection may send at once before message_rate applies.
    message_burst: usize = 20_000, "N", check range(1, 1 << 24);
    /// Outbound bytes queued for one connection before it is closed as a slow consumer.
    max_outbound_bytes: usize = 1 << 20, "BYTES", check range(4096, 1 << 30);
    /// Client silence before a connection is closed with 1001; the server pings after
    /// half of it.
    idle_timeout: Duration = Duration::from_secs(60), "DURATION", check range(SHORTEST, LONGEST);
    /// Time a new connection has to send its HTTP request.
    handshake_timeout: Duration = Duration::from_secs(10), "DURATION",
        check range(SHORTEST, LONGEST);
    /// Time a new connection has to identify (turntable idme, Talker connect, World authenticate, SocketCluster #handshake) before it is closed with its dialect's error.
    identify_timeout: Duration = Duration::from_secs(10), "DURATION", check range(SHORTEST, LONGEST);
    /// Time to drain connections on SIGTERM/SIGINT before exiting.
    shutdown_grace: Duration = Duration::from_secs(3), "DURATION", check range(SHORTEST, LONGEST);
    /// Memory each shard locks for io_uring buffers; all shards' must fit under
    /// RLIMIT_MEMLOCK.
    io_memory: usize = 256 << 10, "BYTES", check range(64 << 10, 1 << 30);
    /// Users one connection may watch (turntable v1's `subscribe`).
    max_watches_per_conn: usize = 10_000, "N", check range(1, 1 << 24);
    /// Users all of one user's connections on a shard may watch together (a node of N shards allows N times this).
    max_watches_per_user: usize = 20_000, "N", check range(1, 1 << 24);
    /// Watches all of a shard's connections may hold together (a node holds shards times this).
    max_watches_per_shard: usize = 1_000_000, "N", check range(1, 1 << 30);
    /// Channels one connection may join.
    max_channels_per_conn: usize = 1_000, "N", check range(1, 1 << 24);
    /// Channels' rules by namespace (who may receive, publish, list members; join and
    /// leave events; member limits), as TOML tables: see the README's channels section.
    namespaces: Namespaces = Namespaces::default(), "TABLES", default "built in";
    /// Collaborative documents one shard keeps in memory.
    max_documents: usize = 10_000, "N", check range(1, 1 << 24);
    /// A collaborative document's longest text, in UTF-16 code units.
    max_document_len: usize = 1 << 20, "UNITS", check range(1, 1 << 28);
    /// Documents one user may create among those a shard keeps (a node of N shards allows N times this).
    max_documents_per_user: usize = 100, "N", check range(1, 1 << 24);
    /// The text of the documents one user created that a shard keeps, all together, in UTF-16 code units.
    max_document_len_per_user: usize = 4 << 20, "UNITS", check range(1, 1 << 30);
    /// Time a Talker member whose connections all dropped stays idle before the room is
    /// told they left.
    talker_idle_grace: Duration = Duration::from_secs(30), "DURATION",
        check range(SHORTEST, LONGEST);
    /// Silence (no event, not even {"type":"ping"}) after which a Talker connection
    /// counts as dropped.
    talker_ping_timeout: Duration = Duration::from_secs(60), "DURATION",
        check range(SHORTEST, LONGEST);
    /// Time between the `#1` pings the server sends SocketCluster clients; must be
    /// shorter than socketcluster_ping_timeout.
    socketcluster_ping_interval: Duration = Duration::from_secs(8), "DURATION",
        check range(SHORTEST, LONGEST);
    /// SocketCluster client silence after which the server closes with 4001; announced
    /// in the handshake.
    socketcluster_ping_timeout: Duration = Duration::from_secs(20), "DURATION",
        check range(SHORTEST, LONGEST);
    /// Time between SockJS heartbeats (`h`) to an idle receiver.
    sockjs_heartbeat_interval: Duration = Duration::from_secs(25), "DURATION",
        check range(SHORTEST, LONGEST);
    /// Time a SockJS HTTP session waits for its next request before it ends.
    sockjs_disconnect_delay: Duration = Duration::from_secs(5), "DURATION",
        check range(SHORTEST, LONGEST);
    /// SockJS HTTP sessions one shard holds; a request that would open one more gets 503.
    sockjs_max_sessions: usize = 10_000, "N", check range(1, 1 << 24);
    /// Serve the services the sockjs-protocol test suite expects (/echo, /close,
    /// /disabled_websocket_echo, /cookie_needed_echo); /echo is then SockJS's.
    sockjs_test_services: bool = false, "BOOL";
    /// Serve a plain WebSocket echo at /echo (for the Autobahn TestSuite).
    echo: bool = false, "BOOL";
    /// Web pages (Origin patterns: `*`, `https://app.example`, `https://*.example.com`)
    /// that may open WebSockets and SockJS sessions; by default only the server's own
    /// origin (clients that send no Origin, not browsers, are always let in).
    allowed_origins: Vec<Box<str>> = Vec::new(), "PATTERN,...", default "the server's own origin",
        check origin_patterns();
    /// The World ids served at /ws/world/<ID>: comma-separated, or repeat the flag.
    worlds: Vec<Box<str>> = vec!["default".into()], "ID,...", check world_ids();
    /// World connections one user may hold; opening one more closes the oldest with
    /// connection.replaced.
    world_max_connections_per_user: usize, "N", default "no limit", check range(1, 1 << 20);
    /// Time a call to the application's backend (a hook) may take, unless the hook says otherwise.
    hook_timeout: Duration = Duration::from_secs(1), "DURATION", check range(SHORTEST, LONGEST);
    /// Hook calls one shard may have in flight; one more is refused at once.
    hook_concurrency: usize = 256, "N", check range(1, 1 << 16);
    /// Backend URL asked who a client is when it brings credentials (a session id, a
    /// cookie's value, any string) instead of a token; it answers with the user.
    connect_hook: String, "URL", default "none", check http_url();
    /// Backend URL that calls the server has no handler for go to (SocketCluster custom
    /// events, World actions turntable does not define); its answer is the reply.
    rpc_hook: String, "URL", default "none", check http_url();
    /// URL the server POSTs signed batches of events to (channel occupied and vacated, members, users online); needs webhook_secret.
    webhook_url: String, "URL", default "none", check http_url();
    /// Key of the HMAC-SHA256 signature on each webhook batch (X-Turntable-Signature), at least 16 bytes.
    webhook_secret: Redacted, "SECRET", default "none", check min_bytes(16);
    /// The cluster's nodes by public base URL (http:// or https://), in order: node i is
    /// entry i, and every node lists the same; without them the server is one node and
    /// needs no Redis.
    nodes: Vec<Box<str>> = Vec::new(), "URL,...", default "one node", check node_urls();
    /// This node's index in nodes, 0 to K-1.
    node_id: usize = 0, "I", check range(0, MAX_SHARDS - 1);
    /// The Redis that joins the nodes: redis://[user:password@]host:port[/db], or
    /// redis+cluster://host:port,... for a Redis Cluster by its seeds (node channels as
    /// sharded pub/sub); needed when nodes lists more than one.
    redis: RedisUrl, "URL", default "none", env "TURNTABLE_REDIS_URL";
    /// Prefix of every Redis channel the cluster uses, so that clusters can share a Redis.
    cluster_name: String = "turntable".to_owned(), "NAME", check cluster_name();
    /// Heartbeat silence after which a node counts as gone and its connections as closed.
    node_timeout: Duration = Duration::from_secs(5), "DURATION",
        check range(Duration::from_millis(500), Duration::from_secs(600));
    /// Channels whose publications and members the owner PUBLISHes to Redis channel
    /// NAME:tap:CHANNEL for the backend bus (needs redis): names, or prefixes ending in
    /// `*` (`game:*`); comma-separated, or repeat the flag.
    tap: Vec<Box<str>> = Vec::new(), "PATTERN,...", default "none", check tap_patterns();
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    log_level: String = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        "FILTER", default "info, or RUST_LOG", check log_filter();
    /// Log format on stderr: text (coloured only when stderr is a terminal) or json (one
    /// JSON object per line).
    log_format: LogFormat = LogFormat::Text, "FORMAT";
}

/// The machine's cores, as the defaults of `shards` and `pin` count them.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Settings {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Settings::from_toml(path, &text)
    }

    /// Reads settings from `text`, TOML that errors call `path`.
    pub fn from_toml(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            toml::from_str(text).map_err(|e| ConfigError::Syntax {
                path: path.to_owned(),
                line: line(e.span().map_or(0, |span| span.start)),
                message: e.message().to_owned(),
            })?;
        let mut entries: Vec<_> = table.into_iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut settings = Settings::default();
        for (key, value) in entries {
            settings
                .set_toml(key.get_ref(), value.get_ref())
                .map_err(|refusal| {
                    let origin = Origin::File {
                        path: path.to_owned(),
                        line: line(key.span().start),
                    };
                    refusal.into_error(origin, key.get_ref())
                })?;
        }
        Ok(settings)
    }

    /// Reads every setting's environment variable (`TURNTABLE_<NAME>`) through `var`;
    /// empty ones count as unset.
    pub fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        for spec in SETTINGS {
            let name = spec.env();
            let Some(value) = var(&name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let origin = Origin::Env(name);
            let Some(text) = value.to_str() else {
                return Err(ConfigError::Invalid {
                    origin,
                    name: spec.name,
                    value: format!("{value:?}"),
                    reason: "not valid UTF-8".to_owned(),
                });
            };
            settings
                .set_text(spec.name, text)
                .map_err(|refusal| refusal.into_error(origin, spec.name))?;
        }
        Ok(settings)
    }

    /// The settings given as flags.
    pub fn from_flags(flags: &Flags) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        for (name, texts) in &flags.given {
            for text in texts {
                settings.set(name, text)?;
            }
        }
        Ok(settings)
    }

    /// Sets setting `name` from text as a flag would give it (a list setting's values
    /// add up).
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), ConfigError> {
        self.set_text(name, text)
            .map_err(|refusal| refusal.into_error(Origin::Given, name))
    }

    /// Fills in the defaults and checks every value, then what involves several
    /// settings.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let config = self.complete();
        let all = config.settings();
        for spec in SETTINGS {
            all.check_one(spec.name)
                .map_err(|refusal| refusal.into_error(Origin::Given, spec.name))?;
        }
        config.check_together()?;
        Ok(config)
    }
}

/// Layers the sources of settings in rising precedence: the file (`config`, else the
/// file `TURNTABLE_CONFIG` names), the environment (read through `var`), then `flags`.
pub fn gather(
    config: Option<PathBuf>,
    var: impl Fn(&str) -> Option<OsString>,
    flags: Settings,
) -> Result<Settings, ConfigError> {
    let path = config.or_else(|| var(CONFIG_ENV).filter(|p| !p.is_empty()).map(PathBuf::from));
    let file = match path {
        Some(path) => Settings::from_file(&path)?,
        None => Settings::default(),
    };
    Ok(file
        .overridden_by(Settings::from_env(var)?)
        .overridden_by(flags))
}

impl Config {
    /// The defaults of every setting.
    pub fn defaults() -> Config {
        Settings::default().complete()
    }

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

    /// The token checker the shards use, when there is a secret.
    pub fn auth(&self) -> Option<Auth> {
        let auth = Auth::new(self.auth_secret.as_ref()?);
        Some(auth.with_leeway(self.token_leeway))
    }

    /// What every shard's hook client shares.
    pub fn hook_settings(&self) -> HookSettings {
        HookSettings {
            timeout: self.hook_timeout,
            concurrency: self.hook_concurrency,
        }
    }

    /// Whether any hook calls the backend (an `rpc_hook`, a `connect_hook`, or a namespace's
    /// `subscribe_hook` or `publish_hook`): only then is the hook client started.
    pub fn calls_backend(&self) -> bool {
        self.rpc_hook.is_some()
            || self.connect_hook.is_some()
            || self
                .namespaces
                .iter()
                .any(|(_, p)| p.subscribe_hook.is_some() || p.publish_hook.is_some())
    }

    /// Where webhooks go, if anywhere (`webhook_url`; the secret comes with it).
    pub fn webhook_settings(&self) -> Option<WebhookSettings> {
        let url = self.webhook_url.clone()?;
        let secret = Box::from(&**self.webhook_secret.as_ref()?);
        Some(WebhookSettings::new(url, secret, self.hook_timeout))
    }

    /// The cluster's shape: K nodes (those `nodes` lists, else one) of `shards` shards.
    pub fn placement(&self) -> Placement {
        Placement::new(self.nodes.len().max(1) as NodeId, self.shards)
    }

    /// This node's index in the cluster.
    pub fn node(&self) -> NodeId {
        self.node_id as NodeId
    }

    /// How this node joins the others, when it is one of several (or has a Redis).
    pub fn cluster_settings(&self) -> Option<ClusterSettings> {
        let redis = self.redis.clone()?;
        Some(ClusterSettings {
            name: self.cluster_name.as_str().into(),
            nodes: match self.nodes.is_empty() {
                true => vec![format!("http://{}", self.listen).into()],
                false => self.nodes.clone(),
            },
            node: self.node(),
            redis,
            node_timeout: self.node_timeout,
        })
    }

    /// What the dialects read.
    pub fn dialect_settings(&self) -> protocol::Settings {
        protocol::Settings {
            idle_timeout: self.idle_timeout,
            talker_ping_timeout: self.talker_ping_timeout,
            socketcluster_ping_interval: self.socketcluster_ping_interval,
            socketcluster_ping_timeout: self.socketcluster_ping_timeout,
            sockjs_heartbeat_interval: self.sockjs_heartbeat_interval,
            identify_timeout: self.identify_timeout,
            world_max_connections_per_user: self.world_max_connections_per_user,
            worlds: self.worlds.clone(),
            fault_injection: self.fault_injection,
            rpc_hook: self.rpc_hook.as_deref().map(Box::from),
            connect_hook: self.connect_hook.is_some(),
        }
    }

    /// The engine's per-connection and per-shard bounds.
    pub fn limits(&self) -> Limits {
        Limits {
            namespaces: std::sync::Arc::new(self.namespaces.clone()),
            taps: std::sync::Arc::new(Taps::new(&self.tap).expect("checked at start")),
            max_watches_per_conn: self.max_watches_per_conn,
            max_watches_per_user: self.max_watches_per_user,
            max_watches_per_shard: self.max_watches_per_shard,
            max_channels_per_conn: self.max_channels_per_conn,
            room_idle_grace_ms: self.talker_idle_grace.as_millis() as u64,
            max_documents: self.max_documents,
            max_document_len: self.max_document_len,
            max_documents_per_user: self.max_documents_per_user,
            max_document_len_per_user: self.max_document_len_per_user,
        }
    }

    /// The checks that involve more than one setting.
    fn check_together(&self) -> Result<(), ConfigError> {
        let invalid = |name, value: String, reason: String| ConfigError::Invalid {
            origin: Origin::Given,
            name,
            value,
            reason,
        };
        let cores = cores();
        if self.pin && self.shards > cores {
            return Err(invalid(
                "shards",
                self.shards.to_string(),
                format!("only {cores} cores to pin them to; set pin to false"),
            ));
        }
        if self.auth_secret.is_none() && !self.insecure && !self.listen.ip().is_loopback() {
            return Err(invalid(
                "listen",
                self.listen.to_string(),
                "not a loopback address and no auth_secret is set: set one, or pass \
                 --insecure to trust client ids"
                    .to_owned(),
            ));
        }
        if self.socketcluster_ping_interval >= self.socketcluster_ping_timeout {
            return Err(invalid(
                "socketcluster_ping_interval",
                self.socketcluster_ping_interval.show(),
                format!(
                    "must be shorter than socketcluster_ping_timeout, {}",
                    self.socketcluster_ping_timeout.show()
                ),
            ));
        }
        let nodes = self.nodes.len().max(1);
        if self.node_id >= nodes {
            return Err(invalid(
                "node_id",
                self.node_id.to_string(),
                format!("nodes lists {nodes} node(s): must be 0 to {}", nodes - 1),
            ));
        }
        if nodes > 1 && self.redis.is_none() {
            return Err(invalid(
                "nodes",
                self.nodes.show(),
                "the nodes reach each other through Redis: set redis (--redis, TURNTABLE_REDIS_URL)"
                    .to_owned(),
            ));
        }
        if nodes * self.shards > MAX_SHARDS {
            return Err(invalid(
                "shards",
                self.shards.to_string(),
                format!(
                    "{nodes} nodes of {} shards make {}: a cluster runs at most {MAX_SHARDS}",
                    self.shards,
                    nodes * self.shards
                ),
            ));
        }
        if let (Some(url), None) = (&self.webhook_url, &self.webhook_secret) {
            return Err(invalid(
                "webhook_url",
                url.clone(),
                "webhooks are signed: set webhook_secret too".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The dialects' settings default to the settings' defaults, declared once above.
impl Default for protocol::Settings {
    fn default() -> Self {
        Config::defaults().dialect_settings()
    }
}

/// The engine's bounds default to the settings' defaults, declared once above.
impl Default for Limits {
    fn default() -> Self {
        Config::defaults().limits()
    }
}

/// Why the settings cannot be used. Shown on one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is not TOML.
    #[error("{}:{line}: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A key (or a name given in code) that is no setting.
    #[error("{origin}{name}: unknown setting{}", did_you_mean(.name))]
    Unknown { origin: Origin, name: String },
    /// A TOML value of the wrong type.
    #[error("{origin}{name}: invalid type: {found}, expected {expected}")]
    WrongType {
        origin: Origin,
        name: &'static str,
        found: String,
        expected: &'static str,
    },
    /// A value that does not parse or fails its setting's check.
    #[error("{origin}invalid setting {name}: {value} ({reason})")]
    Invalid {
        origin: Origin,
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Where a value came from, as an error's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A flag or code: no prefix.
    Given,
    /// A line of the config file.
    File { path: PathBuf, line: usize },
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Given => Ok(()),
            Origin::File { path, line } => write!(f, "{}:{line}: ", path.display()),
            Origin::Env(name) => write!(f, "{name}: "),
        }
    }
}

/// Why a value was not taken, before it is known where it came from.
enum Refusal {
    Unknown,
    WrongType {
        found: String,
        expected: &'static str,
    },
    Value {
        value: String,
        reason: String,
    },
}

impl Refusal {
    fn into_error(self, origin: Origin, name: &str) -> ConfigError {
        let known = SETTINGS.iter().find(|s| s.name == name).map(|s| s.name);
        match (self, known) {
            (Refusal::WrongType { found, expected }, Some(name)) => ConfigError::WrongType {
                origin,
                name,
                found,
                expected,
            },
            (Refusal::Value { value, reason }, Some(name)) => ConfigError::Invalid {
                origin,
                name,
                value,
                reason,
            },
            _ => ConfigError::Unknown {
                origin,
                name: name.to_owned(),
            },
        }
    }
}

/// " (did you mean x?)" for an unknown name that is close to, or part of, settings'.
fn did_you_mean(unknown: &str) -> String {
    let near: Vec<&str> = SETTINGS
        .iter()
        .map(|s| s.name)
        .filter(|name| {
            edit_distance(name, unknown) <= 2 || (unknown.len() >= 4 && name.contains(unknown))
        })
        .take(3)
        .collect();
    match near.as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        [rest @ .., last] => format!(" (did you mean {} or {last}?)", rest.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A setting as declared: what its flag, variable and `--help` line are made of.
#[derive(Debug)]
pub struct Spec {
    /// The TOML key; the flag and the variable are made from it.
    pub name: &'static str,
    pub value_name: &'static str,
    help: &'static [&'static str],
    /// What `--help` shows as the default instead of the default's own form.
    default_text: Option<&'static str>,
    /// The environment variable, where it is not `TURNTABLE_<NAME>`.
    env: Option<&'static str>,
    arity: Arity,
}

impl Spec {
    /// `--max-message-bytes` for `max_message_bytes`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// `TURNTABLE_MAX_MESSAGE_BYTES` for `max_message_bytes`, unless the setting names
    /// its own (`env "..."` in its declaration).
    pub fn env(&self) -> String {
        match self.env {
            Some(env) => env.to_owned(),
            None => format!("{ENV_PREFIX}{}", self.name.to_ascii_uppercase()),
        }
    }

    /// The help text, one line without a final period (as clap shows doc comments).
    pub fn help(&self) -> String {
        let lines: Vec<&str> = self.help.iter().map(|l| l.trim()).collect();
        let text = lines.join(" ");
        text.strip_suffix('.').unwrap_or(&text).to_owned()
    }

    /// The default as `--help` shows it.
    pub fn default_text(&self, defaults: &Settings) -> String {
        match self.default_text {
            Some(text) => text.to_owned(),
            None => defaults.show(self.name).unwrap_or_default(),
        }
    }

    fn arg(&self, defaults: &Settings) -> Arg {
        let help = format!(
            "{} [default: {}] [env: {}]",
            self.help(),
            self.default_text(defaults),
            self.env()
        );
        let arg = Arg::new(self.name)
            .long(self.name.replace('_', "-"))
            .value_name(self.value_name)
            .help(help);
        match self.arity {
            Arity::One => arg.action(ArgAction::Set),
            Arity::Switch => arg
                .action(ArgAction::Set)
                .num_args(0..=1)
                .default_missing_value("true"),
            Arity::Many => arg.action(ArgAction::Append),
        }
    }
}

/// How a setting's flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// `--shards 4`, once.
    One,
    /// `--pin`, `--pin=false`, `--pin false`.
    Switch,
    /// `--worlds a --worlds b,c`: the values add up.
    Many,
}

/// The settings' flags as given on the command line, not yet parsed: a clap [`Args`]
/// to flatten into a command. [`Settings::from_flags`] parses and checks them, so a
/// bad value gets the same one-line error as one from the file or the environment.
///
/// [`Args`]: clap::Args
#[derive(Clone, Debug, Default)]
pub struct Flags {
    given: Vec<(&'static str, Vec<String>)>,
}

impl clap::FromArgMatches for Flags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Flags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for spec in SETTINGS {
            if let Some(values) = matches.get_many::<String>(spec.name) {
                self.given.retain(|(name, _)| *name != spec.name);
                self.given.push((spec.name, values.cloned().collect()));
            }
        }
        Ok(())
    }
}

impl clap::Args for Flags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = Config::defaults().settings();
        cmd.args(SETTINGS.iter().map(|spec| spec.arg(&defaults)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// A type a setting can have: how it reads from text (flags, environment variables)
/// and TOML, and how it shows.
pub trait SettingType: Sized + Clone {
    /// What a TOML value of this type looks like, for wrong-type errors.
    const EXPECTED: &'static str;
    const ARITY: Arity = Arity::One;

    /// Reads a flag's or variable's text; the error is the reason it is refused.
    fn parse(text: &str) -> Result<Self, String>;

    /// Reads a TOML value; `None` when it has the wrong type. Strings parse as text.
    fn from_toml(value: &toml::Value) -> Option<Result<Self, String>> {
        value.as_str().map(Self::parse)
    }

    /// How errors and `--help` show a value.
    fn show(&self) -> String;

    /// How errors show refused text.
    fn show_text(text: &str) -> String {
        format!("{text:?}")
    }

    /// The value as TOML; `None` for secrets.
    fn to_toml(&self) -> Option<toml::Value>;

    /// Adds a further flag value of a list setting; others keep the last.
    fn append(&mut self, more: Self) {
        *self = more;
    }
}

fn store<T: SettingType>(slot: &mut Option<T>, value: T) {
    match slot {
        Some(old) => old.append(value),
        None => *slot = Some(value),
    }
}

fn from_toml<T: SettingType>(value: &toml::Value) -> Result<T, Refusal> {
    match T::from_toml(value) {
        Some(Ok(value)) => Ok(value),
        Some(Err(reason)) => Err(Refusal::Value {
            value: match value {
                toml::Value::String(text) => T::show_text(text),
                other => other.to_string(),
            },
            reason,
        }),
        None => Err(Refusal::WrongType {
            found: describe(value),
            expected: T::EXPECTED,
        }),
    }
}

/// A TOML value's type and, if short, itself: "boolean `true`".
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer `{i}`"),
        toml::Value::Float(x) => format!("float `{x}`"),
        toml::Value::Boolean(b) => format!("boolean `{b}`"),
        toml::Value::Datetime(d) => format!("datetime `{d}`"),
        toml::Value::Array(_) => "array".to_owned(),
        toml::Value::Table(_) => "table".to_owned(),
    }
}

fn toml_line<T: SettingType>(name: &str, value: Option<&T>) -> String {
    match value {
        Some(value) => match value.to_toml() {
            Some(toml) => format!("{name} = {toml}\n"),
            None => format!("# {name} is set (not shown)\n"),
        },
        None => format!("# {name} is not set\n"),
    }
}

fn check_with<T: SettingType>(
    value: &T,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<(), Refusal> {
    check(value).map_err(|reason| Refusal::Value {
        value: value.show(),
        reason,
    })
}

/// Check: `min` to `max`, both included.
fn range<T: SettingType + PartialOrd>(min: T, max: T) -> impl Fn(&T) -> Result<(), String> {
    move |value| {
        if *value >= min && *value <= max {
            Ok(())
        } else {
            Err(format!("must be {} to {}", min.show(), max.show()))
        }
    }
}

/// Check: an `http://` or `https://` URL with a host.
fn http_url() -> impl Fn(&String) -> Result<(), String> {
    |url| {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
            _ => Err("must be an http:// or https:// URL".to_owned()),
        }
    }
}

/// Check: node URLs are http:// or https:// base URLs, each listed once.
fn node_urls() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
    |urls| {
        for (i, url) in urls.iter().enumerate() {
            http_url()(&url.to_string()).map_err(|reason| format!("{url:?} {reason}"))?;
            if urls[..i].contains(url) {
                return Err(format!("{url:?} is listed twice"));
            }
        }
        Ok(())
    }
}

/// Check: tap patterns are names, or prefixes ending in `*`.
fn tap_patterns() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
    |patterns| Taps::new(patterns).map(drop)
}

/// Check: a cluster name prefixes Redis channels, so it is kept plain.
fn cluster_name() -> impl Fn(&String) -> Result<(), String> {
    |name| match valid_world_id(name) {
        true => Ok(()),
        false => Err("must be 1 to 64 letters, digits, '-' or '_'".to_owned()),
    }
}

/// Check: at least `min` bytes.
fn min_bytes(min: usize) -> impl Fn(&Redacted) -> Result<(), String> {
    move |value| {
        if value.len() >= min {
            Ok(())
        } else {
            Err(format!("must be at least {min} bytes"))
        }
    }
}

/// Check: World ids appear in URLs and channel names, so they are kept plain.
fn world_ids() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
    |ids| match ids.iter().find(|id| !valid_world_id(id)) {
        None => Ok(()),
        Some(bad) => Err(format!(
            "{bad:?} is not 1 to 64 letters, digits, '-' or '_'"
        )),
    }
}

fn origin_patterns() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
    |patterns| match patterns
        .iter()
        .find(|p| !crate::net::origins::valid_pattern(p))
    {
        Some(bad) => Err(format!(
            "{bad:?} is not an origin pattern: *, or scheme://host[:port] with an optional *. before the host"
        )),
        None => Ok(()),
    }
}

fn valid_world_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Check: a filter tracing-subscriber takes.
fn log_filter() -> impl Fn(&String) -> Result<(), String> {
    |filter| {
        EnvFilter::try_new(filter)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// How the server writes its logs to stderr (the `log_format` setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, with ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields`, `target`.
    Json,
}

impl SettingType for LogFormat {
    const EXPECTED: &'static str = "\"text\" or \"json\"";
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".to_owned()),
        }
    }
    fn show(&self) -> String {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
        .to_owned()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.show()))
    }
}

/// A secret string other than the auth secret (the API key): its `Debug` form and
/// errors show its length, never its text.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(Box<str>);

impl std::ops::Deref for Redacted {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Redacted {
    fn from(text: &str) -> Self {
        Redacted(text.into())
    }
}

impl From<String> for Redacted {
    fn from(text: String) -> Self {
        Redacted(text.into_boxed_str())
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redacted(<{} bytes>)", self.0.len())
    }
}

impl SettingType for Redacted {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.into())
    }
    fn show(&self) -> String {
        format!("{} bytes", self.0.len())
    }
    fn show_text(text: &str) -> String {
        format!("{} bytes", text.len())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        None
    }
}

impl SettingType for Secret {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, String> {
        Secret::new(text.to_owned())
            .map_err(|_| format!("must be at least {MIN_SECRET_BYTES} bytes"))
    }
    fn show(&self) -> String {
        "<redacted>".to_owned()
    }
    fn show_text(text: &str) -> String {
        format!("{} bytes", text.len())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        None
    }
}

impl SettingType for usize {
    const EXPECTED: &'static str = "a whole number";
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| "expected a whole number".to_owned())
    }
    fn from_toml(value: &toml::Value) -> Option<Result<Self, String>> {
        let n = value.as_integer()?;
        Some(usize::try_from(n).map_err(|_| "must not be negative".to_owned()))
    }
    fn show(&self) -> String {
        self.to_string()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        i64::try_from(*self).ok().map(toml::Value::Integer)
    }
}

impl SettingType for bool {
    const EXPECTED: &'static str = "true or false";
    const ARITY: Arity = Arity::Switch;
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        }
    }
    fn from_toml(value: &toml::Value) -> Option<Result<Self, String>> {
        value.as_bool().map(Ok)
    }
    fn show(&self) -> String {
        self.to_string()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

impl SettingType for Duration {
    const EXPECTED: &'static str = "a duration with a unit, such as \"30s\"";
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!(
                "a duration needs a unit: {text}s, {text}ms, {text}m or {text}h"
            ));
        }
        humantime::parse_duration(text)
            .map_err(|_| "expected a duration such as 500ms, 30s, 2m or 1h 30m".to_owned())
    }
    fn show(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.show()))
    }
}

impl SettingType for SocketAddr {
    const EXPECTED: &'static str = "an address such as \"127.0.0.1:7400\"";
    /// An IP address or host name and a port; an empty host (`:7400`) is every
    /// interface. A host name is resolved now, to its first address.
    fn parse(text: &str) -> Result<Self, String> {
        use std::net::ToSocketAddrs;
        if let Ok(addr) = text.parse() {
            return Ok(addr);
        }
        let expected = || {
            format!(
                "expected a host and port, such as 127.0.0.1:7400, localhost:7400 or :7400; got {text:?}"
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(expected)?;
        let port: u16 = port.parse().map_err(|_| expected())?;
        if host.is_empty() {
            return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
        }
        // The config fuzz target (`fuzz/`) makes up host names: it must not look them up.
        if cfg!(fuzzing) {
            return Err(format!("{host:?} is not resolved while fuzzing"));
        }
        (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host:?} has no address"))
    }
    fn show(&self) -> String {
        self.to_string()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.to_string()))
    }
}

impl SettingType for String {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn show(&self) -> String {
        format!("{self:?}")
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

impl SettingType for RedisUrl {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, String> {
        RedisUrl::parse(text)
    }
    fn show(&self) -> String {
        self.to_string()
    }
    fn show_text(text: &str) -> String {
        RedisUrl::parse(text).map_or_else(|_| "(not a Redis URL)".to_owned(), |url| url.to_string())
    }
    /// A URL with a password is a secret, left out like the others.
    fn to_toml(&self) -> Option<toml::Value> {
        match self {
            RedisUrl::Single { auth: Some(_), .. } => None,
            url => Some(toml::Value::String(url.to_string())),
        }
    }
}

impl SettingType for Vec<Box<str>> {
    const EXPECTED: &'static str = "an array of strings";
    const ARITY: Arity = Arity::Many;
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.split(',').map(Box::from).collect())
    }
    fn from_toml(value: &toml::Value) -> Option<Result<Self, String>> {
        let items = value.as_array()?;
        let strings: Option<Vec<Box<str>>> = items
            .iter()
            .map(|item| item.as_str().map(Box::from))
            .collect();
        strings.map(Ok)
    }
    fn show(&self) -> String {
        self.join(",")
    }
    fn to_toml(&self) -> Option<toml::Value> {
        let items = self.iter().map(|s| toml::Value::String(s.to_string()));
        Some(toml::Value::Array(items.collect()))
    }
    fn append(&mut self, more: Self) {
        self.extend(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Result<Settings, ConfigError> {
        Settings::from_toml(Path::new("t.toml"), text)
    }

    fn env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    fn given(pairs: &[(&str, &str)]) -> Settings {
        let mut settings = Settings::default();
        for (name, text) in pairs {
            settings.set(name, text).unwrap();
        }
        settings
    }

    #[test]
    fn the_redis_url_comes_from_its_usual_variable_and_the_cluster_settings_fit_together() {
        let settings = env(&[("TURNTABLE_REDIS_URL", "redis://127.0.0.1:6390")]).unwrap();
        assert_eq!(
            settings.redis.map(|url| url.to_string()).as_deref(),
            Some("redis://127.0.0.1:6390/0")
        );
        assert!(
            env(&[("TURNTABLE_REDIS", "redis://127.0.0.1:6390")])
                .unwrap()
                .redis
                .is_none()
        );
        let cluster = |pairs: &[(&str, &str)]| given(pairs).resolve().map_err(|e| e.to_string());
        let nodes = ("nodes", "http://a:1,http://b:1");
        let err = cluster(&[nodes]).unwrap_err();
        assert!(err.contains("set redis"), "{err}");
        let err = cluster(&[nodes, ("redis", "redis://r:1"), ("node_id", "2")]).unwrap_err();
        assert!(err.contains("must be 0 to 1"), "{err}");
        let err = Settings::default()
            .set("nodes", "http://a:1,http://a:1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
        let ok = cluster(&[
            nodes,
            ("redis", "redis://r:1"),
            ("node_id", "1"),
            ("pin", "false"),
        ]);
        let config = ok.unwrap();
        assert_eq!((config.placement().nodes(), config.node()), (2, 1));
    }

    #[test]
    fn the_defaults_pass_every_check() {
        let config = Settings::default().resolve().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7400");
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(Limits::default().room_idle_grace_ms, 30_000);
        assert_eq!(config.worlds, vec![Box::<str>::from("default")]);
        assert_eq!(config.world_max_connections_per_user, None);
    }

    #[test]
    fn every_setting_has_help_a_value_name_and_a_shown_default() {
        let defaults = Config::defaults().settings();
        for spec in SETTINGS {
            assert!(!spec.help().is_empty(), "{}", spec.name);
            assert!(!spec.value_name.is_empty(), "{}", spec.name);
            assert!(!spec.default_text(&defaults).is_empty(), "{}", spec.name);
        }
    }

    #[test]
    fn later_sources_override_earlier_ones_and_defaults_fill_the_rest() {
        let file = toml("shards = 1\nmax_message_bytes = 1000\nidle_timeout = \"5s\"\n").unwrap();
        let vars = env(&[
            ("TURNTABLE_MAX_MESSAGE_BYTES", "2000"),
            ("TURNTABLE_IDLE_TIMEOUT", "6s"),
        ])
        .unwrap();
        let flags = given(&[("idle_timeout", "7s")]);
        let config = file
            .overridden_by(vars)
            .overridden_by(flags)
            .resolve()
            .unwrap();
        assert_eq!(config.shards, 1);
        assert_eq!(config.max_message_bytes, 2000);
        assert_eq!(config.idle_timeout, Duration::from_secs(7));
        assert_eq!(config.max_outbound_bytes, 1 << 20);
    }

    #[test]
    fn gather_reads_the_file_named_by_the_environment() {
        let dir = std::env::temp_dir().join(format!("turntable-gather-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(&path, "shards = 3\nio_memory = 100000\n").unwrap();
        let var = |name: &str| match name {
            CONFIG_ENV => Some(path.clone().into_os_string()),
            "TURNTABLE_IO_MEMORY" => Some("200000".into()),
            _ => None,
        };
        let settings = gather(None, var, given(&[("shards", "4")])).unwrap();
        assert_eq!(settings.shards, Some(4));
        assert_eq!(settings.io_memory, Some(200_000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listen_takes_host_names_and_an_empty_host() {
        let local = SocketAddr::parse("localhost:7400").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 7400, "{local}");
        assert_eq!(
            SocketAddr::parse(":7400").unwrap(),
            SocketAddr::from(([0, 0, 0, 0], 7400))
        );
        assert_eq!(
            SocketAddr::parse("[::1]:9").unwrap(),
            "[::1]:9".parse::<SocketAddr>().unwrap()
        );
        assert!(
            SocketAddr::parse("localhost")
                .unwrap_err()
                .contains("expected a host and port")
        );
        assert!(
            SocketAddr::parse("no-such-host.invalid:1")
                .unwrap_err()
                .contains("cannot resolve")
        );
    }

    #[test]
    fn durations_take_human_forms_and_need_a_unit() {
        let parse = <Duration as SettingType>::parse;
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("30").unwrap_err().contains("needs a unit"));
        assert!(parse("soon").is_err());
        let file = toml("talker_ping_timeout = \"1m30s\"").unwrap();
        assert_eq!(file.talker_ping_timeout, Some(Duration::from_secs(90)));
        assert_eq!(Duration::from_secs(90).show(), "1m 30s");
    }

    #[test]
    fn errors_name_the_setting_and_where_it_came_from() {
        let err = |r: Result<Settings, ConfigError>| r.unwrap_err().to_string();
        let resolved = |s: Settings| s.resolve().unwrap_err().to_string();
        assert_eq!(
            err(toml("\n\nidle_timeout = true\n")),
            "t.toml:3: idle_timeout: invalid type: boolean `true`, expected a duration \
             with a unit, such as \"30s\""
        );
        assert_eq!(
            err(toml("max_message_bytes = 10")),
            "t.toml:1: invalid setting max_message_bytes: 10 (must be 126 to 67108864)"
        );
        assert_eq!(
            err(toml("shards = 2\nshardz = 2")),
            "t.toml:2: shardz: unknown setting (did you mean shards?)"
        );
        assert_eq!(
            err(toml("ping_timeout = \"1s\"")),
            "t.toml:1: ping_timeout: unknown setting (did you mean talker_ping_timeout or \
             socketcluster_ping_timeout?)"
        );
        assert_eq!(
            err(toml("a = ")),
            "t.toml:1: string values must be quoted, expected literal string"
        );
        assert_eq!(
            err(env(&[("TURNTABLE_SHARDS", "many")])),
            "TURNTABLE_SHARDS: invalid setting shards: \"many\" (expected a whole number)"
        );
        let mut s = Settings::default();
        assert_eq!(
            s.set("idle_timeout", "0s").unwrap_err().to_string(),
            "invalid setting idle_timeout: 0s (must be 10ms to 1day)"
        );
        assert_eq!(
            s.set("auth_secret", "short").unwrap_err().to_string(),
            "invalid setting auth_secret: 5 bytes (must be at least 32 bytes)"
        );
        assert_eq!(
            s.set("api_key", "short").unwrap_err().to_string(),
            "invalid setting api_key: 5 bytes (must be at least 16 bytes)"
        );
        assert!(
            resolved(given(&[("listen", "0.0.0.0:7400")]))
                .starts_with("invalid setting listen: 0.0.0.0:7400 (not a loopback")
        );
        assert!(
            given(&[("listen", "0.0.0.0:7400"), ("insecure", "true")])
                .resolve()
                .is_ok()
        );
        assert_eq!(
            resolved(given(&[
                ("socketcluster_ping_interval", "5s"),
                ("socketcluster_ping_timeout", "4s"),
            ])),
            "invalid setting socketcluster_ping_interval: 5s (must be shorter than \
             socketcluster_ping_timeout, 4s)"
        );
        assert_eq!(
            s.set("worlds", "a/b").unwrap_err().to_string(),
            "invalid setting worlds: a/b (\"a/b\" is not 1 to 64 letters, digits, '-' or '_')"
        );
        let programmatic = Settings {
            shards: Some(0),
            ..Settings::default()
        };
        assert_eq!(
            resolved(programmatic),
            format!("invalid setting shards: 0 (must be 1 to {MAX_SHARDS})")
        );
    }

    #[test]
    fn list_settings_add_up_within_a_source_and_replace_across_sources() {
        let flags = given(&[("worlds", "a,b"), ("worlds", "c")]);
        assert_eq!(flags.worlds.as_deref().unwrap().join(" "), "a b c");
        let file = toml("worlds = [\"x\"]").unwrap();
        let config = file.overridden_by(flags).resolve().unwrap();
        assert_eq!(config.worlds.len(), 3);
    }

    #[test]
    fn secrets_never_show() {
        let secret = "a-secret-that-is-long-enough-for-hs256";
        let config = given(&[
            ("auth_secret", secret),
            ("api_key", "an-api-key-of-some-length"),
        ])
        .resolve()
        .unwrap();
        let shown = format!("{:?}\n{}", config, config.settings().to_toml());
        assert!(
            !shown.contains(secret) && !shown.contains("an-api-key"),
            "{shown}"
        );
        assert!(
            shown.contains("# auth_secret is set (not shown)"),
            "{shown}"
        );
    }

    #[test]
    fn webhooks_need_an_http_url_and_a_secret() {
        assert_eq!(Config::defaults().webhook_settings(), None);
        let mut bad = Settings::default();
        let err = bad.set("webhook_url", "backend:8000/events").unwrap_err();
        assert!(
            err.to_string()
                .contains("must be an http:// or https:// URL"),
            "{err}"
        );
        let unsigned = given(&[("webhook_url", "http://backend:8000/events")]).resolve();
        let err = unsigned.unwrap_err().to_string();
        assert!(err.contains("set webhook_secret too"), "{err}");
        let config = given(&[
            ("webhook_url", "http://backend:8000/events"),
            ("webhook_secret", "a-webhook-secret"),
            ("hook_timeout", "250ms"),
        ])
        .resolve()
        .unwrap();
        let webhooks = config.webhook_settings().unwrap();
        assert_eq!(webhooks.url, "http://backend:8000/events");
        assert_eq!(&*webhooks.secret, "a-webhook-secret");
        assert_eq!(webhooks.timeout, Duration::from_millis(250));
        assert!(!config.settings().to_toml().contains("a-webhook-secret"));
    }

    #[test]
    fn the_printed_settings_read_back_as_the_same_settings() {
        let config = given(&[
            ("shards", "3"),
            ("idle_timeout", "1m 30s"),
            ("worlds", "a,b"),
        ])
        .resolve()
        .unwrap();
        let printed = config.settings().to_toml();
        let again = toml(&printed).unwrap().resolve().unwrap();
        assert_eq!(again.settings().to_toml(), printed);
        assert!(printed.contains("idle_timeout = \"1m 30s\"\n"), "{printed}");
    }
}
