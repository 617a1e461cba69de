//! The `redis` setting: where the cluster's Redis is, parsed once at start-up so a
//! typo is refused with the setting's name instead of failing at the first connect.
//!
//! `redis://[user:password@]host:port[/db]` names one Redis server;
//! `redis+cluster://host:port,host:port,…` names a Redis Cluster by its seed nodes.
//! Shown (in `--help`, `serve --check`, logs) without the password.

use std::fmt;

/// Where the cluster's Redis is.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisUrl {
    /// One Redis server.
    Single {
        /// The URL as given, password included, for the client library.
        url: Box<str>,
        /// `host:port`.
        addr: Box<str>,
        /// The user and password, when the URL has them.
        auth: Option<(Box<str>, Box<str>)>,
        db: u32,
    },
    /// A Redis Cluster, by its seed nodes (`host:port` each).
    Cluster { seeds: Vec<Box<str>> },
}

impl RedisUrl {
    /// Reads `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        if let Some(seeds) = text.strip_prefix("redis+cluster://") {
            let seeds: Vec<Box<str>> = seeds.split(',').map(Box::from).collect();
            if let Some(bad) = seeds.iter().find(|s| !valid_host_port(s)) {
                return Err(format!("{bad:?} is not host:port"));
            }
            return Ok(RedisUrl::Cluster { seeds });
        }
        let Some(rest) = text.strip_prefix("redis://") else {
            return Err(
                "must be redis://[user:password@]host:port[/db] or redis+cluster://host:port,..."
                    .to_owned(),
            );
        };
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let (addr, db) = match rest.split_once('/') {
            Some((addr, "")) => (addr, 0),
            Some((addr, db)) => (
                addr,
                db.parse()
                    .map_err(|_| format!("database {db:?} is not a number"))?,
            ),
            None => (rest, 0),
        };
        if !valid_host_port(addr) {
            return Err(format!("{addr:?} is not host:port"));
        }
        let auth = userinfo.map(|info| match info.split_once(':') {
            Some((user, password)) => (Box::from(user), Box::from(password)),
            None => (Box::from(""), Box::from(info)),
        });
        Ok(RedisUrl::Single {
            url: text.into(),
            addr: addr.into(),
            auth,
            db,
        })
    }
}

fn valid_host_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// The URL without its password.
impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisUrl::Single { addr, auth, db, .. } => {
                f.write_str("redis://")?;
                if let Some((user, _)) = auth {
                    write!(f, "{user}:***@")?;
                }
                write!(f, "{addr}/{db}")
            }
            RedisUrl::Cluster { seeds } => write!(f, "redis+cluster://{}", seeds.join(",")),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_form() {
        let url = RedisUrl::parse("redis://ann:s3cret@cache.internal:6380/2").unwrap();
        assert_eq!(url.to_string(), "redis://ann:***@cache.internal:6380/2");
        let RedisUrl::Single { addr, auth, db, .. } = &url else {
            panic!("{url:?}");
        };
        assert_eq!((&**addr, *db), ("cache.internal:6380", 2));
        assert_eq!(
            auth.as_ref().map(|(u, p)| (&**u, &**p)),
            Some(("ann", "s3cret"))
        );
        assert_eq!(
            RedisUrl::parse("redis://127.0.0.1:6379")
                .unwrap()
                .to_string(),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            RedisUrl::parse("redis+cluster://a:7000,b:7001").unwrap(),
            RedisUrl::Cluster {
                seeds: vec!["a:7000".into(), "b:7001".into()]
            }
        );
    }

    #[test]
    fn refuses_what_is_not_a_redis_url() {
        for bad in [
            "http://x:1",
            "redis://",
            "redis://host",
            "redis://host:0",
            "redis://host:6379/x",
            "redis+cluster://a:1,",
        ] {
            assert!(RedisUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
