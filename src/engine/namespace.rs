//! Namespaces: a channel's rules belong to the channel, whichever dialect its clients
//! speak. Every channel is in exactly one namespace, found from its name:
//!
//! * `lobby` is in `lobby`;
//! * `world:<id>:ot:<name>` (a World document's channel) is in `document`;
//! * `<prefix>:<rest>` is in namespace `<prefix>` when one of that name exists (built in
//!   or configured);
//! * every other name is in `default`.
//!
//! The built-in kinds map to built-in namespaces: turntable v1 game rooms are
//! `turntable:<room>`, the lobby's games `game:<id>`, World channels
//! `world:<world>:<name>`, Talker rooms `talker:<room>` (a Talker room is reached only by
//! connecting to it, so only its rules on members apply), SocketCluster topics and
//! anything else `default`. A namespace's rules say who may receive without joining,
//! who may publish, whether members may be listed and members see joins and leaves, and
//! how many members a channel may have. Joining (becoming a member) needs an identity
//! everywhere.
//!
//! The rules are checked where the channel's state is: a subscription or publication on
//! the connection's shard (which knows its ties), the member limit at the owner. A
//! namespace's hooks (`subscribe_hook`, `publish_hook`: backend URLs) are asked by the
//! network layer before the engine sees the command, so `backend` rules count as
//! allowed here: a command reaches the engine only once its hook said yes.

use std::fmt;
use std::str::FromStr;

/// Who may receive a namespace's publications by subscribing, without joining.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Readers {
    /// Members only: a subscription is refused.
    Members,
    /// Any connection with an identity.
    Authenticated,
    /// Any connection.
    Anyone,
    /// Whoever the backend's subscribe hook allows (checked before the engine sees the
    /// subscription; the namespace needs a `subscribe_hook`).
    Backend,
}

/// Who may publish into a namespace's channels.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Writers {
    /// Members (joined) only.
    Members,
    /// Members and subscribers.
    Subscribers,
    /// Any connection with an identity.
    Authenticated,
    /// Any connection.
    Anyone,
    /// Nobody but the server (the HTTP API).
    Server,
    /// Whatever the backend's publish hook allows (checked before the engine sees the
    /// publication; the namespace needs a `publish_hook`).
    Backend,
}

/// One namespace's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub receive: Readers,
    pub publish: Writers,
    /// Whether the member list may be asked for (World's `channel.members`, the API's
    /// always may).
    pub presence: bool,
    /// Whether members hear of other members joining and leaving.
    pub join_leave: bool,
    /// The most members a channel may have; `None` for no limit.
    pub max_members: Option<usize>,
    /// The backend URL asked before every join and subscription, if any.
    pub subscribe_hook: Option<Box<str>>,
    /// The backend URL asked before every publication (it may refuse it or replace its
    /// data), if any.
    pub publish_hook: Option<Box<str>>,
}

impl Policy {
    /// Members only, for reading and writing: the rule of every built-in kind whose
    /// members are players or participants.
    pub const MEMBERS: Policy = Policy {
        receive: Readers::Members,
        publish: Writers::Members,
        presence: true,
        join_leave: true,
        max_members: None,
        subscribe_hook: None,
        publish_hook: None,
    };

    /// SocketCluster's open pub/sub: anyone subscribes, anyone publishes.
    pub const OPEN: Policy = Policy {
        receive: Readers::Anyone,
        publish: Writers::Anyone,
        presence: true,
        join_leave: true,
        max_members: None,
        subscribe_hook: None,
        publish_hook: None,
    };

    /// The lobby: anyone may follow it, only the server writes.
    pub const LOBBY: Policy = Policy {
        receive: Readers::Anyone,
        publish: Writers::Server,
        presence: true,
        join_leave: true,
        max_members: None,
        subscribe_hook: None,
        publish_hook: None,
    };
}

