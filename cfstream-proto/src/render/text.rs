//! Text helpers shared by the renderers: decimal seconds from ticks without floating point, and
//! URIs safe inside a quoted attribute or on a URI line.

use std::fmt::Write;

use crate::index::{TrackKind, init_name};

/// How segment and init segment URIs are written: `prefix` + the file name + `?query` (when
/// the query is not empty). The prefix is usually empty (names relative to the playlist) or a
/// path ending in `/`; the query is what the caller propagates (a signed token, ...), without
/// the leading `?`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentUris<'a> {
    pub prefix: &'a str,
    pub query: &'a str,
}

impl SegmentUris<'_> {
    /// The prefix and `?query` escaped once, for the many URIs of one playlist.
    pub(crate) fn escaped(&self) -> EscapedUris {
        let mut prefix = String::new();
        push_uri(&mut prefix, self.prefix);
        let mut query = String::new();
        if !self.query.is_empty() {
            query.push('?');
            push_uri(&mut query, self.query);
        }
        EscapedUris { prefix, query }
    }
}

/// [`SegmentUris`] ready to write.
pub(crate) struct EscapedUris {
    pub prefix: String,
    /// `?query`, or empty.
    pub query: String,
}

impl EscapedUris {
    /// Appends the URI of segment `sequence` of `kind` (the name of
    /// [`segment_name`](crate::index::segment_name)).
    pub(crate) fn push_segment(&self, out: &mut String, kind: TrackKind, sequence: u64) {
        out.push_str(&self.prefix);
        out.push_str("seg-");
        push_padded(out, sequence, 8);
        out.push('.');
        out.push_str(kind.code());
        out.push_str(".m4s");
        out.push_str(&self.query);
    }

    /// Appends the URI of the init segment of discontinuity run `run` of `kind`.
    pub(crate) fn push_init(&self, out: &mut String, kind: TrackKind, run: u64) {
        out.push_str(&self.prefix);
        out.push_str(&init_name(kind, run));
        out.push_str(&self.query);
    }
}

/// Appends `uri`, percent-encoding what may not appear in a URI nor inside a playlist's quoted
/// string (controls, space, `"` and the other characters RFC 3986 never allows), so a caller's
/// odd query string cannot break a line or an attribute.
pub(crate) fn push_uri(out: &mut String, uri: &str) {
    for c in uri.chars() {
        if c.is_control()
            || matches!(
                c,
                ' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}'
            )
        {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// Appends `ticks / timescale` seconds with exactly `decimals` decimals, rounded half up, in
/// integer arithmetic (the same ticks always print the same text).
pub(crate) fn push_seconds(out: &mut String, ticks: u64, timescale: u32, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let timescale = u64::from(timescale.max(1));
    // 64-bit arithmetic whenever it cannot overflow (every real duration); 128-bit otherwise.
    let scaled = match ticks.checked_mul(scale * 2) {
        Some(double) if double <= u64::MAX - timescale => (double + timescale) / (2 * timescale),
        _ => {
            let t = u128::from(timescale);
            let scaled = (u128::from(ticks) * u128::from(scale) * 2 + t) / (2 * t);
            let scale = u128::from(scale);
            let _ = write!(out, "{}", scaled / scale);
            if decimals > 0 {
                let _ = write!(out, ".{:0w$}", scaled % scale, w = decimals as usize);
            }
            return;
        }
    };
    push_u64(out, scaled / scale);
    if decimals > 0 {
        out.push('.');
        let frac = scaled % scale;
        let mut digit = scale / 10;
        while digit > 0 {
            out.push(char::from(b'0' + (frac / digit % 10) as u8));
            digit /= 10;
        }
    }
}

/// Appends a decimal integer (what `write!` does, without the formatting machinery, which
/// dominates the cost of a long playlist).
pub(crate) fn push_u64(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Appends `value` zero-padded to at least `width` digits.
pub(crate) fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    while rest > 0 || digits.len() - at < width.min(20) {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// [`push_seconds`] with the three decimals every HLS duration is written with.
pub(crate) fn push_hls_seconds(out: &mut String, ticks: u64, timescale: u32) {
    push_seconds(out, ticks, timescale, 3);
}

/// Milliseconds of `ticks`, rounded half up.
pub(crate) fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    let timescale = u128::from(timescale.max(1));
    ((u128::from(ticks) * 2000 + timescale) / (2 * timescale)) as u64
}

/// Appends `value` escaped for an XML attribute in double quotes.
pub(crate) fn push_xml_attr(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to write most controls, not even as references.
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(ticks: u64, timescale: u32, decimals: u32) -> String {
        let mut s = String::new();
        push_seconds(&mut s, ticks, timescale, decimals);
        s
    }

    #[test]
    fn seconds_round_half_up_without_floats() {
        assert_eq!(seconds(360_000, 90_000, 3), "4.000");
        assert_eq!(seconds(90_045, 90_000, 3), "1.001"); // 1.0005 rounds up
        assert_eq!(seconds(90_044, 90_000, 3), "1.000");
        assert_eq!(seconds(1024, 48_000, 3), "0.021");
        assert_eq!(seconds(7, 1, 0), "7");
        assert_eq!(seconds(u64::MAX, 1, 3), format!("{}.000", u64::MAX));
        assert_eq!(
            seconds(5, 0, 1),
            "5.0",
            "a zero timescale is read as 1, not a panic"
        );
        assert_eq!(ticks_to_ms(1536, 48_000), 32);
    }

    #[test]
    fn uris_cannot_break_out_of_a_line_or_an_attribute() {
        let mut s = String::new();
        push_uri(&mut s, "a\"b c\nd?e=é");
        assert_eq!(s, "a%22b%20c%0Ad?e=é");
        let uris = SegmentUris {
            prefix: "/x/",
            query: "token=a\"b",
        };
        let mut s = String::new();
        uris.escaped().push_segment(&mut s, TrackKind::Video, 3);
        assert_eq!(s, "/x/seg-00000003.v.m4s?token=a%22b");
        let mut s = String::new();
        SegmentUris::default()
            .escaped()
            .push_segment(&mut s, TrackKind::Audio, 123_456_789);
        assert_eq!(s, crate::index::segment_name(TrackKind::Audio, 123_456_789));
        let mut s = String::new();
        push_padded(&mut s, 0, 8);
        push_u64(&mut s, 0);
        push_u64(&mut s, u64::MAX);
        assert_eq!(s, format!("000000000{}", u64::MAX));
        let mut s = String::new();
        push_xml_attr(&mut s, "a&b<\"'>\u{1}");
        assert_eq!(s, "a&amp;b&lt;&quot;&apos;&gt;\u{FFFD}");
    }
}
