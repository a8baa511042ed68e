//! Listen locations: `srt://HOST:PORT` (query parameters are refused: the stream id, passphrase
//! and latency are the element's properties).

use std::net::{SocketAddr, ToSocketAddrs};

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum UrlError {
    #[error("location {0:?} must be srt://HOST:PORT")]
    Form(String),
    #[error("cannot resolve host of location {0:?}")]
    Host(String),
}

/// The UDP address an `srt://HOST:PORT` location listens on.
pub fn listen_addr(location: &str) -> Result<SocketAddr, UrlError> {
    let form = || UrlError::Form(location.into());
    let authority = location.strip_prefix("srt://").ok_or_else(form)?;
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains(['/', '?', '@']) {
        return Err(form());
    }
    // `[v6]:port` or `host:port`: the port is required (SRT has no default port).
    let (host, port) = authority.rsplit_once(':').ok_or_else(form)?;
    let port = port.parse::<u16>().map_err(|_| form())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| UrlError::Host(location.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let addr = listen_addr("srt://0.0.0.0:9000").unwrap();
        assert_eq!(addr.to_string(), "0.0.0.0:9000");
        assert_eq!(
            listen_addr("srt://[::1]:0/").unwrap().to_string(),
            "[::1]:0"
        );
        for bad in [
            "udp://0.0.0.0:9000",
            "srt://0.0.0.0",
            "srt://h:1?streamid=x",
            "srt://h:x",
        ] {
            assert_eq!(listen_addr(bad), Err(UrlError::Form(bad.into())), "{bad}");
        }
    }
}
