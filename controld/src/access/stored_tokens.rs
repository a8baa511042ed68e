//! A signed-URL token checked against the stored signing key its header names: what every
//! place that takes a token uses (HTTP playback, RTMP playback keys).

use super::signed_urls::{self as tokens, Claims, TokenError};
use crate::ids;
use crate::store::signing_keys as keys;
use crate::store::{Store, StoreError};

/// A token whose signature, `exp` and `nbf` are valid.
pub struct Verified {
    pub claims: Claims,
    /// The account of the key that signed it: `sub` must name something of this account.
    pub account_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `s` has a token's shape (three dot-separated parts, not too long) rather than a uid
/// or a key's.
pub fn looks_like_token(s: &str) -> bool {
    s.len() <= tokens::MAX_TOKEN_LEN && s.split('.').count() == 3
}

pub fn verify(store: &Store, token: &str) -> Result<Verified, Refusal> {
    let kid = tokens::key_id(token)?;
    if !ids::is_uid(&kid) {
        return Err(TokenError::UnknownKey.into());
    }
    let key = store
        .read(|c| keys::get(c, &kid))?
        .ok_or(TokenError::UnknownKey)?;
    let claims = tokens::verify(token, &kid, &key.public_pem)?;
    Ok(Verified {
        claims,
        account_id: key.account_id,
    })
}
