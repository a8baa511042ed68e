//! The end-of-run report: one line per connection, totals, and the tool's own CPU time; with
//! `--playlists`, the segment latency per connection and in all.

use std::collections::BTreeMap;

use crate::follow::Pace;
use crate::latency::{self, KeyframeSent, Outcome, SegmentLog, Totals};
use crate::parts::PartTotals;
use crate::publisher::ConnectionReport;
use crate::target::Target;
use crate::watch::Watcher;

/// utime + stime of this process (all threads) in seconds, from /proc/self/stat.
pub fn own_cpu_seconds() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| format!("cannot read /proc/self/stat: {e}"))?;
    cpu_seconds_from_stat(&stat, clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Fields 14 and 15 of proc(5)'s stat line; the command name (field 2) may hold spaces and
/// parentheses, so counting starts after its last `)`.
fn cpu_seconds_from_stat(stat: &str, ticks_per_second: f64) -> Result<f64, String> {
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("no command name in /proc/self/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> Result<f64, String> {
        fields
            .get(index)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .ok_or_else(|| format!("field {} of /proc/self/stat is not a number", index + 3))
    };
    // After the name, field 3 (state) has index 0: utime (14) is 11, stime (15) is 12.
    Ok((ticks(11)? + ticks(12)?) / ticks_per_second)
}

pub fn print(targets: &[Target], reports: &[ConnectionReport], quiet: bool) {
    if !quiet {
        for (n, (target, report)) in targets.iter().zip(reports).enumerate() {
            println!(
                "connection {} {}: bytes_sent={} media_seconds={:.1} errors={} reconnects={}{}",
                n + 1,
                target.url,
                report.bytes_sent,
                report.media_ms as f64 / 1000.0,
                report.errors,
                report.reconnects,
                report
                    .last_error
                    .as_ref()
                    .map(|e| format!(" last_error=\"{e}\""))
                    .unwrap_or_default(),
            );
        }
    }
    let sum = |f: fn(&ConnectionReport) -> u64| reports.iter().map(f).sum::<u64>();
    let cpu = match own_cpu_seconds() {
        Ok(seconds) => format!("{seconds:.3}"),
        Err(error) => {
            eprintln!("loadgen: {error}");
            "unknown".into()
        }
    };
    println!(
        "total: connections={} bytes_sent={} media_seconds={:.1} errors={} reconnects={} \
         churned={} aborted={} failed_connections={} loadgen_cpu_seconds={cpu}",
        reports.len(),
        sum(|r| r.bytes_sent),
        sum(|r| r.media_ms) as f64 / 1000.0,
        sum(|r| r.errors),
        sum(|r| r.reconnects),
        sum(|r| r.churned),
        sum(|r| r.aborted),
        reports.iter().filter(|r| r.errors > 0).count(),
    );
}

/// The keyframes and the recording of a connection whose segments can be mapped: one publish
/// that sent keyframes (or none) and at most one playlist with segments. None for a connection
/// that reconnected into another recording or continued one (it is left out, "untracked").
pub fn tracked<'a>(
    report: &'a ConnectionReport,
    logs: &'a BTreeMap<String, SegmentLog>,
) -> Option<(&'a [KeyframeSent], Option<&'a SegmentLog>)> {
    let mut publishes = report.keyframes.iter().filter(|k| !k.is_empty());
    let mut recordings = logs.values().filter(|log| log.len() > 0);
    let keyframes = publishes.next().map(Vec::as_slice).unwrap_or_default();
    let log = recordings.next();
    if publishes.next().is_some() || recordings.next().is_some() {
        return None;
    }
    Some((keyframes, log))
}

/// The latency part of the report.
pub struct LatencyReport {
    pub totals: Totals,
    /// Per connection; None when untracked.
    pub connections: Vec<Option<Outcome>>,
}

pub fn latency(reports: &[ConnectionReport], watcher: &Watcher) -> LatencyReport {
    let mut totals = Totals {
        connections: reports.len(),
        target_duration_s: watcher.target_duration_s().unwrap_or(0),
        overflows: watcher.overflows,
        request_errors: watcher.request_errors,
        parts: part_totals(watcher),
        ..Totals::default()
    };
    let connections = reports
        .iter()
        .zip(&watcher.logs)
        .map(|(report, logs)| {
            let (keyframes, log) = tracked(report, logs)?;
            let outcome = latency::evaluate(keyframes, log.unwrap_or(&SegmentLog::default()));
            totals.add(outcome.clone());
            Some(outcome)
        })
        .collect();
    LatencyReport {
        totals,
        connections,
    }
}