/// The namespace of channels without a known prefix.
pub const DEFAULT: &str = "default";
/// The lobby's namespace (the channel `lobby` alone).
pub const LOBBY: &str = "lobby";
/// World documents' channels, reached only by opening the document.
pub const DOCUMENT: &str = "document";
/// turntable v1 game rooms.
pub const TURNTABLE: &str = "turntable";
/// The lobby's games, `game:<id>`.
pub const GAME: &str = "game";
/// World channels, `world:<world>:<name>`.
pub const WORLD: &str = "world";
/// Talker rooms.
pub const TALKER: &str = "talker";

/// Every namespace a server knows, the built-in ones first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespaces {
    named: Vec<(Box<str>, Policy)>,
}

impl Default for Namespaces {
    fn default() -> Self {
        let built_in = [
            (DEFAULT, Policy::OPEN),
            (LOBBY, Policy::LOBBY),
            (DOCUMENT, Policy::MEMBERS),
            (TURNTABLE, Policy::MEMBERS),
            (GAME, Policy::MEMBERS),
            (WORLD, Policy::MEMBERS),
            (TALKER, Policy::MEMBERS),
        ];
        Namespaces {
            named: built_in
                .into_iter()
                .map(|(name, policy)| (Box::from(name), policy))
                .collect(),
        }
    }
}

impl Namespaces {
    /// Sets `name`'s rules, adding the namespace if it is new.
    pub fn set(&mut self, name: &str, policy: Policy) {
        match self.named.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, old)) => *old = policy,
            None => self.named.push((Box::from(name), policy)),
        }
    }

    /// A namespace's rules by its name.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.named
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, policy)| policy)
    }

    /// Gives every namespace whose rules can be set (all but `talker` and `document`)
    /// the global hooks where it names none of its own.
    pub fn inherit_hooks(&mut self, subscribe: Option<&str>, publish: Option<&str>) {
        for (name, policy) in &mut self.named {
            if &**name == TALKER || &**name == DOCUMENT {
                continue;
            }
            if policy.subscribe_hook.is_none() {
                policy.subscribe_hook = subscribe.map(Box::from);
            }
            if policy.publish_hook.is_none() {
                policy.publish_hook = publish.map(Box::from);
            }
        }
    }

    /// The first namespace that leaves a decision to the backend without the hook that
    /// makes it: its name and the rule (`receive` or `publish`).
    pub fn backend_rule_without_hook(&self) -> Option<(&str, &'static str)> {
        self.iter().find_map(|(name, policy)| {
            if policy.receive == Readers::Backend && policy.subscribe_hook.is_none() {
                Some((name, "receive"))
            } else if policy.publish == Writers::Backend && policy.publish_hook.is_none() {
                Some((name, "publish"))
            } else {
                None
            }
        })
    }

    /// Every namespace and its rules, the built-in ones first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Policy)> {
        self.named.iter().map(|(name, policy)| (&**name, policy))
    }

    /// The name of the namespace `channel` is in (the module's naming rule).
    pub fn name_of<'a>(&'a self, channel: &'a str) -> &'a str {
        if channel == LOBBY {
            return LOBBY;
        }
        let Some((prefix, rest)) = channel.split_once(':') else {
            return DEFAULT;
        };
        if prefix == WORLD
            && rest
                .split_once(':')
                .is_some_and(|(_, r)| r.starts_with("ot:"))
        {
            return DOCUMENT;
        }
        match self.named.iter().find(|(n, _)| &**n == prefix) {
            Some((name, _)) if &**name != DEFAULT && &**name != LOBBY => name,
            _ => DEFAULT,
        }
    }

    /// The rules of the channel's namespace.
    pub fn policy_of(&self, channel: &str) -> &Policy {
        let name = self.name_of(channel);
        self.get(name).expect("name_of names a namespace")
    }
}

/// A rule's name that is none of its kind's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{found:?} is not one of {expected}")]
pub struct UnknownRule {
    found: String,
    expected: &'static str,
}

