//! Chaos (issue 17, item 8): controld is killed with SIGKILL again and again while publishers
//! stream, and restarted each time on the same data dir and RTMP port. After every restart each
//! input takes its publisher back; at the end no video is left `live-inprogress`, every segment
//! a recording listed when the process died is still listed, and every segment any recording's
//! `index.log` lists decodes (with its init segment).
//!
//! The kill moments are random but seeded (`CHAOS_SEED=N` replays a run): each round waits
//! until every input's recording listed a segment since the restart, then for a random number
//! of further segments, then kills. `bench/chaos.sh` is the long run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cfstream_e2e::playback::{IndexLog, standalone_file};
use cfstream_e2e::{
    ChildGuard, Controld, Media, decode_all, free_loopback_port, loadgen_binary, wait_for,
};
use serde_json::json;

const STREAMS: usize = 8;
const KILLS: usize = 5;
/// The seed of CI runs; any other with `CHAOS_SEED`.
const DEFAULT_SEED: u64 = 17;
/// How long a new process may take to have every publisher back (the load generator retries
/// every 200 ms).
const TAKE_BACK: Duration = Duration::from_secs(45);

/// xorshift64*: the kill schedule, reproducible from the seed.
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `0..=n`.
    fn up_to(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % (n + 1)
    }
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .map(|s| s.parse().expect("CHAOS_SEED is a number"))
        .unwrap_or(DEFAULT_SEED)
}

/// The recording directories `media/<input>/<video>/` that hold an `index.log`.
fn recordings(media: &Path) -> Vec<PathBuf> {
    let entries = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default()
    };
    entries(media)
        .iter()
        .flat_map(|input| entries(input))
        .filter(|dir| dir.join("index.log").is_file())
        .collect()
}

/// The segment files (each with its init segment) the recordings' `index.log`s list.
fn listed_segments(media: &Path) -> BTreeSet<(PathBuf, PathBuf)> {
    let mut listed = BTreeSet::new();
    for dir in recordings(media) {
        let index = IndexLog::read(&dir);
        for (init, segment) in index.files("v").into_iter().chain(index.files("a")) {
            listed.insert((dir.join(segment), dir.join(init)));
        }
    }
    listed
}

/// How many segments the recordings of each input (`media/<input uid>/`) list.
fn recorded_per_input(media: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (segment, _) in listed_segments(media) {
        let input = segment.strip_prefix(media).unwrap().iter().next().unwrap();
        *counts
            .entry(input.to_string_lossy().into_owned())
            .or_default() += 1;
    }
    counts
}

/// Waits until every input's recordings list more segments than in `before`.
fn await_new_segment_everywhere(
    media: &Path,
    inputs: &[(String, String)],
    before: &BTreeMap<String, usize>,
    what: &str,
) {
    wait_for(what, TAKE_BACK, || {
        let now = recorded_per_input(media);
        let grew = |uid: &String| now.get(uid).copied() > before.get(uid).copied();
        inputs.iter().all(|(uid, _)| grew(uid)).then_some(())
    });
}

/// Live inputs recorded automatically, with a 1 s reconnect window: `(uid, stream key)`.
fn create_inputs(controld: &Controld) -> Vec<(String, String)> {
    let api = controld.api();
    (0..STREAMS)
        .map(|_| {
            let input =
                api.create_input(json!({"recording": {"mode": "automatic", "timeoutSeconds": 1}}));
            let uid = input["uid"].as_str().unwrap().to_owned();
            let key = input["rtmp"]["streamKey"].as_str().unwrap().to_owned();
            (uid, key)
        })
        .collect()
}

/// One reconnecting publisher per input for far longer than the test: the load generator,
/// retrying 200 ms after each failure (a refused connect while controld is down included).
fn start_publishers(dir: &Path, controld: &Controld, inputs: &[(String, String)]) -> ChildGuard {
    let media = Media {
        seconds: 8.0,
        keyint_seconds: 4.0,
        ..Media::default()
    };
    let flv = cfstream_testmedia::generate_media(&dir.join("loop.flv"), &media);
    let urls: Vec<String> = inputs.iter().map(|(_, k)| controld.rtmp_url(k)).collect();
    let url_file = dir.join("urls");
    std::fs::write(&url_file, urls.join("\n")).unwrap();
    ChildGuard::spawn(
        Command::new(loadgen_binary())
            .arg("--file")
            .arg(&flv)
            .arg("--url-file")
            .arg(&url_file)
            .args(["--connections", &STREAMS.to_string(), "--ramp", "50"])
            .args(["--duration", "900", "--retry-delay", "0.2", "--quiet"])
            .stdout(Stdio::null()),
    )
}

