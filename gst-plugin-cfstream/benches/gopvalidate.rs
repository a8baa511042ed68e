//! Cost per access unit of `gopvalidate` on 1080p H.264: the bitstream inspection alone, and the
//! element in a `gst_check::Harness` (passthrough, including GStreamer's pad and queue overhead).
//! Also prints the Rust heap allocations per access unit in steady state (target: none).
//!
//! `cargo bench -p gst-plugin-cfstream --bench gopvalidate`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use cfstream_proto::h264::{Framing, inspect_access_unit};
use criterion::{Criterion, criterion_group, criterion_main};

/// Counts heap allocations made by Rust code (GStreamer's own C allocations are not seen).
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const IDR_SLICE_BYTES: usize = 100_000;
const DELTA_SLICE_BYTES: usize = 20_000;
/// 4 s at 30 fps: IDR, then P B B repeated.
const GOP_LENGTH: usize = 120;

/// Pseudo-random slice data with emulation prevention, as an encoder would write it.
fn slice_data(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    let mut data = Vec::with_capacity(len + len / 64);
    while data.len() < len {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let byte = (state >> 24) as u8;
        if data.ends_with(&[0, 0]) && byte <= 3 {
            data.push(3);
        }
        data.push(byte);
    }
    data
}

#[derive(Clone, Copy)]
enum Picture {
    Idr,
    P,
    B,
}

/// NAL units of one 1080p access unit: AUD, SPS/PPS for the IDR, an SEI (buffering period and
/// picture timing), one slice with a real header.
fn nal_units(picture: Picture, seed: u32) -> Vec<Vec<u8>> {
    let mut units = vec![vec![0x09, 0xf0]];
    if let Picture::Idr = picture {
        units.push(vec![
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00,
            0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
        ]);
        units.push(vec![0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);
    }
    units.push(vec![
        0x06, 0x00, 0x01, 0xc0, 0x01, 0x04, 0x00, 0x00, 0x03, 0x00, 0x10, 0x80,
    ]);
    // Slice headers: ue(first_mb_in_slice = 0), ue(slice_type), ue(pic_parameter_set_id = 0).
    let (header, slice_start, size) = match picture {
        Picture::Idr => (0x65, 0x88, IDR_SLICE_BYTES),
        Picture::P => (0x41, 0x9a, DELTA_SLICE_BYTES),
        Picture::B => (0x01, 0x9e, DELTA_SLICE_BYTES),
    };
    let mut slice = vec![header, slice_start];
    slice.extend(slice_data(size, seed));
    units.push(slice);
    units
}

fn frame(picture: Picture, seed: u32, framing: Framing) -> Vec<u8> {
    let mut au = Vec::new();
    for unit in nal_units(picture, seed) {
        match framing {
            Framing::ByteStream => au.extend([0, 0, 0, 1]),
            Framing::LengthPrefixed { .. } => au.extend((unit.len() as u32).to_be_bytes()),
        }
        au.extend(unit);
    }
    au
}

fn gop(framing: Framing) -> Vec<Vec<u8>> {
    (0..GOP_LENGTH)
        .map(|i| {
            let picture = match i % 3 {
                _ if i == 0 => Picture::Idr,
                0 => Picture::P,
                _ => Picture::B,
            };
            frame(picture, i as u32, framing)
        })
        .collect()
}

fn bench_inspect(c: &mut Criterion) {
    for (name, framing) in [
        ("byte-stream", Framing::ByteStream),
        ("avc", Framing::LengthPrefixed { length_size: 4 }),
    ] {
        let aus = gop(framing);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for au in &aus {
            black_box(inspect_access_unit(au, framing).unwrap());
        }
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        println!("inspect_access_unit ({name}): {allocations} allocations for {GOP_LENGTH} AUs");
        let mut next = aus.iter().cycle();
        c.bench_function(&format!("inspect_access_unit 1080p {name} (per AU)"), |b| {
            b.iter(|| inspect_access_unit(black_box(next.next().unwrap()), framing))
        });
    }
}

/// Pushes 1080p AUs through `element` in a Harness; `identity` (also a passthrough
/// BaseTransform) gives the Harness's own cost, the difference is `gopvalidate`'s.
fn bench_element(c: &mut Criterion, element: &str) {
    let mut harness = gst_check::Harness::new(element);
    harness.set_src_caps_str(
        "video/x-h264, stream-format=byte-stream, alignment=au, width=1920, height=1080, \
         framerate=30/1",
    );
    let frame_ns = 1_000_000_000 / 30;
    let mut buffers: Vec<gst::Buffer> = gop(Framing::ByteStream)
        .into_iter()
        .map(gst::Buffer::from_mut_slice)
        .collect();
    for (i, buffer) in buffers.iter_mut().enumerate() {
        if i != 0 {
            buffer.make_mut().set_flags(gst::BufferFlags::DELTA_UNIT);
        }
    }
    let mut index = 0u64;
    // Pushes the next AU with a rising PTS and takes it back out of the harness: the buffer is
    // unique again when re-used, so setting its PTS copies nothing.
    let mut push = move |harness: &mut gst_check::Harness| {
        let slot = (index % GOP_LENGTH as u64) as usize;
        let mut buffer = std::mem::replace(&mut buffers[slot], gst::Buffer::new());
        buffer
            .make_mut()
            .set_pts(gst::ClockTime::from_nseconds(index * frame_ns));
        index += 1;
        harness.push(buffer).unwrap();
        buffers[slot] = harness.pull().unwrap();
    };
    for _ in 0..GOP_LENGTH {
        push(&mut harness);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..GOP_LENGTH {
        push(&mut harness);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!("{element} in a Harness: {allocations} Rust allocations for {GOP_LENGTH} AUs");
    c.bench_function(
        &format!("{element} Harness push+pull 1080p (per AU)"),
        |b| b.iter(|| push(&mut harness)),
    );
}

fn bench_elements(c: &mut Criterion) {
    gst::init().unwrap();
    gstcfstream::plugin_register_static().unwrap();
    bench_element(c, "identity");
    bench_element(c, "gopvalidate");
}

criterion_group!(benches, bench_inspect, bench_elements);
criterion_main!(benches);
