//! Who is watching a live input: every manifest or media file served from a live recording
//! notes its viewer, and `GET /{input}/views` counts the distinct viewers noted in the last
//! `WINDOW`.
//!
//! A viewer is told apart without cookies by the `vid` minted when it fetches an entry manifest
//! (`video.m3u8`, `video.mpd`) without one and carried in the query of every URI the manifests
//! name; a request without a `vid` (a player given a media playlist URL directly) counts by its
//! address and `User-Agent`. Memory is bounded: at most `MAX_PER_INPUT` viewers per input and
//! `MAX_TOTAL` in all are tracked (more are not counted), and expired ones are swept every
//! `SWEEP_EVERY`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};

use super::recording::Recording;
use crate::ids;

/// A viewer counts for this long after its last request (Cloudflare: "in the last ~30 s").
pub const WINDOW: Duration = Duration::from_secs(30);
const MAX_PER_INPUT: usize = 10_000;
const MAX_TOTAL: usize = 100_000;
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Who made a playback request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// Not identified yet (`View::parse` without a `vid`): not counted.
    #[default]
    Unknown,
    /// `vid=` of the request: a URL that names it keeps naming it in the URIs its manifests
    /// list, live or finished (a reload must not see its segments' URIs change).
    Id(String),
    /// Minted for an entry manifest fetched without a `vid`; handed on only while the
    /// recording is live (a finished one's manifests stay the same for everyone).
    Minted(String),
    /// A hash of the request's address and `User-Agent`.
    Client(u64),
}

impl Viewer {
    /// The viewer of a request whose query named `named`: a fresh id for an entry manifest
    /// fetched without one (the manifest then hands it on), else the client's address and
    /// browser.
    pub fn identify(
        named: Viewer,
        entry_manifest: bool,
        client: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Viewer {
        match named {
            Viewer::Unknown if entry_manifest => Viewer::Minted(ids::new_viewer_id()),
            Viewer::Unknown => {
                let mut hasher = DefaultHasher::new();
                client.hash(&mut hasher);
                headers.get(header::USER_AGENT).hash(&mut hasher);
                Viewer::Client(hasher.finish())
            }
            named => named,
        }
    }
}

impl Viewer {
    /// The `vid` to put into the URIs a manifest of a recording (`live` or not) names.
    pub fn handed_on(&self, live: bool) -> Option<&str> {
        match self {
            Viewer::Id(id) => Some(id),
            Viewer::Minted(id) if live => Some(id),
            _ => None,
        }
    }

    /// The same viewer whether its id was minted for this request or named by it.
    fn counted_as(&self) -> Viewer {
        match self {
            Viewer::Minted(id) => Viewer::Id(id.clone()),
            other => other.clone(),
        }
    }
}

/// Last request time of each viewer, per input.
#[derive(Debug)]
struct ViewerLog {
    inputs: HashMap<String, HashMap<Viewer, Instant>>,
    total: usize,
    swept: Instant,
}

impl ViewerLog {
    fn new(now: Instant) -> Self {
        ViewerLog {
            inputs: HashMap::new(),
            total: 0,
            swept: now,
        }
    }

    fn seen(&mut self, input: &str, viewer: &Viewer, now: Instant) {
        if now.duration_since(self.swept) >= SWEEP_EVERY {
            self.sweep(now);
        }
        if let Some(last) = self.inputs.get_mut(input).and_then(|v| v.get_mut(viewer)) {
            *last = now;
            return;
        }
        let full = self.total >= MAX_TOTAL;
        let viewers = self.inputs.entry(input.to_owned()).or_default();
        if full || viewers.len() >= MAX_PER_INPUT {
            return;
        }
        viewers.insert(viewer.clone(), now);
        self.total += 1;
    }

    fn count(&self, input: &str, now: Instant) -> usize {
        self.inputs.get(input).map_or(0, |viewers| {
            viewers
                .values()
                .filter(|last| now.duration_since(**last) < WINDOW)
                .count()
        })
    }

