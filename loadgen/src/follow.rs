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
//!
//! [`Pace::Parts`] follows as an LL-HLS player does: `protocol=llhls` on the multivariant URL
//! (controld carries it into the media playlist URLs it names), one plain request for the
//! current state, then one blocking reload per part (`_HLS_msn=M&_HLS_part=P`: the next part of
//! the open segment, or part 0 of the next segment). A closing segment answers the request for
//! its next part, so segments are seen as early as with [`Pace::Segments`].

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Client, StatusCode, Url};
use tokio::sync::mpsc::UnboundedSender;

use crate::latency::{self, Playlist};
use crate::parts::{self, NextPart, PartListing};

/// Between looks at a multivariant playlist that names no broadcast yet. Well below a GOP, so
/// that the first segment's blocking reload is asked before that segment closes (it becomes
/// playable at the first part, a fraction of the GOP), and few enough requests not to load the
/// server being measured.
pub const LIVE_POLL: Duration = Duration::from_millis(250);

/// After a `503` to a part's blocking reload, before asking again. The server answers 503 once
/// it held a request three target durations, or at once while a recording's first segment is
/// open (its target duration is still 0): retrying at once would loop as fast as the server
/// answers, and a player would back off too.
pub const UNAVAILABLE_PAUSE: Duration = Duration::from_millis(100);

/// How often a follower asks for the media playlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// One blocking reload per segment, of the playlist the multivariant URL names.
    Segments,
    /// LL-HLS: one blocking reload per part.
    Parts,
}

/// What a follower reports to the watcher.
#[derive(Debug)]
pub enum Event {
    /// A media playlist response: `playlist` as read at `seen` (`seen_wall` on the wall clock).
    Listed {
        connection: usize,
        /// The media playlist's URL (without the blocking-reload directive): one recording.
        recording: String,
        playlist: Playlist,
        /// With [`Pace::Parts`]: its parts.
        parts: Option<PartListing>,
        /// The parts it lists for the first time are timed: the request was held for them. False
        /// for the first response of a recording and the one after a `503`, whose parts may have
        /// been listed before the request was sent.
        parts_timed: bool,
        seen: Instant,
        seen_wall: SystemTime,
    },
    /// A request that failed (it is tried again).
    Failed(String),
    /// A blocking reload answered `503` (asked again after [`UNAVAILABLE_PAUSE`] for parts).
    Unavailable,
}

/// Follows connection `connection`'s input at `url` until the task is dropped.
pub async fn follow(
    client: Client,
    connection: usize,
    url: Url,
    pace: Pace,
    events: UnboundedSender<Event>,
) {
    let url = match pace {
        Pace::Segments => url,
        Pace::Parts => low_latency(url),
    };
    let follower = Follower {
        client: &client,
        connection,
        events: &events,
    };
    // Media playlists that ended: the input may still name its last broadcast for a moment.
    let mut ended = HashSet::new();
    loop {
        let outcome = match media_playlist(&client, &url).await {
            Ok(Some(media)) if !ended.contains(&media) => {
                let followed = match pace {
                    Pace::Segments => follower.segments(&media).await,
                    Pace::Parts => follower.parts(&media).await,
                };
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

/// `url` with `protocol=llhls` (controld's switch to LL-HLS), unless it names a protocol.
fn low_latency(mut url: Url) -> Url {
    if !url.query_pairs().any(|(key, _)| key == "protocol") {
        url.query_pairs_mut().append_pair("protocol", "llhls");
    }
    url
}

/// The URI after the first `#EXT-X-STREAM-INF`, resolved against the playlist's `url`.
pub fn first_variant(url: &Url, text: &str) -> Option<Url> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with("#EXT-X-STREAM-INF:"))?;
    let uri = lines.find(|l| !l.is_empty() && !l.starts_with('#'))?;
    url.join(uri).ok()
}

/// One connection's follower of one recording's media playlist.
struct Follower<'a> {
    client: &'a Client,
    connection: usize,
    events: &'a UnboundedSender<Event>,
}

/// A media playlist response and when it was read.
struct Response {
    text: String,
    seen: Instant,
    seen_wall: SystemTime,
}

impl Follower<'_> {
    /// Reports every update of the media playlist at `media` until it ends (`EXT-X-ENDLIST`),
    /// asking for each next segment.
    async fn segments(&self, media: &Url) -> Result<(), String> {
        let mut next = 0;
        loop {
            let url = blocking_reload(media, next);
            let Some(response) = self.get(&url).await? else {
                continue;
            };
            let playlist = parse(&url, &response.text)?;
            let listed_end = playlist.media_sequence + playlist.durations_ms.len() as u64;
            let finished = playlist.ended;
            if !self.report(media, playlist, None, response, false) || finished {
                return Ok(());
            }
            if listed_end <= next {
                // Answered without holding: the recording is between its writer and its end
                // (the server holds requests only on an index being written), nothing to wait
                // on.
                tokio::time::sleep(LIVE_POLL).await;
            }
            next = next.max(listed_end);
        }
    }

    /// Reports every update of the LL-HLS media playlist at `media` until it ends, asking for
    /// each next part; the first request, without a directive, reads where the recording is.
    async fn parts(&self, media: &Url) -> Result<(), String> {
        let mut next: Option<NextPart> = None;
        let mut timed = false;
        loop {
            let url = next.map_or_else(|| media.clone(), |part| part_reload(media, part));
            let Some(response) = self.get(&url).await? else {
                timed = false;
                tokio::time::sleep(UNAVAILABLE_PAUSE).await;
                continue;
            };
            let playlist = parse(&url, &response.text)?;
            let listing = parts::parse_parts(&response.text)
                .ok_or_else(|| format!("{url}: not an LL-HLS media playlist"))?;
            let following = listing.next_part();
            let finished = playlist.ended;
            if !self.report(media, playlist, Some(listing), response, timed) || finished {
                return Ok(());
            }
            timed = true;
            if following.is_none() || following == next {
                // Nothing listed yet, or answered without the part asked for (the writer is
                // gone): nothing to wait on.
                tokio::time::sleep(LIVE_POLL).await;
            }
            next = following.or(next);
        }
    }

    /// GETs `url`; None (reported) when the server answered `503`: it held the request as
    /// long as it holds one (three target durations) with nothing new, the publisher paused;
    /// ask again.
    async fn get(&self, url: &Url) -> Result<Option<Response>, String> {
        let response = (self.client.get(url.clone()).send())
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                let _ = self.events.send(Event::Unavailable);
                return Ok(None);
            }
            status => return Err(format!("{url}: {status}")),
        }
        let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        Ok(Some(Response {
            text,
            seen: Instant::now(),
            seen_wall: SystemTime::now(),
        }))
    }

    /// Sends the watcher what `response` listed; false once the watcher is gone.
    fn report(
        &self,
        media: &Url,
        playlist: Playlist,
        parts: Option<PartListing>,
        response: Response,
        parts_timed: bool,
    ) -> bool {
        let event = Event::Listed {
            connection: self.connection,
            recording: media.to_string(),
            playlist,
            parts,
            parts_timed,
            seen: response.seen,
            seen_wall: response.seen_wall,
        };
        self.events.send(event).is_ok()
    }
}

