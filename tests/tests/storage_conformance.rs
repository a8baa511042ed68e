//! The same sequence of storage operations on a local directory and on a real Garage bucket
//! gives the same results: what the recording writer and the daemon rely on does not depend
//! on where the media is.

use std::io;

use cfstream_e2e::garage::Garage;
use cfstream_storage::{LocalDir, S3Storage, Storage, StorageRead};

/// What one operation returned: its value, or the kind of its error (whose message must name
/// the object).
fn seen<T: std::fmt::Debug>(name: &str, result: io::Result<T>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => {
            assert!(e.to_string().contains(name), "{e} does not name {name}");
            format!("error {:?}", e.kind())
        }
    }
}

fn text(result: io::Result<Vec<u8>>) -> io::Result<String> {
    result.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The sequence: what each step returned, in order.
fn run<S: Storage + StorageRead>(s: &S) -> Vec<String> {
    let seg = "rec/seg-00000001.v.m4s";
    let log = "rec/index.log";
    let mut out = Vec::new();
    let mut note = |step: &str, value: String| out.push(format!("{step}: {value}"));

    // A segment: created, appended to, complete at its seal.
    s.create(seg).unwrap();
    s.append(seg, b"ab").unwrap();
    s.append(seg, b"cd").unwrap();
    s.seal(seg).unwrap();
    s.seal(seg).unwrap(); // nothing appended since: nothing to do
    note("read segment", seen(seg, text(s.read(seg))));
    note("range", seen(seg, text(s.read_range(seg, 1..3))));
    note("empty range", seen(seg, text(s.read_range(seg, 4..4))));
    note("range beyond", seen(seg, s.read_range(seg, 2..5)));
    note("size", seen(seg, s.size(seg)));
    // Created again: the new content only.
    s.create(seg).unwrap();
    s.append(seg, b"new").unwrap();
    s.seal(seg).unwrap();
    note("created again", seen(seg, text(s.read(seg))));
    // An empty object.
    s.create("rec/empty").unwrap();
    s.seal("rec/empty").unwrap();
    note("empty", seen("rec/empty", s.size("rec/empty")));

    // A log: replaced atomically, then appended to after each seal.
    s.replace(log, b"one\n").unwrap();
    s.replace(log, b"two\n").unwrap();
    note("replaced", seen(log, text(s.read(log))));
    s.append(log, b"three\n").unwrap();
    s.seal(log).unwrap();
    s.append(log, b"four\n").unwrap();
    s.append(log, b"five\n").unwrap();
    s.seal(log).unwrap();
    note("log", seen(log, text(s.read(log))));
    note("log size", seen(log, s.size(log)));
    note("log range", seen(log, text(s.read_range(log, 2..16))));
    note("listed once", seen("", s.list()));
    s.replace(log, b"six\n").unwrap();
    note("log replaced", seen(log, text(s.read(log))));
    s.append(log, b"seven\n").unwrap();
    s.seal(log).unwrap();
    note("log again", seen(log, text(s.read(log))));

    // Listing by prefix.
    s.replace("other/seg-00000001.a.m4s", b"x").unwrap();
    s.replace("rec/seg-00000002.v.m4s", b"y").unwrap();
    note("list", seen("", s.list()));
    note("list rec/seg-", seen("", s.list_prefix("rec/seg-")));
    note("list rec/", seen("", s.list_prefix("rec/")));
    note("list none", seen("", s.list_prefix("nothing/")));

    // Deleting; missing objects.
    s.delete(seg).unwrap();
    s.delete(seg).unwrap();
    note("read missing", seen(seg, s.read(seg)));
    note("range missing", seen(seg, s.read_range(seg, 0..1)));
    note("size missing", seen(seg, s.size(seg)));
    note("append missing", seen(seg, s.append(seg, b"x")));
    note("seal unwritten", seen(seg, s.seal(seg)));
    note("delete rec/", seen("rec/", s.delete_prefix("rec/")));
    note("after delete", seen("", s.list()));
    note("read deleted log", seen(log, s.read(log)));
    note("bad name", seen("a/../b", s.create("a/../b")));
    note("bad prefix", seen("a//", s.list_prefix("a//")));
    out
}

#[test]
fn local_dir_and_garage_give_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let local = run(&LocalDir::open(tmp.path()).unwrap());

    let garage = Garage::start();
    let bucket = S3Storage::open(&garage.config("conformance")).unwrap();
    let remote = run(&bucket);
    assert_eq!(local, remote);
    // What the sequence saw, so that equal results are also the right ones.
    for expected in [
        "read segment: \"abcd\"",
        "range beyond: error InvalidInput",
        "log: \"two\\nthree\\nfour\\nfive\\n\"",
        "log range: \"o\\nthree\\nfour\\nf\"",
        "listed once: [\"rec/empty\", \"rec/index.log\", \"rec/seg-00000001.v.m4s\"]",
        "log again: \"six\\nseven\\n\"",
        "read missing: error NotFound",
        "append missing: error NotFound",
        "delete rec/: 3",
        "after delete: [\"other/seg-00000001.a.m4s\"]",
        "bad name: error InvalidInput",
    ] {
        assert!(
            local.iter().any(|line| line == expected),
            "{expected} not in {local:#?}"
        );
    }
}

#[test]
fn bucket_errors_name_the_object_and_the_endpoint_and_appends_are_bounded() {
    let garage = Garage::start();
    let mut small = garage.config("bounded");
    small.max_buffered_bytes = 10;
    let bucket = S3Storage::open(&small).unwrap();
    bucket.create("seg").unwrap();
    bucket.append("seg", b"0123456789").unwrap();
    let e = bucket.append("seg", b"x").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::OutOfMemory, "{e}");
    assert!(e.to_string().contains("seg"), "{e}");
    bucket.seal("seg").unwrap();
    assert_eq!(bucket.read("seg").unwrap(), b"0123456789");
    // Sealed: the budget is free again.
    bucket.create("next").unwrap();
    bucket.append("next", b"0123456789").unwrap();

    let e = bucket.read("missing").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    for part in ["missing", "s3://media/bounded", &garage.endpoint] {
        assert!(e.to_string().contains(part), "{e} does not name {part}");
    }
    let mut wrong = garage.config("bounded");
    wrong.secret_access_key = "0".repeat(64);
    let e = S3Storage::open(&wrong).unwrap().read("seg").unwrap_err();
    assert!(e.to_string().contains(&garage.endpoint), "{e}");
}