/// Waits until every input says `connected`.
fn await_publishers(controld: &Controld, inputs: &[(String, String)], what: &str) {
    let api = controld.api();
    wait_for(what, TAKE_BACK, || {
        inputs
            .iter()
            .all(|(uid, _)| api.input(uid)["status"]["current"]["state"] == "connected")
            .then_some(())
    });
}

/// Decodes every file on two threads; the failures as `(file, ffmpeg's messages)`.
fn undecodable(files: &BTreeSet<(PathBuf, PathBuf)>) -> Vec<(PathBuf, String)> {
    let files: Vec<&(PathBuf, PathBuf)> = files.iter().collect();
    let half = files.len().div_ceil(2).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(half)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(segment, init)| {
                            let dir = segment.parent().unwrap();
                            let name =
                                |p: &PathBuf| p.file_name().unwrap().to_str().unwrap().to_owned();
                            let file = standalone_file(dir, &name(init), &name(segment));
                            let err = decode_all(file.path().to_str().unwrap()).err()?;
                            Some((segment.clone(), err))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

#[test]
fn sigkill_under_load_loses_nothing_and_every_publisher_comes_back() {
    let seed = seed();
    eprintln!("chaos: seed {seed} (CHAOS_SEED={seed} replays this schedule)");
    let mut dice = Dice::new(seed);
    let work = tempfile::tempdir().unwrap();
    let mut controld =
        Controld::start_on_rtmp(free_loopback_port(), &["--rtmps", "off", "--srt", "off"]);
    let media = controld.data_dir.path().join("media");
    let inputs = create_inputs(&controld);
    let publishers = start_publishers(work.path(), &controld, &inputs);
    await_publishers(&controld, &inputs, "every publisher connected");
    let mut at_kill = BTreeMap::new();

    // What the recordings listed when the process died: it must all stay.
    let mut listed_at_kills = BTreeSet::new();
    for round in 1..=KILLS {
        await_new_segment_everywhere(
            &media,
            &inputs,
            &at_kill,
            &format!("round {round}: a new segment recorded for every input"),
        );
        let extra = dice.up_to(STREAMS);
        let before = listed_segments(&media).len();
        wait_for(
            &format!("round {round}: {extra} more segments listed"),
            TAKE_BACK,
            || (listed_segments(&media).len() >= before + extra).then_some(()),
        );
        let killed = Instant::now();
        controld = controld.kill9_then(|data| {
            let media = data.join("media");
            listed_at_kills.extend(listed_segments(&media));
            at_kill = recorded_per_input(&media);
        });
        await_publishers(
            &controld,
            &inputs,
            &format!("round {round}: every publisher back after the restart"),
        );
        eprintln!(
            "chaos: round {round}: killed {extra} segments after every input had a new one; \
             every publisher back {:?} after the kill",
            killed.elapsed()
        );
    }
    await_new_segment_everywhere(
        &media,
        &inputs,
        &at_kill,
        "a new segment recorded for every input after the last restart",
    );

    drop(publishers);
    let api = controld.api();
    let videos = wait_for(
        "every recording finished once its publisher left (1 s window)",
        Duration::from_secs(60),
        || {
            let videos: Vec<_> = inputs
                .iter()
                .flat_map(|(uid, _)| api.videos_of(uid))
                .collect();
            videos
                .iter()
                .all(|v| v["status"]["state"] != "live-inprogress")
                .then_some(videos)
        },
    );
    assert!(
        videos.len() > KILLS * STREAMS,
        "a new recording per input after each restart: {} videos",
        videos.len()
    );
    for video in &videos {
        assert_eq!(video["status"]["state"], "ready", "{video}");
    }

    let recorded = listed_segments(&media);
    let dropped: Vec<_> = listed_at_kills.difference(&recorded).collect();
    assert!(
        dropped.is_empty(),
        "segments listed when controld died are no longer listed: {dropped:?}"
    );
    for dir in recordings(&media) {
        let index = IndexLog::read(&dir);
        assert!(index.ended, "{} is not finished: {index:?}", dir.display());
    }
    let listed = listed_segments(&media);
    let failures = undecodable(&listed);
    eprintln!(
        "chaos: {KILLS} kills, {} videos, {} segments listed, {} do not decode",
        videos.len(),
        listed.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "listed but not decodable: {failures:#?}"
    );
}
