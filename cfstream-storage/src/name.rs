//! Which names and prefixes the storages accept: the same on every backend, so that a name
//! that works on a local disk works in a bucket (and is its key as it is: no character that
//! object stores advise against). `+` is reserved for the chunks of a log in a bucket (see
//! `s3`).

use std::io;

/// A name: `/`-separated levels, none empty, `.` or `..`; none of [`RESERVED`], no control
/// characters.
pub fn check(name: &str) -> io::Result<()> {
    if name.is_empty() || name.split('/').any(bad_level) || has_reserved(name) {
        return Err(invalid(name, "name"));
    }
    Ok(())
}

/// A prefix: empty, a name, or a name followed by `/`.
pub fn check_prefix(prefix: &str) -> io::Result<()> {
    let levels = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.is_empty() || check(levels).is_ok() {
        return Ok(());
    }
    Err(invalid(prefix, "prefix"))
}

fn bad_level(level: &str) -> bool {
    matches!(level, "" | "." | "..")
}

/// `+` marks chunks; the others are what S3 and Google Cloud Storage advise against in keys.
pub const RESERVED: &str = "+\\{}^%`[]\"<>~#|*?";

fn has_reserved(name: &str) -> bool {
    name.chars().any(|c| RESERVED.contains(c) || c.is_control())
}

fn invalid(what: &str, kind: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "invalid object {kind} {what:?}: levels separated by '/', none empty, '.' or '..', none of {RESERVED} and no control characters"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        for good in ["index.log", "rec/seg-00000001.v.m4s", ".index.log.tmp"] {
            check(good).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/./b", "a~b", "a+b", "a\\b", "a\nb",
        ] {
            assert_eq!(
                check(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
        for good in ["", "rec/", "rec/seg-", "seg-"] {
            check_prefix(good).unwrap();
        }
        for bad in ["/", "rec//", "../"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
