//! Which channels the backend bus taps (the `tap` setting): patterns that are a channel
//! name, or a prefix followed by `*` (matching any suffix, `*` alone every channel).

/// The tap patterns, checked by a channel's owner where it stamps a publication or
/// admits and removes a member; no patterns cost one check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taps {
    patterns: Vec<Box<str>>,
}

impl Taps {
    /// Taps from patterns, or the first invalid one with why.
    pub fn new(patterns: &[Box<str>]) -> Result<Taps, TapPatternError> {
        for pattern in patterns {
            check(pattern).map_err(|why| TapPatternError {
                pattern: pattern.clone(),
                why,
            })?;
        }
        Ok(Taps {
            patterns: patterns.to_vec(),
        })
    }

    /// Whether `channel` is tapped.
    pub fn matches(&self, channel: &str) -> bool {
        self.patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => channel.starts_with(prefix),
            None => **p == *channel,
        })
    }
}

/// A `tap` pattern that is not one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?}: {why}")]
pub struct TapPatternError {
    pub pattern: Box<str>,
    pub why: &'static str,
}

/// Why a pattern is not one: empty, too long, or a `*` elsewhere than at the end.
fn check(pattern: &str) -> Result<(), &'static str> {
    if pattern.is_empty() || pattern.len() > 256 {
        return Err("a tap pattern is 1 to 256 bytes");
    }
    if pattern.find('*').is_some_and(|i| i != pattern.len() - 1) {
        return Err("'*' may only end a tap pattern (it matches any suffix)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_and_prefixes() {
        let taps = Taps::new(&["game:*".into(), "lobby".into()]).unwrap();
        assert!(taps.matches("game:1"));
        assert!(taps.matches("game:"));
        assert!(taps.matches("lobby"));
        assert!(!taps.matches("lobby2"));
        assert!(!taps.matches("games"));
        assert!(!Taps::default().matches("game:1"));
        assert!(Taps::new(&["g*me".into()]).is_err());
        assert!(Taps::new(&["".into()]).is_err());
        assert!(Taps::new(&["*".into()]).unwrap().matches("x"));
    }
}
