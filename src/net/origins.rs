//! Which web pages may open connections: the defence against cross-site WebSocket
//! hijacking. A browser sends the page's `Origin` with every WebSocket upgrade and
//! SockJS request, and a page on another site must not get a connection that carries
//! the user's cookies. Clients that are not browsers send no `Origin` and are let in.
//!
//! The `allowed_origins` setting lists patterns: `*` (any page), or
//! `scheme://host[:port]` with an optional `*.` before the host (`https://*.example.com`
//! takes every subdomain, not the domain itself). Empty (the default), a page is let in
//! only from the server's own origin: the `Origin`'s host and port are the `Host`
//! header's.

/// The origins the server takes connections from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    patterns: Vec<Box<str>>,
}

impl AllowedOrigins {
    /// From the setting's patterns (checked by the config's own check).
    pub fn new(patterns: &[Box<str>]) -> AllowedOrigins {
        AllowedOrigins {
            patterns: patterns.to_vec(),
        }
    }

    /// Whether a request with this `Origin` (if any) to this `Host` may connect.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.patterns.is_empty() {
            return host.is_some_and(|host| same_origin(origin, host));
        }
        self.patterns.iter().any(|p| matches(p, origin))
    }

    /// The origins as SockJS's `/info` reports them (`host:port` patterns).
    pub fn sockjs_origins(&self, host: Option<&str>) -> Vec<String> {
        if self.patterns.is_empty() {
            return host.map(|h| with_port(h, "http")).into_iter().collect();
        }
        self.patterns
            .iter()
            .map(|p| match p.split_once("://") {
                Some((scheme, host)) => with_port(host, scheme),
                None => "*:*".to_owned(),
            })
            .collect()
    }
}

/// Whether `pattern` is a valid `allowed_origins` entry.
pub fn valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some((scheme, host)) = pattern.split_once("://") else {
        return false;
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '*', '?', '#', '@'])
}

/// `host[:port]` with the scheme's default port made explicit.
fn with_port(host: &str, scheme: &str) -> String {
    let bracketed_end = host.rfind(']').unwrap_or(0);
    if host[bracketed_end..].contains(':') {
        host.to_owned()
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{host}:{port}")
    }
}

/// The origin's `host[:port]`, with the scheme's default port.
fn authority(origin: &str) -> Option<(String, &str)> {
    let (scheme, host) = origin.split_once("://")?;
    Some((with_port(host, scheme), scheme))
}

fn same_origin(origin: &str, host: &str) -> bool {
    let Some((authority, scheme)) = authority(origin) else {
        return false;
    };
    authority.eq_ignore_ascii_case(&with_port(host, scheme))
}

fn matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (Some((p_scheme, p_host)), Some((o_scheme, o_host))) =
        (pattern.split_once("://"), origin.split_once("://"))
    else {
        return false;
    };
    if !p_scheme.eq_ignore_ascii_case(o_scheme) {
        return false;
    }
    let (p_host, o_host) = (with_port(p_host, p_scheme), with_port(o_host, o_scheme));
    match p_host.strip_prefix("*.") {
        Some(domain) => {
            let (o_name, o_port) = o_host.rsplit_once(':').unwrap_or((&o_host, ""));
            let (d_name, d_port) = domain.rsplit_once(':').unwrap_or((domain, ""));
            // Bytes, not text: the origin is the client's, and may end in the middle of
            // a character where the domain's length falls.
            let (o_name, d_name) = (o_name.as_bytes(), d_name.as_bytes());
            o_port == d_port
                && o_name.len() > d_name.len() + 1
                && o_name[o_name.len() - d_name.len()..].eq_ignore_ascii_case(d_name)
                && o_name[o_name.len() - d_name.len() - 1] == b'.'
        }
        None => p_host.eq_ignore_ascii_case(&o_host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str]) -> AllowedOrigins {
        let patterns: Vec<Box<str>> = patterns.iter().map(|p| Box::from(*p)).collect();
        AllowedOrigins::new(&patterns)
    }

    #[test]
    fn by_default_only_the_server_s_own_origin_and_non_browsers_connect() {
        let same = AllowedOrigins::default();
        assert!(same.allows(None, Some("chat.example:7400")));
        assert!(same.allows(Some("http://chat.example:7400"), Some("chat.example:7400")));
        assert!(same.allows(Some("https://chat.example"), Some("chat.example:443")));
        assert!(!same.allows(Some("https://evil.example"), Some("chat.example:7400")));
        assert!(!same.allows(Some("null"), Some("chat.example")));
        assert!(!same.allows(Some("http://chat.example:7400"), None));
    }

    #[test]
    fn patterns_take_exact_origins_subdomains_or_anything() {
        let listed = allowed(&["https://app.example", "https://*.example.com"]);
        assert!(listed.allows(Some("https://app.example"), Some("x")));
        assert!(listed.allows(Some("https://APP.example:443"), Some("x")));
        assert!(
            !listed.allows(Some("http://app.example"), Some("x")),
            "scheme"
        );
        assert!(listed.allows(Some("https://a.b.example.com"), Some("x")));
        assert!(!listed.allows(Some("https://example.com"), Some("x")));
        assert!(!listed.allows(Some("https://evilexample.com"), Some("x")));
        assert!(allowed(&["*"]).allows(Some("null"), None));
        assert_eq!(
            listed.sockjs_origins(None),
            vec!["app.example:443", "*.example.com:443"]
        );
        assert_eq!(allowed(&["*"]).sockjs_origins(None), vec!["*:*"]);
        // Found by fuzzing (fuzz/ http_request): the domain's length falling inside a
        // character of the origin panicked.
        assert!(!listed.allows(Some("https://x\u{49f}xample.com"), Some("x")));
        assert!(listed.allows(Some("https://\u{e9}.example.com"), Some("x")));
        assert_eq!(
            AllowedOrigins::default().sockjs_origins(Some("t")),
            vec!["t:80"]
        );
    }

    #[test]
    fn patterns_are_checked() {
        for good in [
            "*",
            "https://a.example",
            "http://*.example.com:8080",
            "http://[::1]:9",
        ] {
            assert!(valid_pattern(good), "{good}");
        }
        for bad in [
            "",
            "a.example",
            "ftp://a",
            "https://",
            "https://a/b",
            "https://a*b",
        ] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }
}
