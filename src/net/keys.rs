//! Keys presented over HTTP (the API's, the dashboard's): read from an
//! `Authorization: apikey KEY` header and compared in constant time.

/// The key an `Authorization` header presents under the `apikey` scheme, if it does.
pub fn presented(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|a| a.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("apikey"))
        .map(|(_, k)| k.trim())
}

/// Compares without stopping at the first difference, so timing tells nothing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn only_the_apikey_scheme_presents_a_key() {
        assert_eq!(presented(Some(" ApiKey  k1 ")), Some("k1"));
        assert_eq!(presented(Some("Bearer k1")), None);
        assert_eq!(presented(None), None);
    }
}
