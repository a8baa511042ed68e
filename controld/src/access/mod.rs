//! Playback access control: signing keys and signed-URL tokens (`requireSignedURLs`), token
//! access rules, and `allowedOrigins`. Plain Rust; the HTTP side is `api::playback`,
//! `api::keys` and `api::tokens`.

pub mod keys;
pub mod origins;
pub mod rules;
pub mod tokens;
