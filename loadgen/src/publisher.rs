//! One connection's life: connect (TCP, and TLS for `rtmps://`), handshake, publish, send the
//! media in real time until its deadline, and start over after a failure; with [`Churn`], also
//! end each publish early (cleanly or abruptly) and start over.

use std::time::Duration;

use bytes::BytesMut;
use cfstream_proto::flv;
use cfstream_proto::rtmp::chunk::{ChunkError, ChunkWriter, message_type};
use cfstream_proto::rtmp::client::{self, StatusReader};
use cfstream_proto::rtmp::handshake::{self, HandshakeError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::latency::KeyframeSent;
use crate::media::{Media, Schedule};
use crate::target::Target;

/// Larger chunks than the default 128 bytes: fewer chunk headers, as ffmpeg and OBS do.
const CHUNK_SIZE: u32 = 4096;
const CONTROL_CHUNK_STREAM: u32 = 2;
const AUDIO_CHUNK_STREAM: u32 = 4;
const DATA_CHUNK_STREAM: u32 = 5;
const VIDEO_CHUNK_STREAM: u32 = 6;
/// Time allowed for connect, TLS handshake, RTMP handshake and the publish reply, each.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLISH_STARTED: &str = "NetStream.Publish.Start";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    #[error("server sent a bad chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    #[error("no answer within {SETUP_TIMEOUT:?} while {0}")]
    Timeout(&'static str),
    #[error("server closed the connection")]
    Closed,
    #[error("server refused: {code} {description}")]
    Refused { code: String, description: String },
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("rtmps:// URL but no TLS configuration")]
    NoTls,
}

/// Publishers that come and go (`--churn`): each publish ends after a random 0.5–1.5 times
/// `mean`, and the connection publishes again after a random pause of 0–2 times the retry delay
/// (so that a reconnect window of about the retry delay is sometimes met, sometimes missed).
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    pub mean: Duration,
    /// Per cent of the early ends that are abrupt: half close the socket without a shutdown
    /// (what the kernel does for a killed encoder), half reset it (`SO_LINGER` 0).
    pub abort_percent: u32,
}

/// How a publish ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    /// Shutdown of the write side after the last tag (FIN), then close.
    Clean,
    /// Close without shutdown, in the middle of the stream.
    Dropped,
    /// Close with `SO_LINGER` 0: the peer gets a reset.
    Reset,
}

/// A small deterministic generator (xorshift64*), one per connection, for the churn schedule.
struct Dice(u64);

impl Dice {
    fn new(connection: usize) -> Dice {
        Dice(0x9E37_79B9_7F4A_7C15 ^ (connection as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F))
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Churn {
    fn publish_length(&self, dice: &mut Dice) -> Duration {
        self.mean.mul_f64(0.5 + dice.next())
    }

    fn ending(&self, dice: &mut Dice) -> Ending {
        let roll = dice.next() * 100.0;
        let abort = f64::from(self.abort_percent);
        if roll >= abort {
            Ending::Clean
        } else if roll < abort / 2.0 {
            Ending::Dropped
        } else {
            Ending::Reset
        }
    }
}

/// What one connection did over its whole duration.
#[derive(Debug, Default)]
pub struct ConnectionReport {
    pub bytes_sent: u64,
    /// Media time sent, summed over the connection's publishes.
    pub media_ms: u64,
    pub errors: u64,
    pub reconnects: u64,
    /// Publishes ended early by `--churn`, and how many of them abruptly.
    pub churned: u64,
    pub aborted: u64,
    pub last_error: Option<String>,
    /// The video keyframes written, one list per publish that got as far as sending media.
    pub keyframes: Vec<Vec<KeyframeSent>>,
}

/// How a connection publishes: for how long, the pause after a failure, and its churn.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub duration: Duration,
    pub retry_delay: Duration,
    pub churn: Option<Churn>,
}

/// Publishes `media` to `target` for the plan's duration, reconnecting `retry_delay` after a
/// failure (and, with churn, after each early end). `connection` seeds the churn schedule.
pub async fn run(
    target: Target,
    tls: Option<TlsConnector>,
    media: &Media,
    plan: Plan,
    connection: usize,
) -> ConnectionReport {
    let deadline = Instant::now() + plan.duration;
    let mut dice = Dice::new(connection);
    let mut report = ConnectionReport::default();
    loop {
        let (until, ending) = match plan.churn {
            Some(churn) => {
                let until = deadline.min(Instant::now() + churn.publish_length(&mut dice));
                let ending = if until < deadline {
                    churn.ending(&mut dice)
                } else {
                    Ending::Clean
                };
                (until, ending)
            }
            None => (deadline, Ending::Clean),
        };
        match publish(&target, tls.as_ref(), media, until, ending, &mut report).await {
            Ok(()) if until >= deadline => break,
            Ok(()) => {
                report.churned += 1;
                report.aborted += u64::from(ending != Ending::Clean);
            }
            Err(error) => {
                report.errors += 1;
                report.last_error = Some(error.to_string());
            }
        }
        let pause = match plan.churn {
            Some(_) => plan.retry_delay.mul_f64(2.0 * dice.next()),
            None => plan.retry_delay,
        };
        if Instant::now() + pause >= deadline {
            break;
        }
        sleep(pause).await;
        report.reconnects += 1;
    }
    report
}

/// One publish until `deadline` (Ok), ended as `ending` says, or the first failure.
async fn publish(
    target: &Target,
    tls: Option<&TlsConnector>,
    media: &Media,
    deadline: Instant,
    ending: Ending,
    report: &mut ConnectionReport,
) -> Result<(), PublishError> {
    let stream = within("connecting", TcpStream::connect(target.addr)).await??;
    // Every tag is written when it is due: do not let Nagle hold small audio tags back.
    stream.set_nodelay(true)?;
    if ending == Ending::Reset {
        stream.set_zero_linger()?;
    }
    if !target.tls {
        return publish_on(stream, target, media, deadline, ending, report).await;
    }
    let connector = tls.ok_or(PublishError::NoTls)?;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| PublishError::ServerName(target.host.clone()))?;
    let stream = within("in the TLS handshake", connector.connect(name, stream)).await??;
    publish_on(stream, target, media, deadline, ending, report).await
}

