//! Playback access control: signing keys and signed-URL tokens (`requireSignedURLs`), token
//! access rules, and `allowedOrigins`. Plain Rust: the HTTP side is `api::playback`,
//! `api::signing_keys` and `api::signed_urls`; the keys are stored by `store::signing_keys`.

pub mod origins;
pub mod rules;
pub mod signed_urls;
pub mod signing_keys;
pub mod stored_tokens;
