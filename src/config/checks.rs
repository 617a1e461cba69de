//! The checks a setting's declaration names: ranges, URLs, patterns, ids.

use super::*;

pub(super) fn check_with<T: SettingType>(
    value: &T,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<(), Refusal> {
    check(value).map_err(|reason| Refusal::Value {
        value: value.show(),
        reason,
    })
}

/// Check: `min` to `max`, both included.
pub(super) fn range<T: SettingType + PartialOrd>(
    min: T,
    max: T,
) -> impl Fn(&T) -> Result<(), String> {
    move |value| {
        if *value >= min && *value <= max {
            Ok(())
        } else {
            Err(format!("must be {} to {}", min.show(), max.show()))
        }
    }
}

/// Check: an `http://` or `https://` URL with a host.
pub(super) fn http_url() -> impl Fn(&String) -> Result<(), String> {
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
pub(super) fn node_urls() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
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
pub(super) fn tap_patterns() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
    |patterns| Taps::new(patterns).map(drop).map_err(|e| e.to_string())
}

/// Check: each entry is an address block (`10.0.0.0/8`, `::1`).
pub(super) fn address_blocks() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
    |blocks| {
        blocks
            .iter()
            .try_for_each(|block| block.parse::<Cidr>().map(drop))
            .map_err(|e| e.to_string())
    }
}

/// Check: a cluster name prefixes Redis channels, so it is kept plain.
pub(super) fn cluster_name() -> impl Fn(&String) -> Result<(), String> {
    |name| match valid_world_id(name) {
        true => Ok(()),
        false => Err("must be 1 to 64 letters, digits, '-' or '_'".to_owned()),
    }
}

/// Check: at least `min` bytes.
pub(super) fn min_bytes(min: usize) -> impl Fn(&Redacted) -> Result<(), String> {
    move |value| {
        if value.len() >= min {
            Ok(())
        } else {
            Err(format!("must be at least {min} bytes"))
        }
    }
}

/// Check: World ids appear in URLs and channel names, so they are kept plain.
pub(super) fn world_ids() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
    |ids| match ids.iter().find(|id| !valid_world_id(id)) {
        None => Ok(()),
        Some(bad) => Err(format!(
            "{bad:?} is not 1 to 64 letters, digits, '-' or '_'"
        )),
    }
}

pub(super) fn origin_patterns() -> impl Fn(&Vec<Box<str>>) -> Result<(), String> {
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

pub(super) fn valid_world_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Check: a filter tracing-subscriber takes.
pub(super) fn log_filter() -> impl Fn(&String) -> Result<(), String> {
    |filter| {
        EnvFilter::try_new(filter)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
