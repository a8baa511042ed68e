//! From a frame's size and the asked box to what the encoder does: scale to `scaled`, cut
//! `crop` off its sides, add `pad` of black around it, giving `output`.
//!
//! Only one side asked: the other follows the frame's aspect ratio. Neither: the frame shrunk
//! or grown to fit 640×640 (Cloudflare's default width and height), whole. Both: `fit` says
//! how the frame meets the box.

use super::request::{Fit, MAX_SIZE, Request};

/// Cloudflare's default width and height.
pub const DEFAULT_SIZE: u32 = 640;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

/// Pixels off (crop) or added to (pad) each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sides {
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
}

impl Sides {
    /// `excess` split in two, the odd pixel on the right/bottom.
    fn centered(excess: Size) -> Sides {
        Sides {
            left: excess.width / 2,
            right: excess.width - excess.width / 2,
            top: excess.height / 2,
            bottom: excess.height - excess.height / 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub scaled: Size,
    pub crop: Sides,
    pub pad: Sides,
    pub output: Size,
}

impl Geometry {
    fn plain(size: Size) -> Geometry {
        Geometry {
            scaled: size,
            crop: Sides::default(),
            pad: Sides::default(),
            output: size,
        }
    }
}

/// `frame` scaled by `factor`, each side at least 1 pixel.
fn times(frame: Size, factor: f64) -> Size {
    let side = |n: u32| ((f64::from(n) * factor).round() as u32).max(1);
    Size {
        width: side(frame.width),
        height: side(frame.height),
    }
}

/// The largest size of the frame's aspect ratio inside `bound`.
fn inside(frame: Size, bound: Size) -> Size {
    let factor = (f64::from(bound.width) / f64::from(frame.width))
        .min(f64::from(bound.height) / f64::from(frame.height));
    let size = times(frame, factor);
    Size {
        width: size.width.min(bound.width),
        height: size.height.min(bound.height),
    }
}

/// The smallest size of the frame's aspect ratio covering `bound`.
fn covering(frame: Size, bound: Size) -> Size {
    let factor = (f64::from(bound.width) / f64::from(frame.width))
        .max(f64::from(bound.height) / f64::from(frame.height));
    let size = times(frame, factor);
    Size {
        width: size.width.max(bound.width),
        height: size.height.max(bound.height),
    }
}

fn less(a: Size, b: Size) -> Size {
    Size {
        width: a.width - b.width,
        height: a.height - b.height,
    }
}

/// What to make of a `frame` (its width and height non-zero) for `request`.
pub fn plan(frame: Size, request: &Request) -> Geometry {
    let (width, height) = match (request.width, request.height) {
        (None, None) => {
            let bound = Size {
                width: DEFAULT_SIZE,
                height: DEFAULT_SIZE,
            };
            return Geometry::plain(inside(frame, bound));
        }
        (Some(width), None) => (width, MAX_SIZE),
        (None, Some(height)) => (MAX_SIZE, height),
        (Some(width), Some(height)) => (width, height),
    };
    let bound = Size { width, height };
    if request.width.is_none() || request.height.is_none() {
        return Geometry::plain(inside(frame, bound));
    }
    match request.fit {
        Fit::Scale => Geometry::plain(bound),
        Fit::Clip => Geometry::plain(inside(frame, bound)),
        Fit::Crop => {
            let scaled = covering(frame, bound);
            Geometry {
                scaled,
                crop: Sides::centered(less(scaled, bound)),
                pad: Sides::default(),
                output: bound,
            }
        }
        Fit::Fill => {
            let scaled = inside(frame, bound);
            Geometry {
                scaled,
                crop: Sides::default(),
                pad: Sides::centered(less(bound, scaled)),
                output: bound,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: Size = Size {
        width: 320,
        height: 180,
    };

    fn size(width: u32, height: u32) -> Size {
        Size { width, height }
    }

    fn ask(width: Option<u32>, height: Option<u32>, fit: Fit) -> Geometry {
        plan(
            WIDE,
            &Request {
                width,
                height,
                fit,
                ..Request::default()
            },
        )
    }

    #[test]
    fn a_missing_side_follows_the_aspect_ratio() {
        assert_eq!(ask(None, None, Fit::Crop), Geometry::plain(size(640, 360)));
        let tall = plan(size(180, 320), &Request::default());
        assert_eq!(tall, Geometry::plain(size(360, 640)));
        assert_eq!(
            ask(None, Some(270), Fit::Crop),
            Geometry::plain(size(480, 270))
        );
        assert_eq!(
            ask(Some(160), None, Fit::Fill),
            Geometry::plain(size(160, 90))
        );
        // The derived side stays within the limit: the asked one shrinks instead.
        assert_eq!(
            ask(None, Some(2000), Fit::Crop),
            Geometry::plain(size(2000, 1125))
        );
    }

    #[test]
    fn each_fit_meets_the_box_its_way() {
        let square = |fit| ask(Some(160), Some(160), fit);
        assert_eq!(square(Fit::Scale), Geometry::plain(size(160, 160)));
        assert_eq!(square(Fit::Clip), Geometry::plain(size(160, 90)));
        let crop = square(Fit::Crop);
        assert_eq!(crop.scaled, size(284, 160));
        assert_eq!(
            crop.crop,
            Sides {
                left: 62,
                right: 62,
                top: 0,
                bottom: 0
            }
        );
        assert_eq!(crop.output, size(160, 160));
        let fill = square(Fit::Fill);
        assert_eq!(fill.scaled, size(160, 90));
        assert_eq!(
            fill.pad,
            Sides {
                left: 0,
                right: 0,
                top: 35,
                bottom: 35
            }
        );
        assert_eq!(fill.output, size(160, 160));
    }

    #[test]
    fn outputs_are_never_empty_nor_outside_the_box() {
        let sliver = plan(
            size(2000, 1),
            &Request {
                width: Some(10),
                height: Some(10),
                fit: Fit::Fill,
                ..Request::default()
            },
        );
        assert_eq!(sliver.scaled, size(10, 1));
        assert_eq!(sliver.output, size(10, 10));
        for fit in [Fit::Crop, Fit::Clip, Fit::Scale, Fit::Fill] {
            let g = ask(Some(7), Some(1999), fit);
            let inner = Size {
                width: g.scaled.width - g.crop.left - g.crop.right + g.pad.left + g.pad.right,
                height: g.scaled.height - g.crop.top - g.crop.bottom + g.pad.top + g.pad.bottom,
            };
            assert_eq!(inner, g.output, "{fit:?}");
            assert!(g.output.width <= 7 && g.output.height <= 1999, "{fit:?}");
        }
    }
}
