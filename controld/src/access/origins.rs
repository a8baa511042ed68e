//! `allowedOrigins`: which sites may request manifests and segments.
//!
//! Rules (Cloudflare's where it has them, see the README for the rest):
//! - an empty or absent list allows any origin;
//! - an entry is `host`, `*.host` (subdomains at any depth, not the apex) or `*` (any), with an
//!   optional `:port`; hosts compare case-insensitively;
//! - an entry without a port matches only the default ports (none given, 80, 443), so
//!   `localhost:3000` must be listed with its port;
//! - the request's `Origin` is checked, absent that its `Referer`; `Origin: null` (sandboxed
//!   frames, `file:`) matches nothing;
//! - a request with neither header is allowed: players outside browsers (ffmpeg, VLC, TVs) send
//!   none, and a browser page always sends one of them for media and XHR requests unless its
//!   referrer policy strips it.

/// The outcome for one request.
#[derive(Debug, PartialEq)]
pub enum OriginCheck {
    /// No list: any origin, `Access-Control-Allow-Origin: *`.
    Unrestricted,
    /// The list allows the request; `Some(origin)` to echo in `Access-Control-Allow-Origin`
    /// (the request's `Origin`), `None` when it had no `Origin` header.
    Allowed(Option<String>),
    /// Refused; the host (or header) that did not match.
    Refused(String),
}

pub fn check(
    allowed: Option<&[String]>,
    origin: Option<&str>,
    referer: Option<&str>,
) -> OriginCheck {
    let list = match allowed {
        Some(list) if !list.is_empty() => list,
        _ => return OriginCheck::Unrestricted,
    };
    let (header, value) = match (origin, referer) {
        (Some(o), _) => ("Origin", o),
        (None, Some(r)) => ("Referer", r),
        (None, None) => return OriginCheck::Allowed(None),
    };
    match parse_url_host(value) {
        Some(site) if list.iter().any(|entry| entry_matches(entry, &site)) => {
            OriginCheck::Allowed(origin.map(str::to_owned))
        }
        Some(site) => OriginCheck::Refused(site.host),
        None => OriginCheck::Refused(format!("{header} {value:?}")),
    }
}

/// Host and effective port of a request's `Origin` / `Referer`.
#[derive(Debug, PartialEq)]
struct Site {
    host: String,
    /// Explicit port, else the scheme's default (80/443), else `None`.
    port: Option<u16>,
}

fn parse_url_host(url: &str) -> Option<Site> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        Some(p) => Some(p),
        None => match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        },
    };
    Some(Site { host, port })
}

/// `host[:port]` or `[v6][:port]`, host lowercased without a trailing dot.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

fn entry_matches(entry: &str, site: &Site) -> bool {
    if entry == "*" {
        return true;
    }
    let Some((pattern, port)) = split_host_port(entry) else {
        return false;
    };
    let port_ok = match port {
        Some(p) => site.port == Some(p),
        None => matches!(site.port, None | Some(80) | Some(443)),
    };
    let host_ok = match pattern.strip_prefix("*.") {
        Some(base) => site
            .host
            .strip_suffix(base)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => site.host == pattern,
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::OriginCheck::*;
    use super::*;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| e.to_string()).collect()
    }

    fn origin(entries: &[&str], origin: &str) -> OriginCheck {
        check(Some(&list(entries)), Some(origin), None)
    }

    fn allowed(entries: &[&str], o: &str) -> bool {
        matches!(origin(entries, o), Allowed(_))
    }

    #[test]
    fn no_list_allows_everything() {
        assert_eq!(check(None, Some("https://evil.test"), None), Unrestricted);
        assert_eq!(
            check(Some(&[]), None, Some("https://x.test/")),
            Unrestricted
        );
    }

    #[test]
    fn exact_hosts() {
        let l = ["example.com"];
        assert!(allowed(&l, "https://example.com"));
        assert!(allowed(&l, "http://example.com"));
        assert!(allowed(&l, "https://EXAMPLE.com"));
        assert!(allowed(&l, "https://example.com."));
        assert!(allowed(&l, "https://example.com:443"));
        assert!(!allowed(&l, "https://www.example.com"));
        assert!(!allowed(&l, "https://example.com.evil.test"));
        assert!(!allowed(&l, "https://notexample.com"));
        assert!(!allowed(&l, "https://example.co"));
        assert!(!allowed(&l, "https://user@evil.test"));
        assert!(allowed(&["EXAMPLE.COM"], "https://example.com"));
    }

    #[test]
    fn wildcards_cover_subdomains_not_the_apex() {
        let l = ["*.example.com"];
        assert!(allowed(&l, "https://www.example.com"));
        assert!(allowed(&l, "https://a.b.example.com"));
        assert!(!allowed(&l, "https://example.com"));
        assert!(!allowed(&l, "https://.example.com"));
        assert!(!allowed(&l, "https://wwwexample.com"));
        assert!(!allowed(&l, "https://www.example.com.evil.test"));
        assert!(allowed(
            &["*.example.com", "example.com"],
            "https://example.com"
        ));
        assert!(allowed(&["*"], "https://anything.test:1234"));
    }

    #[test]
    fn ports() {
        assert!(!allowed(&["localhost"], "http://localhost:3000"));
        assert!(allowed(&["localhost"], "http://localhost"));
        assert!(allowed(&["localhost"], "https://localhost"));
        assert!(allowed(&["localhost:3000"], "http://localhost:3000"));
        assert!(!allowed(&["localhost:3000"], "http://localhost:3001"));
        assert!(!allowed(&["localhost:3000"], "http://localhost"));
        assert!(allowed(&["localhost:80"], "http://localhost"));
        assert!(allowed(
            &["*.example.com:8443"],
            "https://a.example.com:8443"
        ));
        assert!(!allowed(&["*.example.com"], "https://a.example.com:8443"));
        assert!(allowed(&["127.0.0.1:8080"], "http://127.0.0.1:8080"));
        assert!(!allowed(&["localhost"], "http://localhost:99999"));
    }

    #[test]
    fn origin_is_echoed_referer_is_a_fallback() {
        let l = list(&["example.com"]);
        assert_eq!(
            check(
                Some(&l),
                Some("https://example.com"),
                Some("https://evil.test/")
            ),
            Allowed(Some("https://example.com".into()))
        );
        assert!(matches!(
            check(
                Some(&l),
                Some("https://evil.test"),
                Some("https://example.com/")
            ),
            Refused(_)
        ));
        assert_eq!(
            check(Some(&l), None, Some("https://example.com/page?x=1")),
            Allowed(None)
        );
        assert!(matches!(
            check(Some(&l), None, Some("https://evil.test/example.com")),
            Refused(_)
        ));
        assert_eq!(check(Some(&l), None, None), Allowed(None));
    }

    #[test]
    fn unparsable_headers_are_refused() {
        for bad in [
            "null",
            "",
            "example.com",
            "https://",
            "https://[::1",
            "https://:80",
        ] {
            assert!(
                matches!(origin(&["example.com"], bad), Refused(_)),
                "{bad:?}"
            );
        }
        assert!(allowed(&["*"], "https://[::1]:8080"));
    }
}
