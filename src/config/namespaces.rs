//! The `namespaces` setting: channels' rules by namespace, as TOML tables.
//!
//! ```toml
//! [namespaces.chat]          # channels named chat:<anything>
//! receive = "authenticated"  # members | authenticated | anyone
//! publish = "subscribers"    # members | subscribers | authenticated | anyone | server
//! presence = true            # the member list may be asked for
//! join_leave = true          # members hear of joins and leaves
//! max_members = 500          # absent: no limit
//! ```
//!
//! A built-in namespace's keys that a table leaves out keep their built-in values; a
//! new namespace starts members-only. As a flag or variable the same tables are given
//! inline: `--namespaces 'chat = { receive = "anyone" }'`.

use std::fmt::Display;
use std::str::FromStr;

use super::{Arity, SettingType};
use crate::engine::namespace::{DOCUMENT, Namespaces, Policy, TALKER};

impl SettingType for Namespaces {
    const EXPECTED: &'static str = "a table of namespace tables";
    const ARITY: Arity = Arity::Many;

    fn parse(text: &str) -> Result<Self, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        apply(Namespaces::default(), &table)
    }

    fn from_toml(value: &toml::Value) -> Option<Result<Self, String>> {
        value
            .as_table()
            .map(|table| apply(Namespaces::default(), table))
    }

    fn show(&self) -> String {
        settable(self)
            .map(|(name, policy)| format!("{name} = {}", policy_table(policy)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn to_toml(&self) -> Option<toml::Value> {
        let table = settable(self)
            .map(|(name, policy)| (name.to_owned(), toml::Value::Table(policy_table(policy))))
            .collect();
        Some(toml::Value::Table(table))
    }

    fn append(&mut self, more: Self) {
        let defaults = Namespaces::default();
        for (name, policy) in more.iter() {
            if defaults.get(name) != Some(policy) {
                self.set(name, policy.clone());
            }
        }
    }
}

/// The namespaces whose rules can be set (all but the fixed ones).
fn settable(namespaces: &Namespaces) -> impl Iterator<Item = (&str, &Policy)> {
    namespaces
        .iter()
        .filter(|(name, _)| *name != TALKER && *name != DOCUMENT)
}

/// `namespaces` with the rules of `table`'s entries.
fn apply(mut namespaces: Namespaces, table: &toml::Table) -> Result<Namespaces, String> {
    for (name, rules) in table {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "namespace {name:?}: names are letters, digits, '_' and '-'"
            ));
        }
        if name == TALKER || name == DOCUMENT {
            return Err(format!(
                "namespace {name:?}: its rules are fixed (members only: a Talker room is \
                 reached by connecting to it, a document by opening it); none can be set"
            ));
        }
        let Some(rules) = rules.as_table() else {
            return Err(format!("namespace {name:?}: expected a table of rules"));
        };
        let mut policy = namespaces.get(name).cloned().unwrap_or(Policy::MEMBERS);
        for (key, value) in rules {
            set_rule(&mut policy, key, value)
                .map_err(|e| format!("namespaces.{name}.{key}: {e}"))?;
        }
        namespaces.set(name, policy);
    }
    Ok(namespaces)
}

fn set_rule(policy: &mut Policy, key: &str, value: &toml::Value) -> Result<(), String> {
    match key {
        "receive" => policy.receive = named(value)?,
        "publish" => policy.publish = named(value)?,
        "presence" => policy.presence = value.as_bool().ok_or("expected true or false")?,
        "join_leave" => policy.join_leave = value.as_bool().ok_or("expected true or false")?,
        "max_members" => {
            let n = value.as_integer().ok_or("expected a whole number")?;
            policy.max_members = Some(
                usize::try_from(n)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("must be at least 1")?,
            );
        }
        "subscribe_hook" => policy.subscribe_hook = Some(hook_url(value)?),
        "publish_hook" => policy.publish_hook = Some(hook_url(value)?),
        _ => {
            return Err(
                "unknown rule (receive, publish, presence, join_leave, max_members, \
                        subscribe_hook, publish_hook)"
                    .to_owned(),
            );
        }
    }
    Ok(())
}

/// A hook's URL: http or https.
fn hook_url(value: &toml::Value) -> Result<Box<str>, String> {
    let url = value.as_str().ok_or("expected a URL string")?;
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(Box::from(url))
    } else {
        Err(format!("{url:?} is not an http:// or https:// URL"))
    }
}

fn named<T: FromStr<Err: Display>>(value: &toml::Value) -> Result<T, String> {
    value
        .as_str()
        .ok_or_else(|| "expected a string".to_owned())?
        .parse()
        .map_err(|e: T::Err| e.to_string())
}

fn policy_table(policy: &Policy) -> toml::Table {
    let mut table = toml::Table::new();
    let mut put = |key: &str, value: toml::Value| table.insert(key.to_owned(), value);
    put("receive", policy.receive.as_str().into());
    put("publish", policy.publish.as_str().into());
    put("presence", policy.presence.into());
    put("join_leave", policy.join_leave.into());
    if let Some(max) = policy.max_members {
        put("max_members", toml::Value::Integer(max as i64));
    }
    for (key, url) in [
        ("subscribe_hook", &policy.subscribe_hook),
        ("publish_hook", &policy.publish_hook),
    ] {
        if let Some(url) = url {
            put(key, url.to_string().into());
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::namespace::{Readers, TURNTABLE, Writers};

    #[test]
    fn tables_change_only_the_rules_they_name() {
        let ns = Namespaces::parse(
            r#"chat = { receive = "authenticated", max_members = 3 }
               turntable = { join_leave = false }"#,
        )
        .unwrap();
        let chat = ns.get("chat").unwrap();
        assert_eq!(chat.receive, Readers::Authenticated);
        assert_eq!(
            chat.publish,
            Writers::Members,
            "a new namespace starts members-only"
        );
        assert_eq!(chat.max_members, Some(3));
        let turntable = ns.get(TURNTABLE).unwrap();
        assert!(!turntable.join_leave);
        assert_eq!(turntable.receive, Readers::Members);
    }

    #[test]
    fn bad_rules_say_where_and_why() {
        for (text, expected) in [
            (
                r#"chat = { receive = "everyone" }"#,
                "namespaces.chat.receive: \"everyone\" is not one of",
            ),
            (
                r#"chat = { recieve = "anyone" }"#,
                "namespaces.chat.recieve: unknown rule",
            ),
            (r#"chat = { max_members = 0 }"#, "must be at least 1"),
            (r#""a:b" = { presence = true }"#, "names are letters"),
            ("chat = 1", "expected a table"),
            (
                r#"chat = { publish_hook = "ftp://x" }"#,
                "not an http:// or https:// URL",
            ),
        ] {
            let err = Namespaces::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn the_toml_form_reads_back() {
        let ns = Namespaces::parse(r#"chat = { publish = "server", max_members = 9 }"#).unwrap();
        let toml = ns.to_toml().unwrap();
        let back = Namespaces::from_toml(&toml).unwrap().unwrap();
        assert_eq!(back, ns);
    }
}
