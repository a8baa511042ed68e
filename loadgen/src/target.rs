//! Where each connection publishes: `rtmp://host[:port]/app/stream-key` or
//! `rtmps://host[:port]/app/stream-key` URLs, from a template with `{n}` or from a file with one
//! URL per line.

use std::net::{SocketAddr, ToSocketAddrs};

const DEFAULT_RTMP_PORT: u16 = 1935;
/// RTMPS as Cloudflare (and controld's `--rtmps` examples) use it.
const DEFAULT_RTMPS_PORT: u16 = 443;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TargetError {
    #[error("{0:?}: only rtmp:// and rtmps:// URLs are supported")]
    Scheme(String),
    #[error("{0:?}: expected rtmp[s]://host[:port]/app/stream-key")]
    Shape(String),
    #[error("{url:?}: cannot resolve the host: {reason}")]
    Resolve { url: String, reason: String },
    #[error("the URL file lists {lines} URLs but {connections} connections were asked for")]
    TooFewUrls { lines: usize, connections: usize },
}

/// One connection's destination.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
    /// `rtmps://`: TLS over the TCP connection.
    pub tls: bool,
    /// The host as the URL names it (without port and IPv6 brackets): the TLS server name.
    pub host: String,
    pub app: String,
    pub stream_key: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rtmps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("rtmp://") {
            (false, rest)
        } else {
            return Err(TargetError::Scheme(url.into()));
        };
        let shape = || TargetError::Shape(url.into());
        let (authority, path) = rest.split_once('/').ok_or_else(shape)?;
        let (app, stream_key) = path.split_once('/').ok_or_else(shape)?;
        if authority.is_empty() || app.is_empty() || stream_key.is_empty() {
            return Err(shape());
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                (host, port.parse::<u16>().map_err(|_| shape())?)
            }
            _ if tls => (authority, DEFAULT_RTMPS_PORT),
            _ => (authority, DEFAULT_RTMP_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(shape());
        }
        let resolve = |reason: String| TargetError::Resolve {
            url: url.into(),
            reason,
        };
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| resolve(e.to_string()))?
            .next()
            .ok_or_else(|| resolve("no address".into()))?;
        Ok(Target {
            url: url.into(),
            addr,
            tls,
            host: host.into(),
            app: app.into(),
            stream_key: stream_key.into(),
        })
    }
}

/// Connection `n` (1-based) publishes to the template with `{n}` replaced by `n`.
pub fn from_template(template: &str, connections: usize) -> Result<Vec<Target>, TargetError> {
    (1..=connections)
        .map(|n| Target::parse(&template.replace("{n}", &n.to_string())))
        .collect()
}

/// Connection `n` publishes to the file's `n`th URL; blank lines and `#` comments are skipped.
pub fn from_list(text: &str, connections: usize) -> Result<Vec<Target>, TargetError> {
    let urls: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if urls.len() < connections {
        return Err(TargetError::TooFewUrls {
            lines: urls.len(),
            connections,
        });
    }
    urls[..connections]
        .iter()
        .map(|u| Target::parse(u))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_numbers_connections_from_one() {
        let targets = from_template("rtmp://127.0.0.1:1936/live/key{n}", 2).unwrap();
        let keys: Vec<&str> = targets.iter().map(|t| t.stream_key.as_str()).collect();
        assert_eq!(keys, ["key1", "key2"]);
        assert_eq!(targets[0].addr, "127.0.0.1:1936".parse().unwrap());
        assert_eq!(targets[0].app, "live");
    }

    #[test]
    fn port_defaults_to_1935_and_443_for_rtmps() {
        let target = Target::parse("rtmp://127.0.0.1/live/k").unwrap();
        assert_eq!((target.addr.port(), target.tls), (1935, false));
        let target = Target::parse("rtmps://127.0.0.1/live/k").unwrap();
        assert_eq!((target.addr.port(), target.tls), (443, true));
        assert_eq!(target.host, "127.0.0.1");
    }

    #[test]
    fn rtmps_keeps_the_host_for_the_server_name() {
        let target = Target::parse("rtmps://localhost:8443/live/k").unwrap();
        assert_eq!(
            (target.host.as_str(), target.addr.port()),
            ("localhost", 8443)
        );
        let target = Target::parse("rtmps://[::1]:8443/live/k").unwrap();
        assert_eq!(target.host, "::1");
        assert_eq!(target.addr, "[::1]:8443".parse().unwrap());
    }

    #[test]
    fn list_skips_blank_lines_and_comments() {
        let text = "# inputs\nrtmp://127.0.0.1:1/live/a\n\nrtmp://127.0.0.1:1/live/b\n";
        assert_eq!(from_list(text, 2).unwrap()[1].stream_key, "b");
        assert_eq!(
            from_list(text, 3),
            Err(TargetError::TooFewUrls {
                lines: 2,
                connections: 3
            })
        );
    }

    #[test]
    fn refuses_other_schemes_and_missing_parts() {
        assert!(matches!(
            Target::parse("http://127.0.0.1/live/k"),
            Err(TargetError::Scheme(_))
        ));
        for url in [
            "rtmp://127.0.0.1/live",
            "rtmp://127.0.0.1/live/",
            "rtmp:///live/k",
            "rtmps://:443/live/k",
            "rtmp://127.0.0.1:port/live/k",
        ] {
            assert!(
                matches!(Target::parse(url), Err(TargetError::Shape(_))),
                "{url}"
            );
        }
    }
}
