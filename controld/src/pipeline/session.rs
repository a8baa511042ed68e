//! One broadcast session of a live input: from the accepted publisher to the pipeline's end.
//! Its bus messages drive the input's status and the video records.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use gst::MessageView;
use gst::prelude::*;
use gstcfstream::contract::cfhlssink::RecordingFinished;
use gstcfstream::contract::codes::ERR_STREAM_KEY_IN_USE;
use gstcfstream::contract::gopvalidate::ErrorDetails;
use gstcfstream::contract::{DisconnectReason, ElementMessage};
use tokio::sync::{Notify, oneshot};

use super::outputs::Branches;
use super::{
    Ingest, Inner, StartRequest, StopReason, build, continuation, lock, recorded_media, recovery,
};
use crate::media_bucket::MediaBucket;
use crate::metrics::Metrics;
use crate::store::live_inputs::LiveInput;
use crate::store::outputs as output_rows;
use crate::store::status::{self, StatusEntry};
use crate::store::videos::{self, STATE_LIVE, Video};
use crate::webhooks::events::{InputError, LiveInputEvent};
use crate::{ids, timefmt};

/// The registries give an accepted publisher 5 s to be handed over; past this the session
/// gives up (the publisher went away before its pipeline started).
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// Error code of a session that failed for no reason the stream rules name.
const ERR_INTERNAL: &str = "ERR_INTERNAL";

/// How a session ended.
#[derive(Debug)]
enum End {
    /// The daemon stopped it (disable, delete, key rotation, shutdown).
    Stopped(StopReason),
    /// No publisher came back within the reconnect window (`cfrtmpsrc` EOS).
    IdleTimeout,
    /// An element error or a refused publisher: the input's status carries the code.
    Failed { code: String, message: String },
    /// The accepted publisher never reached the pipeline.
    NoPublisher,
}

struct Session {
    inner: Arc<Inner>,
    input: Arc<LiveInput>,
    protocol: Ingest,
    connected_once: bool,
    /// A publisher is connected now (it is owed a `live_input.disconnected`).
    publisher_present: bool,
    /// Uid of the video being recorded.
    recording: Option<String>,
    /// Status reason of the last disconnect, kept for the final status.
    last_disconnect: Option<String>,
    /// Code of the last `gopvalidate-violation`, in case a generic error follows it.
    last_violation: Option<(String, String)>,
    /// Simulcast branches, once the pipeline is built.
    outputs: Option<Branches>,
}

pub(super) async fn run(inner: Arc<Inner>, request: StartRequest) {
    let StartRequest {
        input,
        protocol,
        hub,
        stop,
        outputs_changed,
    } = request;
    let uid = input.uid.clone();
    let mut session = Session {
        inner: inner.clone(),
        input,
        protocol,
        connected_once: false,
        publisher_present: false,
        recording: None,
        last_disconnect: None,
        last_violation: None,
        outputs: None,
    };
    let end = match session.start(hub.clone()).await {
        Ok((pipeline, outputs)) => {
            session.outputs = Some(outputs);
            session.publish_output_counts();
            session.drive(pipeline, stop, &outputs_changed).await
        }
        Err(message) => {
            tracing::error!(input = uid, "starting the pipeline: {message}");
            End::Failed {
                code: ERR_INTERNAL.into(),
                message,
            }
        }
    };
    tracing::info!(input = uid, ?end, "live pipeline ended");
    hub.end();
    session.finish(end).await;
    lock(&inner.sessions).remove(&uid);
    let releasing = inner.clone();
    let _ = tokio::task::spawn_blocking(move || super::leases::give_up(&releasing, &uid)).await;
    inner.session_ended.notify_waiters();
}