fn parse(url: &Url, text: &str) -> Result<Playlist, String> {
    latency::parse_playlist(text).ok_or_else(|| format!("{url}: not a media playlist"))
}

/// `media` asking for a response once segment `sequence` is listed.
fn blocking_reload(media: &Url, sequence: u64) -> Url {
    let mut url = media.clone();
    url.query_pairs_mut()
        .append_pair("_HLS_msn", &sequence.to_string());
    url
}

/// `media` asking for a response once `part` is listed.
fn part_reload(media: &Url, part: NextPart) -> Url {
    let mut url = media.clone();
    url.query_pairs_mut()
        .append_pair("_HLS_msn", &part.msn.to_string())
        .append_pair("_HLS_part", &part.part.to_string());
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
        let follower = tokio::spawn(follow(Client::new(), 3, url, Pace::Segments, events));
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
                Event::Unavailable => panic!("503"),
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

    /// LL-HLS: `protocol=llhls` on the multivariant URL, a plain request, then one blocking
    /// reload per part: the next part of the open segment, then (once it closed) part 0 of the
    /// next. A `503` is asked again after a pause, and what follows it is not timed.
    #[tokio::test(flavor = "current_thread")]
    async fn follows_an_ll_hls_playlist_part_by_part() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = Arc::clone(&asked);
        // Segment 0 with `parts` parts of 0.5 s; closed (4 s, 8 parts) with `complete`.
        let media = |parts: usize, complete: bool, ended: bool| {
            let mut text = String::from(
                "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=0.500\n\
                 #EXT-X-PROGRAM-DATE-TIME:2026-12-02T15:00:00.000Z\n",
            );
            for _ in 0..parts {
                text += "#EXT-X-PART:DURATION=0.500,URI=\"seg-0.m4s\"\n";
            }
            if complete {
                text += "#EXTINF:4.000,\nseg-0.m4s\n";
            }
            if ended {
                text += "#EXT-X-ENDLIST\n";
            }
            text
        };
        tokio::spawn(serve(listener, move |path| {
            let mut asked = log.lock().unwrap();
            let again = asked.iter().any(|p| p == path);
            asked.push(path.to_owned());
            let playlist = "/in/manifest/media-v.m3u8?protocol=llhls&rec=v1";
            match path.strip_prefix(playlist) {
                Some("") => (200, media(1, false, false)),
                Some("&_HLS_msn=0&_HLS_part=1") if !again => (503, String::new()),
                Some("&_HLS_msn=0&_HLS_part=1") => (200, media(2, false, false)),
                Some("&_HLS_msn=0&_HLS_part=2") => (200, media(8, true, false)),
                Some("&_HLS_msn=1&_HLS_part=0") => (200, media(8, true, true)),
                _ if path == "/in/manifest/video.m3u8?protocol=llhls" => (
                    200,
                    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmedia-v.m3u8?protocol=llhls&rec=v1\n"
                        .into(),
                ),
                _ => (404, String::new()),
            }
        }));
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let url = Url::parse(&format!("{base}/in/manifest/video.m3u8")).unwrap();
        let follower = tokio::spawn(follow(Client::new(), 0, url, Pace::Parts, events));
        let mut listed: Vec<(usize, bool, bool)> = Vec::new();
        let mut unavailable = 0;
        while listed.last().is_none_or(|&(_, _, ended)| !ended) {
            match received.recv().await.unwrap() {
                Event::Listed {
                    parts,
                    parts_timed,
                    playlist,
                    ..
                } => {
                    let parts = parts.expect("parts read");
                    let count = parts.segments[0].parts_us.len();
                    listed.push((count, parts_timed, playlist.ended));
                }
                Event::Failed(e) => panic!("{e}"),
                Event::Unavailable => unavailable += 1,
            }
        }
        follower.abort();
        let timed = [
            (1, false, false),
            (2, false, false),
            (8, true, false),
            (8, true, true),
        ];
        assert_eq!((listed.as_slice(), unavailable), (timed.as_slice(), 1));
        assert_eq!(asked.lock().unwrap().len(), 6);
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
