//! Wall-clock text without a clock: `EXT-X-PROGRAM-DATE-TIME` / `availabilityStartTime`
//! timestamps (ISO 8601, UTC, milliseconds) and `xs:duration` values, from and to milliseconds
//! since the Unix epoch. The calendar arithmetic is the proleptic Gregorian one (days from civil
//! dates and back), which is all a UTC timestamp needs: there are no leap seconds in Unix time.

use std::fmt::Write;

use super::text::push_padded;

const MS_PER_DAY: i64 = 86_400_000;

/// Appends `ms` (milliseconds since 1970-01-01T00:00:00Z) as `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn push_iso8601_ms(out: &mut String, ms: i64) {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    if !(0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}");
    } else {
        push_padded(out, year as u64, 4);
    }
    for (separator, value, width) in [
        ('-', month, 2),
        ('-', day, 2),
        ('T', h, 2),
        (':', m, 2),
        (':', s, 2),
        ('.', milli, 3),
    ] {
        out.push(separator);
        push_padded(out, value as u64, width);
    }
    out.push('Z');
}

/// `ms` as [`push_iso8601_ms`] writes it.
pub fn iso8601_ms(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_iso8601_ms(&mut out, ms);
    out
}

/// Reads an ISO 8601 date-time with a time zone (`Z` or `±hh:mm`) and optional fractional
/// seconds, as playlists carry it; fractions beyond milliseconds are truncated. `None` for
/// anything else.
pub fn parse_iso8601_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut milli = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        milli = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_ms = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            sign * (oh * 3_600_000 + om * 60_000)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * MS_PER_DAY + h * 3_600_000 + m * 60_000 + s * 1000 + milli - offset_ms)
}

/// Appends `ms` as an `xs:duration` in seconds: `PT4.000S`.
pub fn push_xs_duration_ms(out: &mut String, ms: u64) {
    let _ = write!(out, "PT{}.{:03}S", ms / 1000, ms % 1000);
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Years are counted from March so that
/// the leap day ends a year; eras are the 400-year cycles after which the calendar repeats.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_764_690_480_123), "2025-12-02T15:48:00.123Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso8601_ms(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // 1900..2300 covers the century rules both ways.
        let first = days_from_civil(1900, 1, 1);
        for days in first..first + 146_097 {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m), "{y}-{m}-{d}");
            assert_eq!(days_from_civil(y, m, d), days);
            let ms = days * MS_PER_DAY + 45_296_789;
            assert_eq!(parse_iso8601_ms(&iso8601_ms(ms)), Some(ms));
        }
    }

    #[test]
    fn parses_offsets_and_fractions_and_refuses_the_rest() {
        let base = parse_iso8601_ms("2026-12-02T15:48:00Z").unwrap();
        assert_eq!(
            parse_iso8601_ms("2026-12-02T16:48:00.5+01:00"),
            Some(base + 500)
        );
        assert_eq!(
            parse_iso8601_ms("2026-12-02T15:48:00.123456Z"),
            Some(base + 123)
        );
        for bad in [
            "",
            "2026-12-02T15:48:00",
            "2026-13-02T15:48:00Z",
            "2026-02-30T15:48:00Z",
            "2026-12-02 15:48:00Z",
            "2026-12-02T15:48:00.Z",
            "2026-12-02T15:48:00+0100",
            "2026-12-02T24:00:00Z",
            "2026-12-0xT15:48:00Z",
            "+026-12-02T15:48:00Z",
        ] {
            assert_eq!(parse_iso8601_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn xs_durations() {
        let mut s = String::new();
        push_xs_duration_ms(&mut s, 30_250);
        assert_eq!(s, "PT30.250S");
    }
}
