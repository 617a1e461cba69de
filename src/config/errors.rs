//! Why settings are refused: [`ConfigError`] (one line, naming the setting and where
//! its value came from), the refusals it is made from, and the "did you mean" of an
//! unknown key.

use super::*;

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
pub(super) enum Refusal {
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
    pub(super) fn into_error(self, origin: Origin, name: &str) -> ConfigError {
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
pub(super) fn did_you_mean(unknown: &str) -> String {
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

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
