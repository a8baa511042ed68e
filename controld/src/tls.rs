//! The RTMPS certificate. Cloudflare always hands out an `rtmps` URL, so controld listens for
//! RTMPS by default: with the operator's certificate (`--tls-cert/--tls-key`) or, without one,
//! a self-signed certificate made on first start in `<data-dir>/tls/` and kept across restarts
//! (encoders that do not verify certificates, like ffmpeg, accept it; OBS does verify and needs
//! a real one).

use std::io::Write;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

use crate::pipeline::TlsPaths;

/// Directory under the data directory that holds the self-signed certificate.
pub const SELF_SIGNED_DIR: &str = "tls";
const CERTIFICATE_FILE: &str = "rtmps-cert.pem";
const PRIVATE_KEY_FILE: &str = "rtmps-key.pem";
/// Ten years: the certificate is made once and kept; delete the files for a new one.
const VALID_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("self-signed certificate: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("self-signed certificate: {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The self-signed certificate in `dir` (`<data-dir>/tls`), made now if it is not there yet.
/// `hosts` go into its subject alternative names beside `localhost`, 127.0.0.1 and ::1.
pub fn self_signed(dir: &Path, hosts: &[&str]) -> Result<TlsPaths, TlsError> {
    let paths = TlsPaths {
        certificate: dir.join(CERTIFICATE_FILE),
        private_key: dir.join(PRIVATE_KEY_FILE),
    };
    if paths.certificate.is_file() && paths.private_key.is_file() {
        return Ok(paths);
    }
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Io(dir.to_owned(), e))?;
    let (certificate, private_key) = generate(hosts)?;
    // The key first: a certificate file is only ever beside its key.
    write_new(&paths.private_key, &private_key, 0o600)?;
    write_new(&paths.certificate, &certificate, 0o644)?;
    tracing::info!(
        certificate = %paths.certificate.display(),
        "made a self-signed RTMPS certificate"
    );
    Ok(paths)
}

/// `(certificate PEM, PKCS#8 private key PEM)`.
fn generate(hosts: &[&str]) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", hosts.first().copied().unwrap_or("localhost"))?;
    name.append_entry_by_text("O", "controld self-signed")?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let (not_before, not_after) = (
        Asn1Time::days_from_now(0)?,
        Asn1Time::days_from_now(VALID_DAYS)?,
    );
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    let mut alt = SubjectAlternativeName::new();
    alt.dns("localhost").ip("127.0.0.1").ip("::1");
    for host in hosts {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<std::net::IpAddr>().is_ok() {
            alt.ip(host);
        } else if !host.is_empty() {
            alt.dns(host);
        }
    }
    let alt = alt.build(&builder.x509v3_context(None, None))?;
    builder.append_extension(alt)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok((builder.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
}

/// Writes through a temporary file and a rename, so a crash leaves no half-written file.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| TlsError::Io(path.to_owned(), e);
    let partial = path.with_extension("pem.partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&partial)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_made_once_and_names_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join(SELF_SIGNED_DIR);
        let first = self_signed(&tls, &["stream.example.test", "192.0.2.7"]).unwrap();
        let pem = std::fs::read(&first.certificate).unwrap();
        let cert = X509::from_pem(&pem).unwrap();
        let names: Vec<String> = cert
            .subject_alt_names()
            .unwrap()
            .iter()
            .map(|n| {
                n.dnsname()
                    .map(str::to_owned)
                    .or_else(|| n.ipaddress().map(|ip| format!("{ip:?}")))
                    .unwrap()
            })
            .collect();
        assert!(
            names.contains(&"stream.example.test".to_owned()),
            "{names:?}"
        );
        assert!(names.contains(&"localhost".to_owned()), "{names:?}");
        assert!(
            names.contains(&format!("{:?}", [192u8, 0, 2, 7])),
            "{names:?}"
        );
        let key = PKey::private_key_from_pem(&std::fs::read(&first.private_key).unwrap()).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&key));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&first.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by its owner only"
        );

        // Kept across restarts: the same files, unchanged.
        let again = self_signed(&tls, &["other.example.test"]).unwrap();
        assert_eq!(again.certificate, first.certificate);
        assert_eq!(std::fs::read(&again.certificate).unwrap(), pem);
    }
}