/// The RTMP part of [`publish`], over TCP or TLS.
async fn publish_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    target: &Target,
    media: &Media,
    deadline: Instant,
    ending: Ending,
    report: &mut ConnectionReport,
) -> Result<(), PublishError> {
    let mut writer = ChunkWriter::default();
    let setup = async {
        stream.write_all(&handshake::client_c0c1(1)).await?;
        stream.flush().await?;
        let mut s0s1s2 = vec![0; 1 + 2 * handshake::HANDSHAKE_SIZE];
        stream.read_exact(&mut s0s1s2).await?;
        let mut out = handshake::client_c2(&s0s1s2)?;
        writer.write(
            &mut out,
            CONTROL_CHUNK_STREAM,
            0,
            message_type::SET_CHUNK_SIZE,
            0,
            &CHUNK_SIZE.to_be_bytes(),
        );
        writer.set_chunk_size(CHUNK_SIZE);
        out.extend_from_slice(&client::publish_commands(
            &writer,
            &target.app,
            &target.stream_key,
        ));
        stream.write_all(&out).await?;
        stream.flush().await?;
        Ok::<_, PublishError>(out.len() as u64 + 1 + handshake::HANDSHAKE_SIZE as u64)
    };
    report.bytes_sent += within("handshaking", setup).await??;

    let mut statuses = StatusReader::default();
    let mut input = BytesMut::new();
    let status = within("waiting for the publish reply", async {
        loop {
            if stream.read_buf(&mut input).await? == 0 {
                return Err(PublishError::Closed);
            }
            if let Some(status) = statuses.read(&mut input)?.into_iter().next() {
                return Ok(status);
            }
        }
    })
    .await??;
    if status.code != PUBLISH_STARTED {
        return Err(PublishError::Refused {
            code: status.code,
            description: status.description,
        });
    }

    let start = Instant::now();
    let mut schedule = Schedule::new(media);
    let mut out = BytesMut::new();
    let mut sent_until_ms = 0;
    let mut due_keyframes = vec![];
    report.keyframes.push(vec![]);
    loop {
        let due_ms = schedule.next_timestamp();
        let due = start + Duration::from_millis(due_ms);
        if due >= deadline {
            // Dropped and reset publishes just close (dropping `stream`), mid-stream.
            if ending == Ending::Clean {
                stream.shutdown().await?;
            }
            return Ok(());
        }
        tokio::select! {
            read = stream.read_buf(&mut input) => {
                // The server only talks back to refuse or to acknowledge; keep the socket drained.
                if read? == 0 {
                    return Err(PublishError::Closed);
                }
                let refusal = statuses.read(&mut input)?.into_iter().find(|s| s.level == "error");
                if let Some(status) = refusal {
                    return Err(PublishError::Refused {
                        code: status.code,
                        description: status.description,
                    });
                }
            }
            () = sleep_until(due) => {
                // Everything due by now goes in one write (tags of one instant, or a late wake-up).
                let now_ms = start.elapsed().as_millis() as u64;
                out.clear();
                let last_ms =
                    write_due_tags(&mut schedule, &writer, &mut out, now_ms, &mut due_keyframes);
                stream.write_all(&out).await?;
                stream.flush().await?;
                // A keyframe counts as sent once all of it is in the socket (the server can cut
                // the segment it closes only when it has the whole tag).
                if !due_keyframes.is_empty() {
                    let sent = std::time::Instant::now();
                    let log = report.keyframes.last_mut().expect("pushed above");
                    log.extend(due_keyframes.drain(..).map(|timestamp_ms| KeyframeSent {
                        timestamp_ms,
                        sent,
                    }));
                }
                report.bytes_sent += out.len() as u64;
                report.media_ms += last_ms.saturating_sub(sent_until_ms);
                sent_until_ms = last_ms;
            }
        }
    }
}

/// Appends the chunks of every tag due by `now_ms` to `out`; returns the last one's timestamp.
/// The timestamps of the video keyframes among them are appended to `keyframes`.
fn write_due_tags(
    schedule: &mut Schedule,
    writer: &ChunkWriter,
    out: &mut BytesMut,
    now_ms: u64,
    keyframes: &mut Vec<u64>,
) -> u64 {
    let mut last_ms = 0;
    while schedule.next_timestamp() <= now_ms {
        let (tag, timestamp) = schedule.take();
        if tag.keyframe {
            keyframes.push(timestamp);
        }
        let chunk_stream = match tag.tag_type {
            flv::TAG_AUDIO => AUDIO_CHUNK_STREAM,
            flv::TAG_VIDEO => VIDEO_CHUNK_STREAM,
            _ => DATA_CHUNK_STREAM,
        };
        // RTMP timestamps are 32-bit milliseconds that wrap (after 49 days).
        writer.write(
            out,
            chunk_stream,
            timestamp as u32,
            tag.tag_type,
            client::PUBLISH_STREAM_ID,
            &tag.body,
        );
        last_ms = timestamp;
    }
    last_ms
}

async fn within<T>(
    stage: &'static str,
    future: impl Future<Output = T>,
) -> Result<T, PublishError> {
    timeout(SETUP_TIMEOUT, future)
        .await
        .map_err(|_| PublishError::Timeout(stage))
}
