//! Who may see the dashboard, and what a dashboard request carries.
//!
//! The dashboard asks for its own key (`dashboard_key`) or, without one, the API key;
//! without either it is closed (403) unless the API is open (development mode: no
//! auth secret, a loopback address), when it is open too.
//!
//! A browser signs in once with the page's form (`POST /dashboard`, `key=KEY`). The
//! answer sets the cookie [`COOKIE`] to a token derived from the key (HMAC-SHA256 of a
//! fixed label under the key: it opens the dashboard and nothing else, and does not
//! reveal the key) — `HttpOnly`, `SameSite=Strict`, `Path=/dashboard`, and `Secure`
//! when a proxy in front says the request came over https — which the page and its
//! event stream (an `EventSource`, which cannot send headers) then carry. Tools send
//! `Authorization: apikey KEY` instead. The key never travels in a URL, where logs,
//! the browser's history and `Referer` would keep it. Every comparison takes the
//! same time whatever matches.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::dashboard_assets::Asset;
use super::keys;

/// The cookie a signed-in browser holds.
pub const COOKIE: &str = "turntable_dashboard";

/// Who may see the dashboard, from the settings.
#[derive(Clone)]
pub enum Guard {
    /// No key and development mode: open to anyone who can reach the port.
    Open,
    /// No key and not development mode.
    Closed,
    /// The key, and the token a signed-in browser's cookie holds.
    Key { key: Box<str>, token: Box<str> },
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Guard::Open => "Open",
            Guard::Closed => "Closed",
            Guard::Key { .. } => "Key(<redacted>)",
        })
    }
}

/// What the guard makes of a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Granted,
    /// No credentials, or wrong ones: sign in (401).
    SignIn,
    /// The dashboard is closed: no key is configured (403).
    Closed,
}

impl Guard {
    /// The guard for `key` (the dashboard's, else the API's); without one, open only
    /// if the API is (`open_without_key`).
    pub fn new(key: Option<&str>, open_without_key: bool) -> Guard {
        match key {
            Some(key) => Guard::Key {
                key: key.into(),
                token: token(key).into(),
            },
            None if open_without_key => Guard::Open,
            None => Guard::Closed,
        }
    }

    /// Whether `credentials` open the dashboard.
    pub fn admits(&self, credentials: &Credentials) -> Verdict {
        let Guard::Key { key, token } = self else {
            return match self {
                Guard::Open => Verdict::Granted,
                _ => Verdict::Closed,
            };
        };
        let by_cookie = credentials
            .cookie
            .as_deref()
            .is_some_and(|c| keys::constant_time_eq(c.as_bytes(), token.as_bytes()));
        let by_header = keys::presented(credentials.authorization.as_deref())
            .is_some_and(|k| keys::constant_time_eq(k.as_bytes(), key.as_bytes()));
        if by_cookie || by_header {
            Verdict::Granted
        } else {
            Verdict::SignIn
        }
    }

    /// The `Set-Cookie` value that signs a browser in with `given` (the form's key),
    /// if it is the key; `secure` adds `Secure`.
    pub fn sign_in(&self, given: &str, secure: bool) -> Option<String> {
        let Guard::Key { key, token } = self else {
            return None;
        };
        keys::constant_time_eq(given.as_bytes(), key.as_bytes()).then(|| {
            let secure = if secure { "; Secure" } else { "" };
            format!("{COOKIE}={token}; Path=/dashboard; HttpOnly; SameSite=Strict{secure}")
        })
    }
}

/// The cookie's value for `key`: HMAC-SHA256(key, label), in hex.
fn token(key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(b"turntable dashboard sign-in");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a dashboard request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `GET /dashboard`: the page, or the sign-in form.
    Page,
    /// `POST /dashboard`: the sign-in form's answer.
    SignIn,
    /// `GET /dashboard/events`: the figures, as server-sent events.
    Events,
    /// `GET /dashboard/NAME`: a static file.
    Asset(Asset),
}

/// What a dashboard request presents to the guard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The value of the [`COOKIE`] cookie.
    pub cookie: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

impl Credentials {
    /// The credentials in a request's `Cookie` and `Authorization` headers.
    pub fn from_headers(cookie: Option<&str>, authorization: Option<&str>) -> Credentials {
        let cookie = cookie.and_then(|header| {
            header
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == COOKIE)
                .map(|(_, value)| value.trim().to_owned())
        });
        Credentials {
            cookie,
            authorization: authorization.map(str::to_owned),
        }
    }
}

/// A dashboard request, as the router read its head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub page: Page,
    pub credentials: Credentials,
    /// A proxy in front says the client came over https (`X-Forwarded-Proto`).
    pub https: bool,
    /// The body's length (the sign-in form's), read after the head.
    pub body_len: usize,
    pub keep_alive: bool,
}

/// The longest sign-in form body taken.
pub const MAX_SIGN_IN_BODY: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a-dashboard-key-long-enough";

    fn credentials(cookie: Option<&str>, authorization: Option<&str>) -> Credentials {
        Credentials::from_headers(cookie, authorization)
    }

    #[test]
    fn a_key_is_asked_for_and_its_cookie_or_header_admits() {
        let guard = Guard::new(Some(KEY), true);
        assert_eq!(guard.admits(&Credentials::default()), Verdict::SignIn);
        let cookie = guard.sign_in(KEY, false).expect("the key signs in");
        assert!(!cookie.contains(KEY), "{cookie}");
        assert!(cookie.contains("HttpOnly; SameSite=Strict") && !cookie.contains("Secure"));
        assert!(guard.sign_in(KEY, true).unwrap().ends_with("; Secure"));
        let value = cookie.split(';').next().unwrap();
        let sent = format!("other=1; {value}");
        assert_eq!(
            guard.admits(&credentials(Some(&sent), None)),
            Verdict::Granted
        );
        let header = format!("apikey {KEY}");
        assert_eq!(
            guard.admits(&credentials(None, Some(&header))),
            Verdict::Granted
        );
        let forged = format!("{COOKIE}={KEY}");
        assert_eq!(
            guard.admits(&credentials(Some(&forged), None)),
            Verdict::SignIn
        );
        assert_eq!(guard.sign_in("wrong", false), None);
    }

    #[test]
    fn without_a_key_it_follows_the_api() {
        assert_eq!(
            Guard::new(None, true).admits(&Credentials::default()),
            Verdict::Granted
        );
        let closed = Guard::new(None, false);
        assert_eq!(closed.admits(&Credentials::default()), Verdict::Closed);
        assert_eq!(closed.sign_in(KEY, false), None);
        assert_eq!(
            format!("{:?}", Guard::new(Some(KEY), false)),
            "Key(<redacted>)"
        );
    }
}
