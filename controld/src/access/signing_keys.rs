//! RSA signing keys (RS256): generation and the export formats Cloudflare hands out. The
//! `signing_keys` table is `store::signing_keys`.
//!
//! A key created with `POST /stream/keys` is stored by its public half only: its private half is
//! returned once and then exists only with the customer. Each account also has one
//! *server-held* key (private half stored, never listed) with which controld signs tokens asked
//! for without a key (`POST /stream/{uid}/token` with no `id`/`pem`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::bn::BigNumRef;
use openssl::pkey::Private;
use openssl::rsa::Rsa;

const KEY_BITS: u32 = 2048;

/// A freshly generated key pair.
pub struct GeneratedKey {
    pub id: String,
    rsa: Rsa<Private>,
}

#[derive(Debug, thiserror::Error)]
#[error("RSA key: {0}")]
pub struct KeyError(#[from] openssl::error::ErrorStack);

impl GeneratedKey {
    /// Generates a 2048-bit key (tens of milliseconds: call it off the async workers).
    pub fn generate() -> Result<GeneratedKey, KeyError> {
        Ok(GeneratedKey {
            id: crate::ids::new_uid(),
            rsa: Rsa::generate(KEY_BITS)?,
        })
    }

    /// PKCS#1 PEM of the private key (`-----BEGIN RSA PRIVATE KEY-----`).
    pub fn private_pem(&self) -> Result<String, KeyError> {
        Ok(String::from_utf8_lossy(&self.rsa.private_key_to_pem()?).into_owned())
    }

    /// PKCS#1 PEM of the public key, what verification needs.
    pub fn public_pem(&self) -> Result<String, KeyError> {
        Ok(String::from_utf8_lossy(&self.rsa.public_key_to_pem_pkcs1()?).into_owned())
    }

    /// The private key as a JWK (RFC 7517/7518) JSON document, as Cloudflare's `jwk` field
    /// holds it (base64-encoded by the caller).
    pub fn private_jwk(&self) -> Result<String, KeyError> {
        let b64 = |n: Option<&BigNumRef>| n.map(|n| URL_SAFE_NO_PAD.encode(n.to_vec()));
        let r = &self.rsa;
        Ok(serde_json::json!({
            "use": "sig",
            "kty": "RSA",
            "kid": self.id,
            "alg": "RS256",
            "n": b64(Some(r.n())),
            "e": b64(Some(r.e())),
            "d": b64(Some(r.d())),
            "p": b64(r.p()),
            "q": b64(r.q()),
            "dp": b64(r.dmp1()),
            "dq": b64(r.dmq1()),
            "qi": b64(r.iqmp()),
        })
        .to_string())
    }
}

/// Base64 of text, the form in which `pem` and `jwk` travel in the API.
pub fn base64_text(text: &str) -> String {
    STANDARD.encode(text)
}

/// A private key PEM as given to `POST /stream/{uid}/token`: base64 of the PEM (as `POST
/// /stream/keys` returns it), or the PEM text itself.
pub fn decode_private_pem(given: &str) -> Option<Vec<u8>> {
    let given = given.trim();
    let pem = if given.starts_with("-----BEGIN") {
        given.as_bytes().to_vec()
    } else {
        STANDARD.decode(given).ok()?
    };
    Rsa::private_key_from_pem(&pem).ok()?;
    Some(pem)
}

/// Whether the private key PEM `private` is the other half of the public key PEM `public`.
pub fn is_pair(private: &[u8], public: &str) -> bool {
    let (Ok(private), Ok(public)) = (
        Rsa::private_key_from_pem(private),
        Rsa::public_key_from_pem_pkcs1(public.as_bytes()),
    ) else {
        return false;
    };
    private.n() == public.n() && private.e() == public.e()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_one_key_pair() {
        let key = GeneratedKey::generate().unwrap();
        let private = key.private_pem().unwrap();
        assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let given = decode_private_pem(&base64_text(&private)).unwrap();
        assert!(is_pair(&given, &key.public_pem().unwrap()));
        let other = GeneratedKey::generate().unwrap();
        assert!(!is_pair(&given, &other.public_pem().unwrap()));
        let jwk: serde_json::Value = serde_json::from_str(&key.private_jwk().unwrap()).unwrap();
        for field in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                jwk[field].as_str().is_some_and(|v| !v.is_empty()),
                "{field}"
            );
        }
        assert_eq!(jwk["kid"], key.id.as_str());
        assert!(decode_private_pem("not a key").is_none());
    }
}
