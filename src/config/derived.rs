//! What the parts of the server take from the resolved settings: the engine's bounds,
//! the dialects' and the hooks' settings, the token checker, the cluster's shape, and
//! the checks that involve several settings at once.

use super::*;

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

    /// The per-address limit on new connections that every shard of the process shares.
    pub fn connection_rate(&self) -> ConnectionRate {
        let exempt = self.connection_rate_exempt.iter();
        ConnectionRate::new(
            self.connection_rate,
            self.connection_burst,
            exempt
                .map(|block| block.parse().expect("checked when the settings resolved"))
                .collect(),
        )
    }

    /// What every shard's hook client shares.
    pub fn hook_settings(&self) -> HookSettings {
        HookSettings {
            timeout: self.hook_timeout,
            concurrency: self.hook_concurrency,
        }
    }

    /// Whether any hook calls the backend (an `rpc_hook`, a `connect_hook`, or a
    /// `subscribe_hook` or `publish_hook`, global or a namespace's): only then is the
    /// hook client started.
    pub fn calls_backend(&self) -> bool {
        self.rpc_hook.is_some()
            || self.connect_hook.is_some()
            || self
                .effective_namespaces()
                .iter()
                .any(|(_, p)| p.subscribe_hook.is_some() || p.publish_hook.is_some())
    }

    /// The namespaces' rules as the shards apply them: the global `subscribe_hook` and
    /// `publish_hook` filled in where a namespace names none of its own.
    pub fn effective_namespaces(&self) -> Namespaces {
        let mut namespaces = self.namespaces.clone();
        namespaces.inherit_hooks(self.subscribe_hook.as_deref(), self.publish_hook.as_deref());
        namespaces
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
            namespaces: std::sync::Arc::new(self.effective_namespaces()),
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
    pub(super) fn check_together(&self) -> Result<(), ConfigError> {
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
        if let Some((name, rule)) = self.effective_namespaces().backend_rule_without_hook() {
            let hook = if rule == "receive" {
                "subscribe_hook"
            } else {
                "publish_hook"
            };
            return Err(invalid(
                "namespaces",
                format!("{name}.{rule} = \"backend\""),
                format!(
                    "the backend decides, so it needs a {hook} URL: the namespace's or the global {hook}"
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

/// The dialects' settings default to the settings' defaults, declared once in the `settings!` list.
impl Default for protocol::Settings {
    fn default() -> Self {
        Config::defaults().dialect_settings()
    }
}

/// The engine's bounds default to the settings' defaults, declared once in the `settings!` list.
impl Default for Limits {
    fn default() -> Self {
        Config::defaults().limits()
    }
}
