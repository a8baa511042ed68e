//! AMF0 values (the encoding of RTMP commands and FLV script data), decoding and encoding.
//!
//! Decoding never trusts a declared count or length for allocation: containers grow as their
//! elements are actually decoded, and nesting is capped so that hostile input cannot exhaust the
//! stack.

use bytes::{BufMut, BytesMut};

/// Deepest nesting of objects/arrays accepted: real encoders use two or three levels.
const MAX_DEPTH: usize = 16;

const MARKER_NUMBER: u8 = 0x00;
const MARKER_BOOLEAN: u8 = 0x01;
const MARKER_STRING: u8 = 0x02;
const MARKER_OBJECT: u8 = 0x03;
const MARKER_NULL: u8 = 0x05;
const MARKER_UNDEFINED: u8 = 0x06;
const MARKER_ECMA_ARRAY: u8 = 0x08;
const MARKER_OBJECT_END: u8 = 0x09;
const MARKER_STRICT_ARRAY: u8 = 0x0a;
const MARKER_DATE: u8 = 0x0b;
const MARKER_LONG_STRING: u8 = 0x0c;

/// One AMF0 value. Objects and ECMA arrays keep their properties in wire order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    /// Milliseconds since the epoch and the (unused, per spec zero) time zone.
    Date(f64, i16),
    LongString(String),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The named property of an object or ECMA array.
    pub fn property(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Amf0Error {
    #[error("AMF0 data ends in the middle of a value")]
    Truncated,
    #[error("unsupported AMF0 type marker 0x{0:02x}")]
    UnsupportedMarker(u8),
    #[error("AMF0 string is not UTF-8")]
    InvalidUtf8,
    #[error("AMF0 values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Decodes every value in `data` (an RTMP command or data message body).
pub fn decode_all(mut data: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let mut values = Vec::new();
    while !data.is_empty() {
        values.push(decode(&mut data)?);
    }
    Ok(values)
}

/// Decodes one value from the front of `data`, advancing it.
pub fn decode(data: &mut &[u8]) -> Result<Value, Amf0Error> {
    decode_at_depth(data, 0)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], Amf0Error> {
    if data.len() < n {
        return Err(Amf0Error::Truncated);
    }
    let (head, tail) = data.split_at(n);
    *data = tail;
    Ok(head)
}

fn take_u8(data: &mut &[u8]) -> Result<u8, Amf0Error> {
    Ok(take(data, 1)?[0])
}

fn take_u16(data: &mut &[u8]) -> Result<u16, Amf0Error> {
    let b = take(data, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn take_u32(data: &mut &[u8]) -> Result<u32, Amf0Error> {
    let b = take(data, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_f64(data: &mut &[u8]) -> Result<f64, Amf0Error> {
    let b = take(data, 8)?;
    Ok(f64::from_be_bytes(b.try_into().expect("8 bytes")))
}

fn take_utf8(data: &mut &[u8], len: usize) -> Result<String, Amf0Error> {
    let bytes = take(data, len)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| Amf0Error::InvalidUtf8)
}

fn decode_at_depth(data: &mut &[u8], depth: usize) -> Result<Value, Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    let marker = take_u8(data)?;
    Ok(match marker {
        MARKER_NUMBER => Value::Number(take_f64(data)?),
        MARKER_BOOLEAN => Value::Boolean(take_u8(data)? != 0),
        MARKER_STRING => {
            let len = take_u16(data)? as usize;
            Value::String(take_utf8(data, len)?)
        }
        MARKER_LONG_STRING => {
            let len = take_u32(data)? as usize;
            Value::LongString(take_utf8(data, len)?)
        }
        MARKER_OBJECT => Value::Object(decode_properties(data, depth)?),
        MARKER_ECMA_ARRAY => {
            // The count is only a hint (encoders get it wrong); the object-end marker ends it.
            take_u32(data)?;
            Value::EcmaArray(decode_properties(data, depth)?)
        }
        MARKER_STRICT_ARRAY => {
            let count = take_u32(data)?;
            let mut items = Vec::new();
            for _ in 0..count {
                items.push(decode_at_depth(data, depth + 1)?);
            }
            Value::StrictArray(items)
        }
        MARKER_DATE => {
            let millis = take_f64(data)?;
            let zone = take_u16(data)? as i16;
            Value::Date(millis, zone)
        }
        MARKER_NULL => Value::Null,
        MARKER_UNDEFINED => Value::Undefined,
        other => return Err(Amf0Error::UnsupportedMarker(other)),
    })
}

fn decode_properties(data: &mut &[u8], depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
    let mut props = Vec::new();
    loop {
        let len = take_u16(data)? as usize;
        if len == 0 && data.first() == Some(&MARKER_OBJECT_END) {
            take_u8(data)?;
            return Ok(props);
        }
        let key = take_utf8(data, len)?;
        let value = decode_at_depth(data, depth + 1)?;
        props.push((key, value));
    }
}

/// Appends the encoding of `value` to `out`. Strings longer than 65535 bytes become long strings.
pub fn encode(out: &mut BytesMut, value: &Value) {
    match value {
        Value::Number(n) => {
            out.put_u8(MARKER_NUMBER);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(MARKER_BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) | Value::LongString(s) => encode_string(out, s),
        Value::Object(props) => {
            out.put_u8(MARKER_OBJECT);
            encode_properties(out, props);
        }
        Value::Null => out.put_u8(MARKER_NULL),
        Value::Undefined => out.put_u8(MARKER_UNDEFINED),
        Value::EcmaArray(props) => {
            out.put_u8(MARKER_ECMA_ARRAY);
            out.put_u32(props.len() as u32);
            encode_properties(out, props);
        }
        Value::StrictArray(items) => {
            out.put_u8(MARKER_STRICT_ARRAY);
            out.put_u32(items.len() as u32);
            for item in items {
                encode(out, item);
            }
        }
        Value::Date(millis, zone) => {
            out.put_u8(MARKER_DATE);
            out.put_f64(*millis);
            out.put_i16(*zone);
        }
    }
}

fn encode_string(out: &mut BytesMut, s: &str) {
    match u16::try_from(s.len()) {
        Ok(len) => {
            out.put_u8(MARKER_STRING);
            out.put_u16(len);
        }
        Err(_) => {
            out.put_u8(MARKER_LONG_STRING);
            out.put_u32(s.len() as u32);
        }
    }
    out.put_slice(s.as_bytes());
}

fn encode_properties(out: &mut BytesMut, props: &[(String, Value)]) {
    for (key, value) in props {
        // Property names are short by construction; longer ones are cut at the u16 limit.
        let key = &key.as_bytes()[..key.len().min(u16::MAX as usize)];
        out.put_u16(key.len() as u16);
        out.put_slice(key);
        encode(out, value);
    }
    out.put_u16(0);
    out.put_u8(MARKER_OBJECT_END);
}

/// Encodes a sequence of values (e.g. a command: name, transaction id, arguments).
pub fn encode_all(values: &[Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for value in values {
        encode(&mut out, value);
    }
    out
}

/// Shorthand for building objects: `object(&[("level", "status".into())])`.
pub fn object(props: &[(&str, Value)]) -> Value {
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let values = vec![
            Value::Number(1.5),
            Value::Boolean(true),
            "connect".into(),
            object(&[("app", "live".into()), ("n", 3.0.into())]),
            Value::Null,
            Value::Undefined,
            Value::EcmaArray(vec![("width".into(), 320.0.into())]),
            Value::StrictArray(vec![Value::Null, 2.0.into()]),
            Value::Date(1.0e12, 0),
            Value::LongString("x".repeat(70_000)),
        ];
        let encoded = encode_all(&values);
        assert_eq!(decode_all(&encoded).unwrap(), values);
    }

    #[test]
    fn decodes_ffmpeg_connect_prefix() {
        // "connect", 1.0, {app: "live"}
        let bytes = [
            0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't', 0x00, 0x3f, 0xf0, 0, 0, 0,
            0, 0, 0, 0x03, 0x00, 0x03, b'a', b'p', b'p', 0x02, 0x00, 0x04, b'l', b'i', b'v', b'e',
            0x00, 0x00, 0x09,
        ];
        let values = decode_all(&bytes).unwrap();
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_number(), Some(1.0));
        assert_eq!(values[2].property("app").unwrap().as_str(), Some("live"));
    }

    #[test]
    fn rejects_truncation_bad_markers_and_deep_nesting() {
        assert_eq!(
            decode_all(&[0x02, 0x00, 0x05, b'a']),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(decode_all(&[0x11]), Err(Amf0Error::UnsupportedMarker(0x11)));
        // A strict array claiming 4 billion items must fail fast without allocating for them.
        assert_eq!(
            decode_all(&[0x0a, 0xff, 0xff, 0xff, 0xff]),
            Err(Amf0Error::Truncated)
        );
        let mut deep = vec![];
        for _ in 0..100 {
            deep.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
    }
}
