//! Timestamps as the API shows them: RFC 3339, UTC, microseconds (as seen in Cloudflare
//! responses); and offsets into a recording as playback URLs write them (`parse_offset`).

use std::time::Duration;

use time::OffsetDateTime;
use time::macros::format_description;

pub fn format(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000Z"))
}

pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// A recording is never longer than this; a larger offset is refused before any arithmetic.
const MAX_OFFSET: Duration = Duration::from_secs(366 * 24 * 3600);

/// Offsets into a recording as Cloudflare's URLs write them (`time`, `duration`, `startTime`):
/// `1h2m3.5s`-style offsets: numbers each followed by a unit (`h`, `m`, `s`, largest first,
/// each at most once), or one plain number of seconds.
pub fn parse_offset(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds);
    }
    let mut total = 0.0;
    let mut rest = text;
    let mut units = ["h", "m", "s"].as_slice();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(digits);
        let unit_at = units.iter().position(|u| tail.starts_with(u))?;
        let value: f64 = number.parse().ok()?;
        total += value * [3600.0, 60.0, 1.0][3 - units.len() + unit_at];
        units = &units[unit_at + 1..];
        rest = &tail[1..];
    }
    seconds_to_duration(total)
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d <= MAX_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_rfc3339_with_microseconds() {
        let s = super::now();
        assert_eq!(s.len(), 27, "{s}");
        assert!(s.ends_with('Z'));
        time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).unwrap();
    }

    #[test]
    fn times_read_as_cloudflare_writes_them() {
        let ms = |ms| Some(Duration::from_millis(ms));
        assert_eq!(parse_offset("68s"), ms(68_000));
        assert_eq!(parse_offset("1.5s"), ms(1_500));
        assert_eq!(parse_offset("2m"), ms(120_000));
        assert_eq!(parse_offset("5m2s"), ms(302_000));
        assert_eq!(parse_offset("1h0m30s"), ms(3_630_000));
        assert_eq!(parse_offset("0s"), ms(0));
        assert_eq!(parse_offset("12"), ms(12_000));
        assert_eq!(parse_offset("0.25"), ms(250));
        for bad in [
            "",
            "s",
            "-1s",
            "-1",
            "1x",
            "2s5m",
            "1m1m",
            "1.2.3s",
            "abc",
            "1e400",
            "inf",
            "NaN",
            "99999999h",
        ] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }
}
