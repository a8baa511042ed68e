//! TLS server configuration (rustls with the ring provider) from PEM files.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// A certificate chain and its private key, PEM files.
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

/// Reads the files; an error names the file and what is wrong with it.
pub fn acceptor(files: &TlsFiles) -> io::Result<TlsAcceptor> {
    let open = |path: &Path| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    };
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let certificates = rustls_pemfile::certs(&mut open(&files.certificate)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: {e}", files.certificate.display())))?;
    if certificates.is_empty() {
        return Err(invalid(format!(
            "{}: no PEM certificate",
            files.certificate.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut open(&files.private_key)?)
        .map_err(|e| invalid(format!("{}: {e}", files.private_key.display())))?
        .ok_or_else(|| {
            invalid(format!(
                "{}: no PEM private key",
                files.private_key.display()
            ))
        })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certificates, key)
    .map_err(|e| invalid(format!("{}: {e}", files.certificate.display())))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
