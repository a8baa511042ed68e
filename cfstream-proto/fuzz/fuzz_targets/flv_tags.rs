//! FLV parsing and codec identification on arbitrary bytes: no panic, and tags written back
//! parse to the same tag.
#![no_main]

use bytes::BytesMut;
use cfstream_proto::flv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = match flv::parse_file_header(data) {
        Ok(size) => data.get(size..).unwrap_or_default(),
        Err(_) => data,
    };
    while let Some((tag, used)) = flv::parse_tag(rest) {
        let _ = flv::check_tag(tag.tag_type, tag.body);
        let _ = flv::is_video_frame(tag.tag_type, tag.body);
        if let Some(properties) = flv::metadata(tag.body) {
            let _ = flv::check_metadata(&properties);
        }
        let mut written = BytesMut::new();
        flv::write_tag(&mut written, tag.tag_type, tag.timestamp_ms, tag.body);
        let (again, again_used) = flv::parse_tag(&written).expect("own tag parses");
        assert_eq!((again, again_used), (tag, written.len()));
        rest = &rest[used..];
    }
});
