//! Token authentication shared by every dialect: JWTs signed HS256 with the server's
//! secret. `sub` is the user id, `name` the display name, `exp` (when present) is
//! checked, and every other claim is profile data the dialects may pass on to others.
//! A token whose `nbf` (not before) or `iat` (issued at) is later than now plus a small
//! leeway (`token_leeway`, for clocks slightly apart) is refused as invalid: it was
//! made for later, or by a clock that cannot be trusted.
//! Signatures are checked by the `jsonwebtoken` crate (constant-time HMAC comparison).

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::clock::now_secs;
use crate::engine::id as ids;

/// How far ahead of this server's clock a token's `nbf` or `iat` may be, unless
/// [`Auth::with_leeway`] says otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// The shortest secret accepted: HS256 keys shorter than the hash are weak.
pub const MIN_SECRET_BYTES: usize = 32;

/// The server secret. Its `Debug` form is redacted so settings can be logged safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, refusing one too short to be safe.
    pub fn new(secret: String) -> Result<Secret, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "invalid setting auth_secret: {} bytes (must be at least {MIN_SECRET_BYTES})",
                secret.len()
            ));
        }
        Ok(Secret(secret))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Who a verified token says the client is.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub user: Box<str>,
    pub name: Option<Box<str>>,
    /// Every claim other than `sub`, `name`, `exp`, `iat` and `nbf`.
    pub profile: Map<String, Value>,
}

/// Why a token was refused; each dialect reports these in its own error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub enum AuthError {
    /// No token where one is required.
    Missing,
    /// Not a JWT, wrong signature or algorithm, claims of the wrong shape, or `nbf` or
    /// `iat` in the future (beyond the leeway).
    Invalid,
    /// `exp` is in the past.
    Expired,
}

impl AuthError {
    /// Dotted code, as turntable v1 and World report it.
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "auth.missing_token",
            AuthError::Invalid => "auth.invalid_token",
            AuthError::Expired => "auth.expired_token",
        }
    }

    /// A human-readable explanation.
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => "a token is required",
            AuthError::Invalid => "the token is not valid",
            AuthError::Expired => "the token has expired",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(flatten)]
    profile: Map<String, Value>,
}

fn kind_of(e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        _ => AuthError::Invalid,
    }
}

/// Verifies (and, for the `token` command and tests, issues) tokens with one secret.
pub struct Auth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    /// The same checks without requiring `sub`, for free-form tokens.
    free_form: Validation,
    /// How far in the future `nbf` and `iat` may be, in seconds.
    leeway: u64,
    /// Tokens refused so far (an `Auth` belongs to one shard), for metrics.
    failures: Cell<u64>,
    /// When a refusal was last logged, and `failures` then.
    logged: Cell<Option<(Instant, u64)>>,
}

/// The shortest time between two log lines about refused tokens on one shard: a
/// client trying forged tokens in a loop must not flood the log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Whether `nbf` or `iat` (seconds since the epoch) lies beyond `now + leeway`.
fn too_early(nbf: Option<u64>, iat: Option<u64>, now: u64, leeway: u64) -> bool {
    let latest = now.saturating_add(leeway);
    nbf.is_some_and(|t| t > latest) || iat.is_some_and(|t| t > latest)
}

/// A free-form token's time claim: absent, a number of seconds (a fraction is cut), or
/// `Err` for anything else.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => match value.as_u64() {
            Some(secs) => Ok(Some(secs)),
            None => value
                .as_f64()
                .filter(|secs| *secs >= 0.0)
                .map(|secs| Some(secs as u64))
                .ok_or(AuthError::Invalid),
        },
    }
}