macro_rules! rule_names {
    ($ty:ident, $expected:literal, $($variant:ident => $name:literal),+) => {
        impl $ty {
            /// The rule's name in settings.
            pub fn as_str(self) -> &'static str {
                match self { $( $ty::$variant => $name, )+ }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownRule;
            fn from_str(text: &str) -> Result<Self, UnknownRule> {
                match text {
                    $( $name => Ok($ty::$variant), )+
                    _ => Err(UnknownRule { found: text.to_owned(), expected: $expected }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

rule_names!(Readers, "members, authenticated, anyone, backend",
    Members => "members", Authenticated => "authenticated", Anyone => "anyone",
    Backend => "backend");
rule_names!(Writers, "members, subscribers, authenticated, anyone, server, backend",
    Members => "members", Subscribers => "subscribers", Authenticated => "authenticated",
    Anyone => "anyone", Server => "server", Backend => "backend");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_hooks_fill_in_where_a_namespace_has_none_but_never_the_fixed_ones() {
        let mut ns = Namespaces::default();
        let own = Policy {
            publish_hook: Some("http://own/publish".into()),
            ..Policy::MEMBERS
        };
        ns.set("chat", own);
        ns.inherit_hooks(Some("http://global/join"), Some("http://global/publish"));
        let hooks = |name| {
            let p = ns.get(name).unwrap();
            (p.subscribe_hook.as_deref(), p.publish_hook.as_deref())
        };
        let global = (Some("http://global/join"), Some("http://global/publish"));
        for name in [DEFAULT, LOBBY, TURNTABLE, GAME, WORLD] {
            assert_eq!(hooks(name), global, "{name}");
        }
        assert_eq!(
            hooks("chat"),
            (Some("http://global/join"), Some("http://own/publish"))
        );
        assert_eq!(hooks(TALKER), (None, None));
        assert_eq!(hooks(DOCUMENT), (None, None));
    }

    #[test]
    fn every_built_in_kind_maps_to_its_namespace() {
        let ns = Namespaces::default();
        for (channel, expected) in [
            ("lobby", LOBBY),
            ("lobbyist", DEFAULT),
            ("game:duel", GAME),
            ("turntable:CStrike", TURNTABLE),
            ("world:default:hall", WORLD),
            ("world:default:ot:notes", DOCUMENT),
            ("world:default:otter", WORLD),
            ("talker:den", TALKER),
            ("CStrike", DEFAULT),
            ("news:today", DEFAULT),
            ("default:x", DEFAULT),
            ("lobby:x", DEFAULT),
        ] {
            assert_eq!(ns.name_of(channel), expected, "{channel}");
        }
    }

    #[test]
    fn configured_namespaces_take_their_prefix_and_can_replace_built_in_rules() {
        let mut ns = Namespaces::default();
        let chat = Policy {
            receive: Readers::Authenticated,
            ..Policy::OPEN
        };
        ns.set("chat", chat.clone());
        assert_eq!(ns.policy_of("chat:general"), &chat);
        ns.set(DEFAULT, Policy::MEMBERS);
        assert_eq!(ns.policy_of("plain"), &Policy::MEMBERS);
        assert_eq!(ns.policy_of("turntable:x"), &Policy::MEMBERS);
    }

    #[test]
    fn rules_read_back_from_their_names() {
        for r in [
            Readers::Members,
            Readers::Authenticated,
            Readers::Anyone,
            Readers::Backend,
        ] {
            assert_eq!(r.as_str().parse(), Ok(r));
        }
        for w in [
            Writers::Members,
            Writers::Subscribers,
            Writers::Authenticated,
            Writers::Anyone,
            Writers::Server,
            Writers::Backend,
        ] {
            assert_eq!(w.as_str().parse(), Ok(w));
        }
        assert!("everyone".parse::<Readers>().is_err());
    }
}
