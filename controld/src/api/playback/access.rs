//! Who may play what: `authorize` applies `requireSignedURLs`, a signed-URL token's access rules
//! and `allowedOrigins` to every playback request (manifests and media files alike) and returns
//! what the id names with the CORS headers to answer with.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::access::origins::{self, OriginCheck};
use crate::access::rules::{self, Verdict};
use crate::access::stored_tokens::{self, Refusal};
use crate::api::envelope::{ApiError, codes};
use crate::store::live_inputs::{self, LiveInput};
use crate::store::videos::{self, Video};
use crate::{AppState, ids};

/// What a playback id names.
pub(super) enum Target {
    Input(LiveInput),
    Video(Video),
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::PLAYBACK_NOT_FOUND,
        format!("{what} not found"),
    )
}

fn resolve(state: &AppState, id: &str) -> Result<Target, ApiError> {
    if !ids::is_uid(id) {
        return Err(not_found("video or live input"));
    }
    let found = state.store.read(|c| {
        if let Some(input) = live_inputs::get_any(c, id)? {
            return Ok(Some(Target::Input(input)));
        }
        Ok(videos::get_any(c, id)?.map(Target::Video))
    })?;
    found.ok_or_else(|| not_found("video or live input"))
}

/// The peer's address (absent when the app is served without connect info, as in unit tests:
/// then no `ip.src` rule matches).
pub(in crate::api) struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::SIGNED_URL_INVALID, message)
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, codes::PLAYBACK_FORBIDDEN, message)
}

/// CORS headers for an authorized request.
pub(super) struct Cors {
    allow_origin: Option<HeaderValue>,
    /// The answer depends on `Origin`/`Referer`: caches must key on them.
    varies: bool,
    /// The `allowedOrigins` that applied (`None`: any site), for pages that restrict framing.
    pub(super) allowed_origins: Option<Vec<String>>,
}

impl Cors {
    pub(super) fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(origin) = self.allow_origin.clone() {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        if self.varies {
            h.insert(header::VARY, HeaderValue::from_static("Origin, Referer"));
        }
        h
    }
}

/// The one place where playback access is decided. `id` is a uid or a signed-URL token.
/// Returns what it names and the CORS headers to answer with.
pub(super) fn authorize(
    state: &AppState,
    id: &str,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(Target, Cors), ApiError> {
    let grant = grant(state, id, client, headers)?;
    Ok((grant.target, grant.cors))
}

/// `authorize` for a download (an MP4 file of a recording): a video that requires signed URLs
/// also requires its token to say `downloadable: true`.
pub(super) fn authorize_download(
    state: &AppState,
    id: &str,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(Target, Cors), ApiError> {
    let grant = grant(state, id, client, headers)?;
    if grant.require_signed && !grant.downloadable {
        return Err(forbidden(
            "this video requires signed URLs: downloading it needs a token with downloadable: true",
        ));
    }
    Ok((grant.target, grant.cors))
}

/// What `authorize` decided, and what a download needs to know besides.
struct Grant {
    target: Target,
    cors: Cors,
    require_signed: bool,
    /// The token says `downloadable: true` (or is the owner's preview token).
    downloadable: bool,
}

fn grant(
    state: &AppState,
    id: &str,
    client: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<Grant, ApiError> {
    let (target, signed, owner_preview, downloadable) = if ids::is_uid(id) {
        (resolve(state, id)?, false, false, false)
    } else if stored_tokens::looks_like_token(id) {
        let (target, owner_preview, downloadable) = resolve_token(state, id, client)?;
        (target, true, owner_preview, downloadable || owner_preview)
    } else {
        return Err(not_found("video or live input"));
    };
    let (require_signed, mut allowed) = match &target {
        Target::Input(i) => (
            i.recording.require_signed_urls,
            i.recording.allowed_origins.as_deref(),
        ),
        Target::Video(v) => (v.require_signed_urls, v.allowed_origins.as_deref()),
    };
    if require_signed && !signed {
        return Err(unauthorized(
            "this video requires a signed URL: play /{token}/manifest/video.m3u8 with a token \
             from POST /stream/{uid}/token",
        ));
    }
    // The account owner's preview token plays wherever it is used.
    if owner_preview {
        allowed = None;
    }
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let allowed_origins = allowed
        .filter(|list| !list.is_empty())
        .map(<[String]>::to_vec);
    let cors = match origins::check(allowed, header(header::ORIGIN), header(header::REFERER)) {
        OriginCheck::Unrestricted => Cors {
            allow_origin: Some(HeaderValue::from_static("*")),
            varies: false,
            allowed_origins,
        },
        OriginCheck::Allowed(origin) => Cors {
            allow_origin: origin.and_then(|o| HeaderValue::from_str(&o).ok()),
            varies: true,
            allowed_origins,
        },
        OriginCheck::Refused(what) => {
            return Err(forbidden(format!(
                "{what} is not in this video's allowedOrigins"
            )));
        }
    };
    Ok(Grant {
        target,
        cors,
        require_signed,
        downloadable,
    })
}

/// Verifies a signed-URL token and returns what its `sub` names, which must belong to the
/// account of the key that signed it, whether it is an owner preview token and whether it
/// says `downloadable`.
fn resolve_token(
    state: &AppState,
    token: &str,
    client: Option<IpAddr>,
) -> Result<(Target, bool, bool), ApiError> {
    let verified = match stored_tokens::verify(&state.store, token) {
        Ok(verified) => verified,
        Err(Refusal::Token(e)) => return Err(unauthorized(e.to_string())),
        Err(Refusal::Store(e)) => return Err(e.into()),
    };
    let claims = verified.claims;
    let target = resolve(state, &claims.sub)?;
    let account = match &target {
        Target::Input(i) => &i.account_id,
        Target::Video(v) => &v.account_id,
    };
    if *account != verified.account_id {
        return Err(forbidden(
            "the token's sub is not a video or live input of the signing key's account",
        ));
    }
    match rules::evaluate(&claims.access_rules, client) {
        Verdict::Allowed => Ok((target, claims.owner_preview, claims.downloadable)),
        Verdict::Refused(why) => Err(forbidden(why)),
    }
}
