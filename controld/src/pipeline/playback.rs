//! Playback egress: who may pull a live input's stream (`rtmpPlayback`, `rtmpsPlayback`,
//! `srtPlayback`) and the [`Hub`] of its running pipeline that viewers are attached to.
//!
//! A viewer presents the input's playback key (RTMP `play` stream name) or the SRT play stream id
//! `play<uid>` with the playback passphrase: never the ingest key, which stays unknown to
//! viewers; a playback key is not a stream key, so it cannot publish. Inputs with
//! `recording.requireSignedURLs` refuse the static credentials: an RTMP player uses a signed-URL
//! token (`POST /stream/{uid}/token`, the one HLS playback takes) as its stream key, checked as
//! for HLS (signature, `exp`/`nbf`, the signing key's account, `accessRules` against the
//! player's address); SRT playback is off for them (a token does not fit SRT's 512-byte stream
//! id). An input that is not live refuses players (they retry, as players do for any stream that
//! has not started); one whose publisher is reconnecting keeps them, and takes new ones.

use std::net::IpAddr;
use std::sync::{Arc, Weak};

use gst::prelude::*;
use gstcfstream::egress::{Hub, SourceFormat, Viewer, ViewerFormat};
use gstcfstream::rtmp::{PlayDecision, PlayRequest};
use gstcfstream::srt::{CallerRequest, Lookup};

use super::{Ingest, Inner, KeyIndex, RTMP_APP, lock, read};
use crate::access::rules::{self, Verdict};
use crate::access::stored_tokens;
use crate::store::live_inputs::LiveInput;

/// The hub a session of `protocol` feeds.
pub(super) fn hub_for(protocol: Ingest) -> Hub {
    Hub::new(match protocol {
        Ingest::Srt => SourceFormat::MpegTs,
        Ingest::Rtmp | Ingest::Rtmps => SourceFormat::Flv,
    })
}

/// Feeds `hub` with every buffer leaving `pad` (the source's: FLV units or MPEG-TS). The hub
/// never blocks: the streaming thread hands each buffer to at most its viewers' queues.
pub(super) fn feed(pad: &gst::Pad, hub: Hub) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer()
            && let Ok(map) = buffer.map_readable()
        {
            match hub.source() {
                SourceFormat::Flv => hub.push_flv(&map),
                SourceFormat::MpegTs => hub.push_ts(&map),
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The RTMP(S) listeners' play handler (a runtime thread: look-ups only).
pub(super) fn on_play(inner: &Weak<Inner>, req: &PlayRequest) -> PlayDecision {
    let Some(inner) = inner.upgrade() else {
        return PlayDecision::Reject("server is shutting down".into());
    };
    if req.app != RTMP_APP {
        return PlayDecision::Reject(format!(
            "unknown application {:?}: play rtmp://host:port/{RTMP_APP}/<rtmpPlayback.streamKey>",
            req.app
        ));
    }
    let decision = if stored_tokens::looks_like_token(&req.stream_key) {
        token_viewer(&inner, &req.stream_key, req.remote.ip())
    } else {
        let found = |index: &KeyIndex| index.by_playback_key(&req.stream_key).cloned();
        viewer(&inner, found, ViewerFormat::Flv, Credential::Static)
    };
    match decision {
        Ok(viewer) => {
            tracing::info!(remote = %req.remote, tls = req.tls, "player accepted");
            PlayDecision::Accept(viewer)
        }
        Err(reason) => {
            tracing::info!(remote = %req.remote, reason, "player refused");
            PlayDecision::Reject(reason)
        }
    }
}

/// The SRT handshake's passphrase for a play request of `uid`.
pub(super) fn srt_passphrase(inner: &Inner, uid: &str) -> Lookup {
    match read(&inner.index).by_uid.get(uid) {
        Some(input) if authorize(input, Credential::Static).is_ok() => Lookup::Known {
            passphrase: Some(input.srt_playback_passphrase.clone()),
        },
        _ => Lookup::Unknown,
    }
}

/// A viewer for an SRT caller whose play request passed the handshake.
pub(super) fn srt_viewer(inner: &Inner, request: &CallerRequest) -> Result<Viewer, String> {
    let found = |index: &KeyIndex| index.by_uid.get(&request.stream_id).cloned();
    let viewer = viewer(inner, found, ViewerFormat::MpegTs, Credential::Static);
    match &viewer {
        Ok(_) => tracing::info!(remote = %request.remote, "SRT player accepted"),
        Err(reason) => tracing::info!(remote = %request.remote, reason, "SRT player refused"),
    }
    viewer
}

/// What a player presented.
#[derive(Clone, Copy, PartialEq)]
enum Credential {
    /// The input's playback key or SRT playback passphrase.
    Static,
    /// A verified signed-URL token naming the input.
    Signed,
}

/// An RTMP player whose stream key is a signed-URL token.
fn token_viewer(inner: &Inner, token: &str, client: IpAddr) -> Result<Viewer, String> {
    let verified = stored_tokens::verify(&inner.store, token).map_err(|e| e.to_string())?;
    let claims = verified.claims;
    if let Verdict::Refused(why) = rules::evaluate(&claims.access_rules, Some(client)) {
        return Err(why);
    }
    let found = |index: &KeyIndex| {
        index
            .by_uid
            .get(&claims.sub)
            .filter(|input| input.account_id == verified.account_id)
            .cloned()
    };
    viewer(inner, found, ViewerFormat::Flv, Credential::Signed)
}

/// A viewer of the live session of the input `find` finds.
fn viewer(
    inner: &Inner,
    find: impl FnOnce(&KeyIndex) -> Option<Arc<LiveInput>>,
    format: ViewerFormat,
    credential: Credential,
) -> Result<Viewer, String> {
    let input = find(&read(&inner.index)).ok_or(match credential {
        Credential::Static => "unknown playback key",
        Credential::Signed => "the token names no live input of its signing key's account",
    })?;
    authorize(&input, credential)?;
    let hub = lock(&inner.sessions)
        .get(&input.uid)
        .map(|session| session.hub.clone())
        .ok_or("the live input is not live")?;
    hub.subscribe(format).map_err(|e| e.to_string())
}

/// Whether the input lets players in with this credential.
fn authorize(input: &LiveInput, credential: Credential) -> Result<(), String> {
    if !input.enabled {
        return Err("live input is disabled".into());
    }
    if input.recording.require_signed_urls && credential == Credential::Static {
        return Err(
            "this live input requires signed URLs: play a signed-URL token from \
             POST /stream/{uid}/token as the stream key"
                .into(),
        );
    }
    Ok(())
}