impl Session {
    /// Builds the pipeline with the input's enabled outputs attached, and starts it.
    async fn start(
        &self,
        hub: gstcfstream::egress::Hub,
    ) -> Result<(gst::Pipeline, Branches), String> {
        let inner = self.inner.clone();
        let input = self.input.clone();
        let protocol = self.protocol;
        tokio::task::spawn_blocking(move || {
            let dir = inner.media_dir.join(&input.uid);
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {dir:?}: {e}"))?;
            let pipeline = build::pipeline(&input, protocol, &inner, &dir, inner.metrics.clone())
                .map_err(|e| e.to_string())?;
            let tee = pipeline
                .by_name(build::TEE)
                .ok_or("the pipeline has no tee")?;
            // Players are fed from the tee's input: what the source produced, before any rule.
            if let Some(pad) = tee.static_pad("sink") {
                super::playback::feed(&pad, hub);
            }
            let remux = protocol == Ingest::Srt;
            let mut outputs = Branches::new(pipeline.clone(), tee, inner.metrics.clone(), remux);
            // Attached before the first buffer: they get the FLV header and sequence headers.
            match inner.store.read(|c| output_rows::list(c, &input.uid)) {
                Ok(rows) => outputs.reconcile(rows),
                Err(e) => tracing::error!(input = input.uid, "reading outputs: {e}"),
            }
            if let Some(sink) = pipeline.by_name("hls") {
                let namer = RecordingNamer {
                    store: inner.store.clone(),
                    input,
                    node: inner.node_id.clone(),
                    bucket: inner.bucket.clone(),
                };
                connect_recording_name(&sink, namer);
            }
            pipeline
                .set_state(gst::State::Playing)
                .map_err(|e| format!("starting: {e}"))?;
            Ok((pipeline, outputs))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn drive(
        &mut self,
        pipeline: gst::Pipeline,
        mut stop: oneshot::Receiver<StopReason>,
        outputs_changed: &Notify,
    ) -> End {
        let Some(bus) = pipeline.bus() else {
            return End::Failed {
                code: ERR_INTERNAL.into(),
                message: "pipeline without a bus".into(),
            };
        };
        let mut messages = bus.stream();
        let handover = tokio::time::sleep(HANDOVER_TIMEOUT);
        tokio::pin!(handover);
        let end = loop {
            let next_retry = self.outputs.as_ref().and_then(Branches::next_retry);
            let retry = async {
                match next_retry {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = outputs_changed.notified() => self.reload_outputs(),
                _ = retry => {
                    if let Some(outputs) = &mut self.outputs {
                        outputs.retry_due();
                    }
                    self.publish_output_counts();
                }
                message = messages.next() => match message {
                    Some(message) => if let Some(end) = self.handle(&message).await { break end },
                    None => break End::Failed { code: ERR_INTERNAL.into(), message: "bus closed".into() },
                },
                reason = &mut stop => break End::Stopped(reason.unwrap_or(StopReason::Shutdown)),
                _ = &mut handover, if !self.connected_once => break End::NoPublisher,
            }
        };
        // Going to NULL finishes the recording (cfhlssink logs `end` at READY) and closes
        // the publisher's connection. It joins the streaming thread, hence the blocking pool.
        let stopping = pipeline.clone();
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || stopping.set_state(gst::State::Null)).await
        {
            tracing::warn!(input = self.input.uid, "stopping the pipeline: {e}");
        }
        // Messages posted while stopping (recording finished) are already in the stream;
        // errors among them are consequences of the end, not news.
        while let Some(Some(message)) = messages.next().now_or_never() {
            if !matches!(message.view(), MessageView::Error(_)) {
                self.handle(&message).await;
            }
        }
        end
    }

    /// Applies one bus message; returns how the session ends if this message ends it.
    async fn handle(&mut self, message: &gst::Message) -> Option<End> {
        match message.view() {
            MessageView::Element(e) => {
                match ElementMessage::parse(e.structure()?)? {
                    ElementMessage::PublisherConnected(m) => {
                        self.protocol = if m.tls { Ingest::Rtmps } else { Ingest::Rtmp };
                        self.publisher_connected(m.reconnect, &m.remote_address)
                            .await
                    }
                    ElementMessage::SrtPublisherConnected(m) => {
                        self.publisher_connected(m.reconnect, &m.remote_address)
                            .await
                    }
                    ElementMessage::PublisherDisconnected(m) => {
                        self.publisher_disconnected(&m.reason).await
                    }
                    ElementMessage::SrtPublisherDisconnected(m) => {
                        self.publisher_disconnected(&m.reason).await
                    }
                    ElementMessage::PublisherRejected(m) => {
                        return self.publisher_rejected(m.code, m.reason);
                    }
                    ElementMessage::SrtPublisherRejected(m) => {
                        return self.publisher_rejected(m.code, m.reason);
                    }
                    ElementMessage::GopViolation(violation) => {
                        self.inner.metrics.violation(&violation.code);
                        self.last_violation = Some((violation.code, violation.reason));
                    }
                    ElementMessage::RecordingStarted(m) => self.recording_started(m.recording),
                    ElementMessage::SegmentAdded(_) => self.segment_added().await,
                    ElementMessage::RecordingFinished(m) => self.recording_finished(m).await,
                }
                None
            }
            MessageView::Error(err) => {
                let from_output = self
                    .outputs
                    .as_mut()
                    .is_some_and(|o| o.on_error(err.src(), &err.error()));
                if from_output {
                    self.publish_output_counts();
                    None
                } else {
                    Some(self.failed(err))
                }
            }
            MessageView::Eos(_) => Some(End::IdleTimeout),
            MessageView::Warning(w) => {
                tracing::warn!(input = self.input.uid, "pipeline warning: {}", w.error());
                None
            }
            _ => None,
        }
    }

    async fn publisher_connected(&mut self, reconnect: bool, remote: &str) {
        self.connected_once = true;
        self.set_publishing(true);
        let state = if reconnect {
            "reconnected"
        } else {
            "connected"
        };
        let protocol = self.protocol.as_str();
        tracing::info!(input = self.input.uid, remote, protocol, state);
        self.push_status(state, state, None).await;
        self.publisher_present = true;
        self.notify(LiveInputEvent::Connected, None).await;
    }

    async fn publisher_disconnected(&mut self, reason: &DisconnectReason) {
        // Our own stop and refusals are reported by `finish` and `publisher_rejected`.
        let Some(reason) = status_reason(reason) else {
            return;
        };
        self.set_publishing(false);
        // The element now waits `idle-timeout` for the publisher to come back.
        self.push_status("reconnecting", reason, None).await;
        self.last_disconnect = Some(reason.to_owned());
        self.publisher_gone().await;
    }

    fn publisher_rejected(&self, code: String, reason: String) -> Option<End> {
        tracing::info!(input = self.input.uid, code, reason, "publisher refused");
        // A second publisher for a live key does not disturb the live one (nor is it a
        // broken rule of the stream).
        if code == ERR_STREAM_KEY_IN_USE {
            return None;
        }
        self.inner.metrics.violation(&code);
        Some(End::Failed {
            code,
            message: reason,
        })
    }

    fn recording_started(&mut self, video: String) {
        if let Some(s) = lock(&self.inner.sessions).get_mut(&self.input.uid) {
            s.recording = Some(video.clone());
        }
        self.recording = Some(video);
    }

    async fn segment_added(&self) {
        Metrics::add(&self.inner.metrics.segments_written, 1);
        if let (Some(bucket), Some(video)) = (&self.inner.bucket, &self.recording) {
            bucket.copy(&self.input.uid, video);
        }
        let uid = self.input.uid.clone();
        let now = timefmt::now();
        self.store_write(move |c| status::touch(c, &uid, &now))
            .await;
    }

    async fn recording_finished(&mut self, finished: RecordingFinished) {
        let video = finished.recording;
        let seconds = finished.duration as f64 / 1e9;
        if self.recording.as_ref() == Some(&video) {
            self.recording = None;
            if let Some(s) = lock(&self.inner.sessions).get_mut(&self.input.uid) {
                s.recording = None;
            }
        }
        if let Some(bucket) = &self.inner.bucket {
            bucket.copy_finished(&self.input.uid, &video).await;
        }
        let media = recorded_media::measure_finished(finished.directory.into()).await;
        let now = timefmt::now();
        let uid = video.clone();
        self.store_write(move |c| {
            if let Some(media) = &media {
                videos::record_media(c, &uid, media)?;
            }
            videos::mark_ready(c, &uid, seconds, &now)
        })
        .await;
        self.inner.webhooks.video_ready(&video).await;
    }

    /// An element error: its code comes from the error's details (`gopvalidate-error`), else
    /// from the violation reported just before it.
    fn failed(&mut self, err: &gst::message::Error) -> End {
        let coded = err
            .details()
            .and_then(ErrorDetails::from_structure)
            .map(|d| {
                let reason = if d.reason.is_empty() {
                    err.error().to_string()
                } else {
                    d.reason
                };
                (d.code, reason)
            });
        let (code, message) = coded
            .or_else(|| self.last_violation.take())
            .unwrap_or_else(|| (ERR_INTERNAL.into(), err.error().to_string()));
        tracing::warn!(
            input = self.input.uid,
            code,
            message,
            debug = ?err.debug(),
            "pipeline error"
        );
        End::Failed { code, message }
    }

    /// Final status, and closing a recording the sink could not finish itself.
    async fn finish(&mut self, end: End) {
        let (state, reason, error) = match end {
            End::Stopped(why) => (
                "disconnected",
                match why {
                    StopReason::Disabled => "input_disabled",
                    StopReason::Deleted => "input_deleted",
                    StopReason::KeysRotated => "keys_rotated",
                    StopReason::Shutdown => "server_shutdown",
                    StopReason::LeaseLost => "lease_lost",
                }
                .to_owned(),
                None,
            ),
            End::IdleTimeout => (
                "disconnected",
                self.last_disconnect
                    .take()
                    .unwrap_or_else(|| "client_disconnect".into()),
                None,
            ),
            End::Failed { code, message } => {
                ("disconnected", "errored".into(), Some((code, message)))
            }
            End::NoPublisher => ("failed_to_connect", "publisher_did_not_arrive".into(), None),
        };
        self.set_publishing(false);
        if let Some((code, message)) = &error {
            let error = InputError {
                code: code.clone(),
                message: message.clone(),
            };
            self.notify(LiveInputEvent::Errored, Some(&error)).await;
        }
        self.push_status(state, &reason, error).await;
        self.publisher_gone().await;
        if let Some(video) = self.recording.take() {
            let dir = super::recording_dir(&self.inner.media_dir, &self.input.uid, &video);
            let closing = self.inner.closing();
            recovery::close_recording(&closing, dir, &self.input.uid, video).await;
        }
    }

    /// Every `connected` event is followed by one `disconnected`.
    async fn publisher_gone(&mut self) {
        if std::mem::take(&mut self.publisher_present) {
            self.notify(LiveInputEvent::Disconnected, None).await;
        }
    }

    async fn notify(&self, event: LiveInputEvent, error: Option<&InputError>) {
        let name = self.input.meta.get("name").and_then(|n| n.as_str());
        self.inner
            .webhooks
            .live_input(&self.input.account_id, &self.input.uid, name, event, error)
            .await;
    }

    /// Applies the input's current outputs to the running pipeline.
    fn reload_outputs(&mut self) {
        let Some(outputs) = &mut self.outputs else {
            return;
        };
        match self
            .inner
            .store
            .read(|c| output_rows::list(c, &self.input.uid))
        {
            Ok(rows) => outputs.reconcile(rows),
            Err(e) => tracing::error!(input = self.input.uid, "reading outputs: {e}"),
        }
        self.publish_output_counts();
    }

    /// For `/metrics`.
    fn publish_output_counts(&self) {
        let counts = self.outputs.as_ref().map_or((0, 0), Branches::counts);
        if let Some(s) = lock(&self.inner.sessions).get_mut(&self.input.uid) {
            s.output_counts = counts;
        }
    }

    fn set_publishing(&self, publishing: bool) {
        if let Some(s) = lock(&self.inner.sessions).get_mut(&self.input.uid) {
            s.publishing = publishing;
        }
    }

    async fn push_status(&self, state: &str, reason: &str, error: Option<(String, String)>) {
        let now = timefmt::now();
        let (error_code, error_message) = error.unzip();
        let entry = StatusEntry {
            state: state.to_owned(),
            reason: reason.to_owned(),
            ingest_protocol: Some(self.protocol.as_str().to_owned()),
            status_entered_at: now.clone(),
            status_last_seen: now,
            error_code,
            error_message,
        };
        let uid = self.input.uid.clone();
        self.store_write(move |c| status::push(c, &uid, &entry))
            .await;
    }

    /// Bookkeeping writes: a failure is logged, the broadcast goes on.
    async fn store_write<F>(&self, f: F)
    where
        F: FnOnce(&crate::store::Conn) -> crate::store::sql::Result<()> + Send + 'static,
    {
        if let Err(e) = self.inner.store.write(f).await {
            tracing::error!(input = self.input.uid, "recording state: {e}");
        }
    }
}

/// Names each recording of `sink` (cfhlssink) after a new video row. The handler always returns
/// a value: a NULL name when the row cannot be made (e.g. a full disk), and the sink then names
/// the directory itself. Returning no value from a handler of a signal with a return type
/// panics inside GLib's emission, where a panic cannot unwind: the whole process would abort.
fn connect_recording_name(sink: &gst::Element, namer: RecordingNamer) {
    sink.connect("recording-name", false, move |_| {
        Some(namer.name().to_value())
    });
}

/// What names a recording: the video a dead node was recording, continued here (with a
/// bucket), or a new video row.
struct RecordingNamer {
    store: crate::store::Store,
    input: Arc<LiveInput>,
    node: String,
    bucket: Option<MediaBucket>,
}

impl RecordingNamer {
    fn name(&self) -> Option<String> {
        let (store, input, node) = (&self.store, &self.input, &self.node);
        let bucket = self.bucket.as_ref();
        bucket
            .and_then(|bucket| continuation::continued_video(store, bucket, input, node))
            .or_else(|| new_video(store, input, node))
    }
}

/// `recording-name` handler (streaming thread): creates the video row (recorded on `node`),
/// names the directory.
fn new_video(store: &crate::store::Store, input: &LiveInput, node: &str) -> Option<String> {
    let now = time::OffsetDateTime::now_utc();
    let when = now
        .format(time::macros::format_description!(
            "[day] [month repr:short] [year repr:last_two] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    let name = input
        .meta
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("Live Input");
    let created = timefmt::format(now);
    let video = Video {
        uid: ids::new_uid(),
        account_id: input.account_id.clone(),
        live_input: input.uid.clone(),
        modified: created.clone(),
        created,
        state: STATE_LIVE.to_owned(),
        ready_to_stream_at: None,
        duration: -1.0,
        meta: serde_json::json!({ "name": format!("{name} {when}") }),
        creator: input.default_creator.clone(),
        require_signed_urls: input.recording.require_signed_urls,
        allowed_origins: input.recording.allowed_origins.clone(),
    };
    match store.write_blocking(|c| {
        videos::insert(c, &video)?;
        crate::store::nodes::set_of_video(c, &video.uid, node)
    }) {
        Ok(()) => Some(video.uid),
        Err(e) => {
            tracing::error!(input = input.uid, "creating the video record: {e}");
            None
        }
    }
}

/// The status `reason` of a publisher's disconnect; `None` for the ends reported otherwise (the
/// daemon's own stop, a refusal).
fn status_reason(reason: &DisconnectReason) -> Option<&'static str> {
    match reason {
        DisconnectReason::Closed => Some("client_disconnect"),
        DisconnectReason::ReadTimeout => Some("read_timeout"),
        DisconnectReason::Replaced => Some("replaced"),
        DisconnectReason::ProtocolError(_) => Some("protocol_error"),
        DisconnectReason::Stopped | DisconnectReason::Rejected => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::live_inputs::RecordingSettings;

    fn input() -> LiveInput {
        LiveInput {
            uid: "0123456789abcdef0123456789abcdef".into(),
            account_id: "account".into(),
            created: timefmt::now(),
            modified: timefmt::now(),
            meta: serde_json::json!({}),
            enabled: true,
            delete_recording_after_days: None,
            default_creator: None,
            recording: RecordingSettings::default(),
            stream_key: "key".into(),
            srt_passphrase: "passphrase".into(),
            playback_key: "playback".into(),
            srt_playback_passphrase: "srt-playback".into(),
            keys_rotated_at: None,
        }
    }

    #[test]
    fn a_video_row_that_cannot_be_made_leaves_the_recording_name_to_the_sink() {
        gst::init().unwrap();
        // Registered already when another test started a pipeline manager.
        let _ = gstcfstream::plugin_register_static();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        // Every write now fails, as on a full disk.
        store
            .write_blocking(|c| c.execute("PRAGMA query_only = true", &[]))
            .unwrap();
        let sink = gst::ElementFactory::make("cfhlssink").build().unwrap();
        let namer = RecordingNamer {
            store,
            input: Arc::new(input()),
            node: "test-node".into(),
            bucket: None,
        };
        connect_recording_name(&sink, namer);
        let name = sink.emit_by_name::<Option<String>>("recording-name", &[]);
        assert_eq!(name, None);
    }
}
