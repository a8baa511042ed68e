//! The query of `GET /{id}/thumbnails/thumbnail.jpg`, as Cloudflare spells it: `time` (an
//! offset such as `68s`, `1.5s`, `2m`, `5m2s`, `1h2m` or plain seconds), `width`, `height`
//! (pixels, 1 to [`MAX_SIZE`]) and `fit` (`crop`, the default, `clip`, `scale` or `fill`).

use std::time::Duration;

/// Largest width or height served: a thumbnail is not a frame export.
pub const MAX_SIZE: u32 = 2000;

/// What to do when the asked box does not have the frame's aspect ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Cover the box and cut what overflows it.
    #[default]
    Crop,
    /// Keep the whole frame, shrunk to fit inside the box (the image is smaller than the box).
    Clip,
    /// Stretch the frame to the box.
    Scale,
    /// Keep the whole frame inside the box and fill the rest with black.
    Fill,
}

/// A parsed thumbnail query.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Request {
    /// From the recording's start; `None`: the default frame.
    pub time: Option<Duration>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
}

fn bad(name: &str, value: &str, expected: &str) -> String {
    format!("query parameter {name}={value:?}: expected {expected}")
}

impl Request {
    /// Reads the raw query string; unknown parameters are ignored, a known one with a value it
    /// cannot have is an error naming it.
    pub fn parse(query: &str) -> Result<Request, String> {
        let mut request = Request::default();
        let pairs = query.split('&').filter(|p| !p.is_empty());
        for (key, value) in pairs.map(|p| p.split_once('=').unwrap_or((p, ""))) {
            match key {
                "time" if value.is_empty() => request.time = None,
                "time" => {
                    let time = crate::timefmt::parse_offset(value)
                        .ok_or_else(|| bad(key, value, "a time such as 1.5s, 68s, 2m or 5m2s"))?;
                    request.time = Some(time);
                }
                "width" => request.width = Some(parse_size(key, value)?),
                "height" => request.height = Some(parse_size(key, value)?),
                "fit" => request.fit = parse_fit(value)?,
                _ => {}
            }
        }
        Ok(request)
    }
}

fn parse_size(key: &str, value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(size @ 1..=MAX_SIZE) => Ok(size),
        _ => Err(bad(key, value, &format!("pixels from 1 to {MAX_SIZE}"))),
    }
}

fn parse_fit(value: &str) -> Result<Fit, String> {
    match value {
        "crop" | "" => Ok(Fit::Crop),
        "clip" => Ok(Fit::Clip),
        "scale" => Ok(Fit::Scale),
        "fill" => Ok(Fit::Fill),
        _ => Err(bad("fit", value, "crop, clip, scale or fill")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_or_name_the_bad_parameter() {
        let parsed = Request::parse("time=3s&width=160&height=90&fit=fill&other=1").unwrap();
        assert_eq!(
            parsed,
            Request {
                time: Some(Duration::from_secs(3)),
                width: Some(160),
                height: Some(90),
                fit: Fit::Fill,
            }
        );
        assert_eq!(Request::parse("").unwrap(), Request::default());
        assert_eq!(Request::parse("time=&fit=").unwrap(), Request::default());
        for (query, named) in [
            ("width=0", "width"),
            ("height=2001", "height"),
            ("width=abc", "width"),
            ("height=-5", "height"),
            ("width=1.5", "width"),
            ("fit=stretch", "fit"),
            ("time=later", "time"),
        ] {
            let error = Request::parse(query).unwrap_err();
            assert!(error.contains(named), "{query}: {error}");
        }
    }
}
