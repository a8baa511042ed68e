//! Signed-URL tokens: RS256 JWTs as Cloudflare defines them (header `kid`; claims `sub`, `kid`,
//! `exp`, `nbf`, `downloadable`, `accessRules`).
//!
//! Verification pins the algorithm to RS256: `alg: none`, HS256 signed with the public key and
//! every other algorithm are refused before any key is used.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::rules::AccessRule;

/// Upper bound on what is tried as a token in a playback path (a 5-rule token is ~1 KiB).
pub const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The video or live input uid the token opens.
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Carried for compatibility; controld has no downloads to grant.
    #[serde(default)]
    pub downloadable: bool,
    #[serde(default, rename = "accessRules", skip_serializing_if = "Vec::is_empty")]
    pub access_rules: Vec<AccessRule>,
    /// controld's own claim: the account owner previews (the dashboard). Such a token plays
    /// whatever `allowedOrigins` says; only API credentials (or the account's own signing
    /// key) can make one, and it lives at most `MAX_OWNER_PREVIEW_SECS`.
    #[serde(
        default,
        rename = "ownerPreview",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub owner_preview: bool,
}

/// Longest life of an owner preview token.
pub const MAX_OWNER_PREVIEW_SECS: i64 = 3600;

/// Signs claims with a private key PEM; `kid` goes into the header and the claims.
pub fn sign(claims: &Claims, kid: &str, private_pem: &[u8]) -> Result<String, String> {
    let key = EncodingKey::from_rsa_pem(private_pem).map_err(|e| e.to_string())?;
    let header = Header {
        kid: Some(kid.to_owned()),
        ..Header::new(Algorithm::RS256)
    };
    let claims = Claims {
        kid: Some(kid.to_owned()),
        ..claims.clone()
    };
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| e.to_string())
}

/// Why a token was refused (all are 401: the credential is not valid).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed or its header is not {{alg: RS256, kid}}")]
    Malformed,
    #[error("token is signed with an unknown or revoked key")]
    UnknownKey,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token algorithm must be RS256")]
    WrongAlgorithm,
    #[error("token claims are invalid: {0}")]
    BadClaims(String),
}

/// The `kid` of a token's header, read before verification to find its key.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::WrongAlgorithm);
    }
    header.kid.ok_or(TokenError::Malformed)
}

/// Verifies signature, `exp` and `nbf` (no leeway: issuer and verifier share this clock)
/// with the public key PEM of the header's `kid`.
pub fn verify(token: &str, kid: &str, public_pem: &str) -> Result<Claims, TokenError> {
    let key =
        DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(|_| TokenError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
        match e.into_kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm,
            ErrorKind::Json(e) => TokenError::BadClaims(e.to_string()),
            ErrorKind::MissingRequiredClaim(c) => TokenError::BadClaims(format!("{c} is missing")),
            _ => TokenError::Malformed,
        }
    })?;
    let claims = data.claims;
    if claims.kid.as_deref().is_some_and(|k| k != kid) {
        return Err(TokenError::BadClaims(
            "kid differs from the header's".into(),
        ));
    }
    super::rules::validate(&claims.access_rules)
        .map_err(|(field, why)| TokenError::BadClaims(format!("{field}: {why}")))?;
    let lifetime = claims.exp - claims.nbf.unwrap_or(claims.exp);
    if claims.owner_preview && (claims.nbf.is_none() || lifetime > MAX_OWNER_PREVIEW_SECS) {
        return Err(TokenError::BadClaims(format!(
            "an ownerPreview token needs nbf and at most {MAX_OWNER_PREVIEW_SECS} s from nbf to exp"
        )));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::access::signing_keys::GeneratedKey;

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn claims(exp: i64, nbf: Option<i64>) -> Claims {
        Claims {
            sub: "0123456789abcdef0123456789abcdef".into(),
            kid: None,
            exp,
            nbf,
            downloadable: false,
            access_rules: vec![],
            owner_preview: false,
        }
    }

    #[test]
    fn every_bad_token_kind_is_refused() {
        let key = GeneratedKey::generate().unwrap();
        let (private, public) = (key.private_pem().unwrap(), key.public_pem().unwrap());
        let sign_now = |c: &Claims| sign(c, &key.id, private.as_bytes()).unwrap();

        let good = sign_now(&claims(now() + 60, Some(now() - 60)));
        assert_eq!(key_id(&good).unwrap(), key.id);
        assert_eq!(
            verify(&good, &key.id, &public).unwrap().kid.as_deref(),
            Some(key.id.as_str())
        );

        let expired = sign_now(&claims(now() - 1, None));
        assert_eq!(
            verify(&expired, &key.id, &public).unwrap_err(),
            TokenError::Expired
        );
        let early = sign_now(&claims(now() + 600, Some(now() + 300)));
        assert_eq!(
            verify(&early, &key.id, &public).unwrap_err(),
            TokenError::NotYetValid
        );

        let other = GeneratedKey::generate().unwrap();
        assert_eq!(
            verify(&good, &key.id, &other.public_pem().unwrap()).unwrap_err(),
            TokenError::BadSignature
        );
        // Tampered payload, original signature.
        let parts: Vec<&str> = good.split('.').collect();
        let mut c = claims(now() + 60, None);
        c.sub = "fedcba9876543210fedcba9876543210".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&tampered, &key.id, &public).unwrap_err(),
            TokenError::BadSignature
        );

        // alg: none.
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.id));
        let none = format!("{none_header}.{}.", parts[1]);
        assert!(key_id(&none).is_err());
        assert!(verify(&none, &key.id, &public).is_err());

        // HS256 keyed with the public key PEM (the classic key-confusion attack).
        let hs = jsonwebtoken::encode(
            &Header {
                kid: Some(key.id.clone()),
                ..Header::new(Algorithm::HS256)
            },
            &claims(now() + 60, None),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(key_id(&hs).unwrap_err(), TokenError::WrongAlgorithm);
        assert_eq!(
            verify(&hs, &key.id, &public).unwrap_err(),
            TokenError::WrongAlgorithm
        );
        assert_eq!(key_id("garbage").unwrap_err(), TokenError::Malformed);
    }
}