    fn sweep(&mut self, now: Instant) {
        for viewers in self.inputs.values_mut() {
            viewers.retain(|_, last| now.duration_since(*last) < WINDOW);
        }
        self.inputs.retain(|_, viewers| !viewers.is_empty());
        self.total = self.inputs.values().map(HashMap::len).sum();
        self.swept = now;
    }
}

static LOG: LazyLock<Mutex<ViewerLog>> =
    LazyLock::new(|| Mutex::new(ViewerLog::new(Instant::now())));

fn log() -> MutexGuard<'static, ViewerLog> {
    LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Notes that `viewer` fetched something of `recording`; only a live recording has viewers
/// that count (a finished one is a video played on demand).
pub fn seen(recording: &Recording, viewer: &Viewer) {
    if recording.live && *viewer != Viewer::Unknown {
        log().seen(&recording.input_uid, &viewer.counted_as(), Instant::now());
    }
}

/// Distinct viewers of the input's live recording in the last `WINDOW`.
pub fn live_count(input_uid: &str) -> usize {
    log().count(input_uid, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> Viewer {
        Viewer::Id(format!("viewer{n:06}"))
    }

    #[test]
    fn viewers_count_once_and_expire_after_the_window() {
        let t0 = Instant::now();
        let mut log = ViewerLog::new(t0);
        log.seen("a", &id(1), t0);
        log.seen("a", &id(1), t0 + Duration::from_secs(10));
        log.seen("a", &id(2), t0 + Duration::from_secs(5));
        log.seen("b", &Viewer::Client(7), t0);
        assert_eq!(log.count("a", t0 + Duration::from_secs(10)), 2);
        assert_eq!(log.count("b", t0), 1);
        // id 2 last seen at 5 s, id 1 at 10 s.
        assert_eq!(log.count("a", t0 + Duration::from_secs(36)), 1);
        assert_eq!(log.count("a", t0 + Duration::from_secs(40)), 0);
        log.seen("c", &id(3), t0 + Duration::from_secs(41));
        assert_eq!(log.total, 1, "expired viewers are swept");
        assert!(!log.inputs.contains_key("a"));
    }

    #[test]
    fn the_tracked_viewers_are_capped_per_input_and_in_all() {
        let t0 = Instant::now();
        let mut log = ViewerLog::new(t0);
        for n in 0..MAX_PER_INPUT + 5 {
            log.seen("a", &id(n), t0);
        }
        assert_eq!(log.count("a", t0), MAX_PER_INPUT);
        for input in 1..MAX_TOTAL / MAX_PER_INPUT + 2 {
            for n in 0..MAX_PER_INPUT {
                log.seen(&input.to_string(), &id(n), t0);
            }
        }
        assert_eq!(log.total, MAX_TOTAL);
        // Once the first ones expire there is room again.
        let later = t0 + WINDOW;
        log.seen("z", &id(0), later);
        assert_eq!(log.count("z", later), 1);
    }

    #[test]
    fn an_entry_manifest_without_a_vid_mints_one_and_others_count_by_client() {
        let headers = HeaderMap::new();
        let minted = Viewer::identify(Viewer::Unknown, true, None, &headers);
        assert!(matches!(&minted, Viewer::Minted(v) if ids::is_viewer_id(v)));
        assert_eq!(
            minted.handed_on(false),
            None,
            "not into a finished recording's URIs"
        );
        let Viewer::Minted(id) = &minted else {
            unreachable!()
        };
        let named = Viewer::Id(id.clone());
        assert_eq!(minted.counted_as(), named, "one viewer, minted or named");
        assert_eq!(minted.handed_on(true), Some(id.as_str()));
        assert_eq!(
            named.handed_on(false),
            Some(id.as_str()),
            "a URL keeps its vid"
        );
        assert_eq!(Viewer::identify(named.clone(), true, None, &headers), named);
        let mut other_browser = HeaderMap::new();
        other_browser.insert(header::USER_AGENT, "other".parse().unwrap());
        let addr = Some(IpAddr::from([127, 0, 0, 1]));
        let a = Viewer::identify(Viewer::Unknown, false, addr, &headers);
        assert_eq!(a, Viewer::identify(Viewer::Unknown, false, addr, &headers));
        assert_ne!(
            a,
            Viewer::identify(Viewer::Unknown, false, addr, &other_browser)
        );
    }
}
