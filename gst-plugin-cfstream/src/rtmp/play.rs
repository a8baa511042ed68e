//! The play phase of an RTMP connection (playback egress): a player that sent `play` with a
//! playback key is handed to the daemon's play handler, which answers with a viewer of the
//! input's [`Hub`](crate::egress::Hub) or a refusal (`NetStream.Play.StreamNotFound`). The viewer's
//! FLV tags are sent as RTMP media messages, timestamps starting at 0. A player too slow for the
//! live stream is dropped by the hub; its connection then closes even while a write to it is
//! stuck.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::connection::{Connection, Patience, Read, Transport};
use super::listener::ListenerHandle;
use super::registry::lock;
use crate::contract::DisconnectReason;
use crate::egress::{Chunk, Viewer};
use cfstream_proto::rtmp::session::SessionEvent;

/// A write to a player may take this long (a stalled player is dropped earlier, by the hub).
const PLAY_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The kernel's send buffer of a player's socket (it doubles it): fixed rather than autotuned
/// up to megabytes, so that a stalled player backs up into its hub queue, where it is noticed
/// within seconds, and costs little kernel memory. Enough for 40 Mbit/s at 100 ms RTT.
const PLAYER_SEND_BUFFER: usize = 256 * 1024;
/// Players send little (acknowledgements, pings); silence is no reason to end a play.
const PLAY_READ_PATIENCE: Duration = Duration::from_secs(24 * 3600);

/// A player's request.
#[derive(Clone, Debug)]
pub struct PlayRequest {
    pub remote: SocketAddr,
    pub app: String,
    /// The stream name of `play` (query parameters removed).
    pub stream_key: String,
    pub tls: bool,
}

pub enum PlayDecision {
    Accept(Viewer),
    /// `NetStream.Play.StreamNotFound` with this description.
    Reject(String),
}

pub(super) type PlayHandler = Arc<dyn Fn(&PlayRequest) -> PlayDecision + Send + Sync>;

impl ListenerHandle {
    /// Called (on a runtime thread; must not block long) for every `play`. Without a handler
    /// players are refused.
    pub fn set_play_handler(&self, f: Arc<dyn Fn(&PlayRequest) -> PlayDecision + Send + Sync>) {
        *lock(&self.registry().play_handler) = Some(f);
    }
}

impl<S: Transport> Connection<S> {
    /// Answers a `play` and, if accepted, sends the viewer's stream until it ends or the
    /// player leaves.
    pub(super) async fn play(mut self, app: String, stream_key: String) {
        let request = PlayRequest {
            remote: self.remote,
            app,
            stream_key,
            tls: self.tls,
        };
        let handler = lock(&self.registry.play_handler).clone();
        let decision = match handler {
            Some(handler) => handler(&request),
            None => PlayDecision::Reject("this server does not serve players".into()),
        };
        let viewer = match decision {
            PlayDecision::Accept(viewer) => viewer,
            PlayDecision::Reject(description) => {
                self.session
                    .reject_publish("NetStream.Play.StreamNotFound", &description);
                self.linger().await;
                return;
            }
        };
        // Best effort: without it a stalled player is still dropped, only later.
        let _ = crate::net::socket::set_send_buffer(self.stream.tcp(), PLAYER_SEND_BUFFER);
        self.session.accept_play();
        let _ = self.send_stream(&viewer).await;
    }

    /// Sends the viewer's tags, reading what the player sends meanwhile.
    async fn send_stream(&mut self, viewer: &Viewer) -> Result<(), DisconnectReason> {
        let patience = Patience::PerOperation(PLAY_WRITE_TIMEOUT);
        self.flush(patience).await?;
        let mut origin: Option<u32> = None;
        loop {
            tokio::select! {
                chunk = viewer.next() => {
                    let Ok(Chunk::Flv(tag)) = chunk else {
                        // The input ended (or the viewer was dropped): close the connection.
                        return Ok(());
                    };
                    // The headers go at 0, the media from the first keyframe's time on.
                    let header = cfstream_proto::flv::stream_header(tag.tag_type, &tag.body);
                    let origin = match (origin, header) {
                        (Some(origin), _) => origin,
                        (None, Some(_)) => tag.timestamp_ms,
                        (None, None) => *origin.insert(tag.timestamp_ms),
                    };
                    let timestamp = tag.timestamp_ms.saturating_sub(origin);
                    self.session.send_media(tag.tag_type, timestamp, &tag.body);
                    tokio::select! {
                        written = self.flush(patience) => written?,
                        () = viewer.too_slow() => return Err(DisconnectReason::ReadTimeout),
                    }
                }
                read = self.read(Patience::PerOperation(PLAY_READ_PATIENCE), None) => {
                    if let Read::Closed = read? {
                        return Ok(());
                    }
                    if self.take_player_messages()? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Runs the session on what the player sent (its replies are sent with the next media);
    /// `true` when it stopped playing.
    fn take_player_messages(&mut self) -> Result<bool, DisconnectReason> {
        loop {
            match self.session.process(&mut self.input) {
                Ok(Some(SessionEvent::Unpublished)) => return Ok(true),
                Ok(Some(_)) => {}
                Ok(None) => return Ok(false),
                Err(e) => return Err(DisconnectReason::protocol_error(e)),
            }
        }
    }
}
