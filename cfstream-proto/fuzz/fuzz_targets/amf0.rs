//! AMF0 decoding of arbitrary bytes: no panic, and what decodes re-encodes stably.
#![no_main]

use cfstream_proto::rtmp::amf0;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(values) = amf0::decode_all(data) else {
        return;
    };
    // Bytes, not values, are compared: NaN numbers are not equal to themselves.
    let encoded = amf0::encode_all(&values);
    let again = amf0::decode_all(&encoded).expect("own encoding decodes");
    assert_eq!(amf0::encode_all(&again), encoded);
});