impl Auth {
    pub fn new(secret: &Secret) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub"]);
        validation.leeway = 0;
        let mut free_form = validation.clone();
        free_form.set_required_spec_claims::<&str>(&[]);
        Auth {
            decoding: DecodingKey::from_secret(secret.0.as_bytes()),
            encoding: EncodingKey::from_secret(secret.0.as_bytes()),
            validation,
            free_form,
            leeway: DEFAULT_LEEWAY.as_secs(),
            failures: Cell::new(0),
            logged: Cell::new(None),
        }
    }

    /// The same, allowing `nbf` and `iat` up to `leeway` ahead of now (whole seconds).
    pub fn with_leeway(mut self, leeway: Duration) -> Auth {
        self.leeway = leeway.as_secs();
        self
    }

    /// Tokens refused so far.
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }

    /// Counts a refusal on its way out, and logs it (why, never the token) unless a
    /// line went out less than [`REFUSAL_LOG_INTERVAL`] ago; the next line counts the
    /// refusals left out.
    fn refused(&self, e: AuthError) -> AuthError {
        let failures = self.failures.get() + 1;
        self.failures.set(failures);
        let now = Instant::now();
        let since = match self.logged.get() {
            Some((at, _)) if now.duration_since(at) < REFUSAL_LOG_INTERVAL => return e,
            Some((_, then)) => failures - then - 1,
            None => 0,
        };
        tracing::info!(
            reason = e.code(),
            unlogged_refusals = since,
            "a client's token was refused"
        );
        self.logged.set(Some((now, failures)));
        e
    }

    /// Checks a token's signature, algorithm, expiry, `nbf` and `iat` and returns who it
    /// names.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return Err(self.refused(AuthError::Missing));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| self.refused(kind_of(&e)))?
            .claims;
        if !ids::is_valid(&claims.sub) || too_early(claims.nbf, claims.iat, now_secs(), self.leeway)
        {
            return Err(self.refused(AuthError::Invalid));
        }
        Ok(Identity {
            user: claims.sub.into_boxed_str(),
            name: claims.name.map(String::into_boxed_str),
            profile: claims.profile,
        })
    }

    /// Checks a free-form token (any JSON object of claims, `sub` optional; `exp`,
    /// `nbf` and `iat` checked when present) and returns its claims, as SocketCluster
    /// clients expect.
    pub fn verify_claims(&self, token: &str) -> Result<Map<String, Value>, AuthError> {
        if token.is_empty() {
            return Err(self.refused(AuthError::Missing));
        }
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.free_form)
                .map(|data| data.claims)
                .map_err(|e| self.refused(kind_of(&e)))?;
        let times =
            time_claim(&claims, "nbf").and_then(|nbf| Ok((nbf, time_claim(&claims, "iat")?)));
        match times {
            Ok((nbf, iat)) if !too_early(nbf, iat, now_secs(), self.leeway) => Ok(claims),
            _ => Err(self.refused(AuthError::Invalid)),
        }
    }

    /// Signs free-form claims as they are.
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing with an HMAC key cannot fail")
    }

    /// Signs a token for `user` expiring at `expires_at` (seconds since the epoch).
    pub fn issue(
        &self,
        user: &str,
        name: Option<&str>,
        expires_at: u64,
        profile: Map<String, Value>,
    ) -> String {
        let claims = Claims {
            sub: user.to_owned(),
            name: name.map(str::to_owned),
            exp: Some(expires_at),
            iat: Some(now_secs()),
            nbf: None,
            profile,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an HMAC key cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(secret: &str) -> Auth {
        Auth::new(&Secret::new(secret.repeat(32)).unwrap())
    }

    #[test]
    fn issued_tokens_verify_with_their_profile() {
        let a = auth("k");
        let mut profile = Map::new();
        profile.insert("team".into(), Value::from("red"));
        let token = a.issue("1:42", Some("Ada"), now_secs() + 60, profile.clone());
        let id = a.verify(&token).unwrap();
        assert_eq!(&*id.user, "1:42");
        assert_eq!(id.name.as_deref(), Some("Ada"));
        assert_eq!(id.profile, profile);
    }

    #[test]
    fn forged_expired_and_missing_tokens_are_refused() {
        let (a, b) = (auth("k"), auth("x"));
        let forged = b.issue("1:42", None, now_secs() + 60, Map::new());
        assert_eq!(a.verify(&forged), Err(AuthError::Invalid));
        let expired = a.issue("1:42", None, now_secs() - 10, Map::new());
        assert_eq!(a.verify(&expired), Err(AuthError::Expired));
        assert_eq!(a.verify(""), Err(AuthError::Missing));
        assert_eq!(a.verify("not.a.jwt"), Err(AuthError::Invalid));
        let no_sub = a.issue("", None, now_secs() + 60, Map::new());
        assert_eq!(a.verify(&no_sub), Err(AuthError::Invalid));
    }

    #[test]
    fn free_form_tokens_need_no_subject() {
        let a = auth("k");
        let mut claims = Map::new();
        claims.insert("username".into(), Value::from("bob"));
        let token = a.sign(&claims);
        assert_eq!(a.verify_claims(&token), Ok(claims.clone()));
        assert_eq!(a.verify(&token), Err(AuthError::Invalid));
        claims.insert("exp".into(), Value::from(now_secs() - 5));
        assert_eq!(a.verify_claims(&a.sign(&claims)), Err(AuthError::Expired));
        let forged = auth("x").sign(&claims);
        assert_eq!(a.verify_claims(&forged), Err(AuthError::Invalid));
    }

    #[test]
    fn tokens_for_later_are_refused_beyond_the_leeway() {
        let a = auth("k").with_leeway(Duration::from_secs(30));
        let now = now_secs();
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("1:42"));
        let with = |name: &str, at: u64| {
            let mut c = claims.clone();
            c.insert(name.into(), Value::from(at));
            a.sign(&c)
        };
        for name in ["nbf", "iat"] {
            let later = with(name, now + 3600);
            assert_eq!(a.verify(&later), Err(AuthError::Invalid), "{name}");
            assert_eq!(a.verify_claims(&later), Err(AuthError::Invalid), "{name}");
            let within = with(name, now + 20);
            assert!(a.verify(&within).is_ok(), "{name}");
            assert!(a.verify_claims(&within).is_ok(), "{name}");
            let past = with(name, now - 3600);
            assert!(a.verify(&past).is_ok(), "{name}");
        }
        let year = with("iat", now + 365 * 86_400);
        assert_eq!(a.verify(&year), Err(AuthError::Invalid));
        let mut odd = claims.clone();
        odd.insert("nbf".into(), Value::from("tomorrow"));
        assert_eq!(a.verify_claims(&a.sign(&odd)), Err(AuthError::Invalid));
        let strict = auth("k").with_leeway(Duration::ZERO);
        assert_eq!(
            strict.verify(&with("nbf", now + 20)),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        let err = Secret::new("short".into()).unwrap_err();
        assert!(err.starts_with("invalid setting auth_secret"), "{err}");
        let secret = Secret::new("s".repeat(40)).unwrap();
        assert!(!format!("{secret:?}").contains("sss"));
    }
}
