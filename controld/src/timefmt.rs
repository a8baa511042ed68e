//! Timestamps as the API shows them: RFC 3339, UTC, microseconds (as seen in Cloudflare responses).

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

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_rfc3339_with_microseconds() {
        let s = super::now();
        assert_eq!(s.len(), 27, "{s}");
        assert!(s.ends_with('Z'));
        time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).unwrap();
    }
}
