//! Two nodes racing for one input's lease on a real PostgreSQL never both get it, whether the
//! lease is free or has just lapsed.

use std::sync::{Arc, Barrier};

use cfstream_testservices::ScratchDatabase;
use controld::store::live_inputs::{self, LiveInput, RecordingSettings};
use controld::store::{Store, accounts, leases};

const ROUNDS: i64 = 200;
const TTL_MS: i64 = 1000;

#[test]
fn racing_nodes_never_both_own_an_input() {
    let database = ScratchDatabase::on_test_server();
    let nodes = [
        Store::connect(&database.url).unwrap(),
        Store::connect(&database.url).unwrap(),
    ];
    nodes[0]
        .write_blocking(|c| {
            accounts::ensure(c, "acct")?;
            live_inputs::save(c, &input("race"))
        })
        .unwrap();
    for round in 0..ROUNDS {
        // Each round starts where the last one's lease has lapsed (or, at first, is free).
        let now = round * 2 * TTL_MS;
        let start = Arc::new(Barrier::new(2));
        let won: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = nodes
                .iter()
                .zip(["node-a", "node-b"])
                .map(|(store, node)| {
                    let start = start.clone();
                    s.spawn(move || {
                        start.wait();
                        store
                            .write_blocking(|c| leases::acquire(c, "race", node, now, TTL_MS))
                            .unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
    }
}

fn input(uid: &str) -> LiveInput {
    LiveInput {
        uid: uid.into(),
        account_id: "acct".into(),
        created: "t".into(),
        modified: "t".into(),
        meta: serde_json::json!({}),
        enabled: true,
        delete_recording_after_days: None,
        default_creator: None,
        recording: RecordingSettings::default(),
        stream_key: format!("key-{uid}"),
        srt_passphrase: format!("passphrase-{uid}"),
        playback_key: format!("playback-{uid}"),
        srt_playback_passphrase: format!("srt-playback-{uid}"),
        keys_rotated_at: None,
    }
}
