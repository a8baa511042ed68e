//! Follows a live input's playback over HTTP as a player does (controld serves no playlist
//! files: it renders them from the recording's index). Connection n's entry is the input's
//! multivariant playlist URL, `http://host:port/<input uid>/manifest/video.m3u8`; the first
//! variant it names is the video media playlist of the current broadcast, with `rec=<video
//! uid>` in its query, so that each broadcast is logged apart (a reconnect into a new recording
//! leaves the connection untracked, as in the report).
//!
//! The media playlist is not polled: each request is an LL-HLS blocking reload
//! (`_HLS_msn=<next segment>`), which the server answers the moment that segment is listed, so
//! the instant the response arrives is the instant the segment became visible to players (plus
//! one loopback round trip). Only the multivariant playlist is polled, every [`LIVE_POLL`],
//! while the input is not live (`204`): nothing announces that a publisher arrived.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, Url};
use tokio::sync::mpsc::UnboundedSender;

use crate::latency::{self, Playlist};

/// Between looks at a multivariant playlist that names no broadcast yet. Well below a GOP, so
/// that the first segment's blocking reload is asked before that segment closes (it becomes
/// playable at the first part, a fraction of the GOP), and few enough requests not to load the
/// server being measured.
pub const LIVE_POLL: Duration = Duration::from_millis(250);

/// What a follower reports to the watcher.
#[derive(Debug)]
pub enum Event {
    /// A media playlist response: `playlist` as read at `seen`.
    Listed {
        connection: usize,
        /// The media playlist's URL (without the blocking-reload directive): one recording.
        recording: String,
        playlist: Playlist,
        seen: Instant,
    },
    /// A request that failed (it is tried again).
    Failed(String),
}

/// Follows connection `connection`'s input at `url` until the task is dropped.
pub async fn follow(client: Client, connection: usize, url: Url, events: UnboundedSender<Event>) {
    // Media playlists that ended: the input may still name its last broadcast for a moment.
    let mut ended = HashSet::new();
    loop {
        let outcome = match media_playlist(&client, &url).await {
            Ok(Some(media)) if !ended.contains(&media) => {
                let followed = follow_recording(&client, connection, &media, &events).await;
                if followed.is_ok() {
                    ended.insert(media);
                }
                followed
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome
            && events.send(Event::Failed(e)).is_err()
        {
            return;
        }
        tokio::time::sleep(LIVE_POLL).await;
    }
}

/// The video media playlist the multivariant playlist at `url` names; None while the input is
/// not live.
async fn media_playlist(client: &Client, url: &Url) -> Result<Option<Url>, String> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    match response.status() {
        StatusCode::NO_CONTENT => return Ok(None),
        StatusCode::OK => {}
        status => return Err(format!("{url}: {status}")),
    }
    let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    first_variant(url, &text)
        .map(Some)
        .ok_or_else(|| format!("{url}: no variant stream in the multivariant playlist"))
}

/// The URI after the first `#EXT-X-STREAM-INF`, resolved against the playlist's `url`.
pub fn first_variant(url: &Url, text: &str) -> Option<Url> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with("#EXT-X-STREAM-INF:"))?;
    let uri = lines.find(|l| !l.is_empty() && !l.starts_with('#'))?;
    url.join(uri).ok()
}

/// Reports every update of the media playlist at `media` until it ends (`EXT-X-ENDLIST`).
async fn follow_recording(
    client: &Client,
    connection: usize,
    media: &Url,
    events: &UnboundedSender<Event>,
) -> Result<(), String> {
    let mut next = 0;
    loop {
        let url = blocking_reload(media, next);
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        match response.status() {
            StatusCode::OK => {}
            // Held as long as the server holds one (three target durations), nothing new: the
            // publisher paused; ask again.
            StatusCode::SERVICE_UNAVAILABLE => continue,
            status => return Err(format!("{url}: {status}")),
        }
        let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        let seen = Instant::now();
        let playlist =
            latency::parse_playlist(&text).ok_or_else(|| format!("{url}: not a media playlist"))?;
        let listed_end = playlist.media_sequence + playlist.durations_ms.len() as u64;
        let finished = playlist.ended;
        let event = Event::Listed {
            connection,
            recording: media.to_string(),
            playlist,
            seen,
        };
        if events.send(event).is_err() || finished {
            return Ok(());
        }
        if listed_end <= next {
            // Answered without holding: the recording is between its writer and its end (the
            // server holds requests only on an index being written), nothing to wait on.
            tokio::time::sleep(LIVE_POLL).await;
        }
        next = next.max(listed_end);
    }
}