/// The part latency of every recording followed part by part (timed from its own wall clocks,
/// so reconnected connections count too); None unless the playlists were followed so.
pub fn part_totals(watcher: &Watcher) -> Option<PartTotals> {
    if watcher.pace != Pace::Parts {
        return None;
    }
    let mut totals = PartTotals {
        unavailable: watcher.unavailable,
        ..PartTotals::default()
    };
    for log in watcher.part_logs.iter().flat_map(BTreeMap::values) {
        totals.add(log);
    }
    Some(totals)
}

/// Writes every part timed to `path`, one line each after a header naming the columns: the
/// connection (1..=N), the recording's media playlist URL, the segment, the part's index in
/// it, when the response was read (ms since the epoch), the latency and whether the follower
/// caught up with it.
pub fn write_part_log(path: &std::path::Path, watcher: &Watcher) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "# connection recording sequence part seen_unix_ms latency_ms caught_up"
    )?;
    for (n, logs) in watcher.part_logs.iter().enumerate() {
        for (recording, log) in logs {
            for (part, latency) in log.timed.iter().zip(&log.latencies) {
                let seen = (part.seen.duration_since(std::time::UNIX_EPOCH))
                    .unwrap_or_default()
                    .as_millis();
                writeln!(
                    out,
                    "{} {recording} {} {} {seen} {:.1} {}",
                    n + 1,
                    part.sequence,
                    part.index,
                    latency.as_secs_f64() * 1000.0,
                    part.caught_up,
                )?;
            }
        }
    }
    out.flush()
}

pub fn print_latency(report: &LatencyReport, quiet: bool) {
    if !quiet {
        for (n, outcome) in report.connections.iter().enumerate() {
            let Some(outcome) = outcome else {
                println!("latency connection {}: untracked (reconnected)", n + 1);
                continue;
            };
            let max = outcome.latencies.iter().max().copied().unwrap_or_default();
            println!(
                "latency connection {}: segments={} max_ms={:.1} late={} missing={} unmatched={}",
                n + 1,
                outcome.latencies.len(),
                max.as_secs_f64() * 1000.0,
                outcome.late,
                outcome.missing,
                outcome.unmatched,
            );
        }
    }
    println!("{}", report.totals.line());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn log_of(durations_ms: &[u64]) -> SegmentLog {
        let mut log = SegmentLog::default();
        let playlist = latency::Playlist {
            target_duration_s: 10,
            media_sequence: 0,
            durations_ms: durations_ms.to_vec(),
            ended: false,
        };
        log.update(&playlist, Instant::now());
        log
    }

    #[test]
    fn a_connection_that_reconnected_into_a_second_recording_is_untracked() {
        let keyframe = KeyframeSent {
            timestamp_ms: 0,
            sent: Instant::now(),
        };
        let mut report = ConnectionReport {
            keyframes: vec![vec![], vec![keyframe]],
            ..ConnectionReport::default()
        };
        let mut logs = BTreeMap::new();
        logs.insert("a/media-v.m3u8?rec=1".to_owned(), log_of(&[4000]));
        logs.insert("a/media-v.m3u8?rec=2".to_owned(), SegmentLog::default());
        let (keyframes, log) = tracked(&report, &logs).unwrap();
        assert_eq!((keyframes.len(), log.unwrap().len()), (1, 1));
        logs.insert("a/media-v.m3u8?rec=3".to_owned(), log_of(&[4000]));
        assert!(tracked(&report, &logs).is_none());
        logs.remove("a/media-v.m3u8?rec=3");
        report.keyframes.push(vec![keyframe]);
        assert!(tracked(&report, &logs).is_none());
    }

    #[test]
    fn reads_utime_and_stime_after_an_odd_command_name() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5";
        assert_eq!(cpu_seconds_from_stat(stat, 100.0), Ok(3.0));
    }

    #[test]
    fn short_stat_is_an_error_not_a_panic() {
        assert!(cpu_seconds_from_stat("42 (x) S 1", 100.0).is_err());
        assert!(cpu_seconds_from_stat("garbage", 100.0).is_err());
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(own_cpu_seconds().unwrap() >= 0.0);
    }
}
