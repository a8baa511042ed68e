//! Listen locations: `rtmp://HOST:PORT/APP` and `rtmps://HOST:PORT/APP`.

use std::net::{SocketAddr, ToSocketAddrs};

/// Port when the location names none: RTMP's 1935, and 443 for RTMPS as Cloudflare uses.
const DEFAULT_RTMP_PORT: u16 = 1935;
const DEFAULT_RTMPS_PORT: u16 = 443;

#[derive(Clone, Debug, PartialEq)]
pub struct ListenUrl {
    pub addr: SocketAddr,
    pub tls: bool,
    /// Application name (path without slashes at either end), e.g. `live`.
    pub app: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UrlError {
    #[error("location {0:?} must start with rtmp:// or rtmps://")]
    Scheme(String),
    #[error("location {0:?} has an invalid port")]
    Port(String),
    #[error("location {0:?} names no application (rtmp://HOST:PORT/APP)")]
    NoApp(String),
    #[error("cannot resolve host of location {0:?}")]
    Host(String),
}

impl ListenUrl {
    pub fn parse(location: &str) -> Result<Self, UrlError> {
        let (tls, rest) = if let Some(rest) = location.strip_prefix("rtmps://") {
            (true, rest)
        } else if let Some(rest) = location.strip_prefix("rtmp://") {
            (false, rest)
        } else {
            return Err(UrlError::Scheme(location.into()));
        };
        let (authority, app) = rest.split_once('/').unwrap_or((rest, ""));
        let app = app.trim_matches('/');
        if app.is_empty() {
            return Err(UrlError::NoApp(location.into()));
        }
        let default_port = if tls {
            DEFAULT_RTMPS_PORT
        } else {
            DEFAULT_RTMP_PORT
        };
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| UrlError::Port(location.into()))?;
                (host, port)
            }
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| UrlError::Host(location.into()))?;
        Ok(ListenUrl {
            addr,
            tls,
            app: app.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let url = ListenUrl::parse("rtmp://0.0.0.0:1935/live").unwrap();
        assert_eq!(
            (url.addr.to_string(), url.tls, url.app.as_str()),
            ("0.0.0.0:1935".into(), false, "live")
        );
        let url = ListenUrl::parse("rtmps://127.0.0.1/live/").unwrap();
        assert_eq!((url.addr.port(), url.tls), (443, true));
        let url = ListenUrl::parse("rtmp://[::1]:0/app").unwrap();
        assert_eq!(url.addr.to_string(), "[::1]:0");
        assert!(matches!(
            ListenUrl::parse("http://x/live"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(
            ListenUrl::parse("rtmp://127.0.0.1:99999/live"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            ListenUrl::parse("rtmp://127.0.0.1:1935"),
            Err(UrlError::NoApp(_))
        ));
    }
}
