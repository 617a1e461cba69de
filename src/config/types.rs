//! The types a setting can have ([`SettingType`]): how each reads from text and TOML
//! and how it shows, and the few types that exist for settings alone.

use super::*;

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

pub(super) fn store<T: SettingType>(slot: &mut Option<T>, value: T) {
    match slot {
        Some(old) => old.append(value),
        None => *slot = Some(value),
    }
}

pub(super) fn from_toml<T: SettingType>(value: &toml::Value) -> Result<T, Refusal> {
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
pub(super) fn describe(value: &toml::Value) -> String {
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

pub(super) fn toml_line<T: SettingType>(name: &str, value: Option<&T>) -> String {
    match value {
        Some(value) => match value.to_toml() {
            Some(toml) => format!("{name} = {toml}\n"),
            None => format!("# {name} is set (not shown)\n"),
        },
        None => format!("# {name} is not set\n"),
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
