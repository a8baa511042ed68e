//! Identifiers and secrets: everything a client could guess comes from the OS-seeded CSPRNG.

use rand::Rng;
use sha2::{Digest, Sha256};

/// 32 lowercase hex characters (128 random bits): the form of live input and video uids.
pub fn new_uid() -> String {
    hex::encode(rand::rng().random::<[u8; 16]>())
}

/// Cloudflare's stream key form `<32 hex secret>k<uid>`: 128 secret bits, and the key names its input.
pub fn new_stream_key(uid: &str) -> String {
    format!("{}k{uid}", new_uid())
}

/// A fresh API token (160 random bits, 40 hex characters, the length of Cloudflare's tokens).
pub fn new_api_token() -> String {
    hex::encode(rand::rng().random::<[u8; 20]>())
}

/// Tokens are stored only as this hash, so a leaked database does not leak working tokens.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A playback viewer's id (`vid=` in playback URLs): 72 random bits as 12 URL-safe base64
/// characters, short enough to ride on every segment URI.
pub fn new_viewer_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 9]>())
}

/// Whether `s` has the shape of a viewer id.
pub fn is_viewer_id(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `s` has the shape of a uid; checked before any lookup or path use.
pub fn is_uid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_and_keys_have_the_documented_shape() {
        let uid = new_uid();
        assert!(is_uid(&uid));
        let key = new_stream_key(&uid);
        assert_eq!(key.len(), 65);
        assert_eq!(&key[32..33], "k");
        assert!(key.ends_with(&uid));
        assert_ne!(new_uid(), uid);
        assert!(!is_uid("../../etc/passwd"));
        assert!(!is_uid(&uid.to_uppercase()));
        let viewer = new_viewer_id();
        assert!(is_viewer_id(&viewer), "{viewer}");
        assert_ne!(new_viewer_id(), viewer);
        assert!(!is_viewer_id("a&b=cdefghij"));
    }
}