/// `media` asking for a response once segment `sequence` is listed.
fn blocking_reload(media: &Url, sequence: u64) -> Url {
    let mut url = media.clone();
    url.query_pairs_mut()
        .append_pair("_HLS_msn", &sequence.to_string());
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn finds_the_video_variant_of_a_controld_multivariant_playlist() {
        let url = Url::parse("http://127.0.0.1:8080/abc/manifest/video.m3u8").unwrap();
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,\
            URI=\"media-a.m3u8?rec=v1\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=3000000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\"\n\
            media-v.m3u8?rec=v1\n";
        let media = first_variant(&url, text).unwrap();
        assert_eq!(
            media.as_str(),
            "http://127.0.0.1:8080/abc/manifest/media-v.m3u8?rec=v1"
        );
        assert_eq!(
            blocking_reload(&media, 7).as_str(),
            "http://127.0.0.1:8080/abc/manifest/media-v.m3u8?rec=v1&_HLS_msn=7"
        );
        assert_eq!(
            first_variant(&url, "#EXTM3U\n#EXT-X-STREAM-INF:B=1\n"),
            None
        );
        assert_eq!(first_variant(&url, "#EXTM3U\nmedia-v.m3u8\n"), None);
    }

    /// Against a server that plays controld: not live, then live with one broadcast of two
    /// segments that ends.
    #[tokio::test(flavor = "current_thread")]
    async fn follows_the_broadcast_with_one_blocking_reload_per_segment() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = Arc::clone(&asked);
        let media = |segments: usize, ended: bool| {
            let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
            for n in 0..segments {
                text += &format!("#EXTINF:4.000,\nseg-{n:08}.v.m4s?rec=v1\n");
            }
            if ended {
                text += "#EXT-X-ENDLIST\n";
            }
            text
        };
        tokio::spawn(serve(listener, move |path| {
            let mut asked = log.lock().unwrap();
            asked.push(path.to_owned());
            match path {
                "/in/manifest/video.m3u8" if asked.len() == 1 => (204, String::new()),
                "/in/manifest/video.m3u8" => (
                    200,
                    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmedia-v.m3u8?rec=v1\n".into(),
                ),
                "/in/manifest/media-v.m3u8?rec=v1&_HLS_msn=0" => (200, media(1, false)),
                "/in/manifest/media-v.m3u8?rec=v1&_HLS_msn=1" => (200, media(2, true)),
                _ => (404, String::new()),
            }
        }));
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let url = Url::parse(&format!("{base}/in/manifest/video.m3u8")).unwrap();
        let follower = tokio::spawn(follow(Client::new(), 3, url, events));
        let mut listed = Vec::new();
        while listed.len() < 2 {
            match received.recv().await.unwrap() {
                Event::Listed {
                    connection,
                    recording,
                    playlist,
                    ..
                } => {
                    assert_eq!(connection, 3);
                    assert_eq!(recording, format!("{base}/in/manifest/media-v.m3u8?rec=v1"));
                    listed.push((playlist.durations_ms, playlist.ended));
                }
                Event::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(listed, [(vec![4000], false), (vec![4000, 4000], true)]);
        // The ended broadcast is not followed again while the input still names it.
        tokio::time::sleep(LIVE_POLL * 2).await;
        follower.abort();
        let asked = asked.lock().unwrap();
        let media_requests = asked.iter().filter(|p| p.contains("media-v")).count();
        assert_eq!(media_requests, 2, "{asked:?}");
    }

    /// Answers one HTTP/1.1 request per connection with what `answer` gives for its path.
    async fn serve(listener: TcpListener, answer: impl Fn(&str) -> (u16, String)) {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or_default();
            let (status, body) = answer(path);
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    }
}
