//! FLV tags to MPEG-TS, for TS viewers of an FLV input: the AVC access units get Annex B start
//! codes (and the avcC's SPS/PPS on keyframes), the raw AAC frames ADTS headers, and both go into
//! the TS writer the HLS segments use. PAT and PMT precede every keyframe, where viewers start.

use cfstream_proto::flv::{self, StreamHeader};
use cfstream_proto::h264::{AvcConfig, to_annex_b};

use super::queue::FlvTag;
use crate::hls::adts::AdtsConfig;
use crate::hls::ts::{Streams, TsMuxer, timestamp_90khz};

/// Bytes before the coded data of an AVC video tag: frame type and codec, packet type,
/// composition time (24 bits).
const AVC_TAG_HEADER: usize = 5;
/// Bytes before the raw frame of an AAC audio tag: format byte, packet type.
const AAC_TAG_HEADER: usize = 2;
/// PAT and PMT are repeated this often in a stream without video (no keyframes to put them at).
const AUDIO_ONLY_TABLE_INTERVAL: u32 = 40;

pub(super) struct FlvToTs {
    muxer: TsMuxer,
    avc: Option<AvcConfig>,
    adts: Option<AdtsConfig>,
    annex_b: Vec<u8>,
    frame: Vec<u8>,
    audio_since_tables: u32,
}

impl Default for FlvToTs {
    fn default() -> Self {
        FlvToTs {
            muxer: TsMuxer::new(Streams {
                video: false,
                audio: false,
            }),
            avc: None,
            adts: None,
            annex_b: Vec::new(),
            frame: Vec::new(),
            audio_since_tables: AUDIO_ONLY_TABLE_INTERVAL,
        }
    }
}

impl FlvToTs {
    /// Takes a sequence header's codec configuration (a broken one leaves that stream out).
    pub(super) fn set_header(&mut self, header: StreamHeader, body: &[u8]) {
        match header {
            StreamHeader::VideoConfig => {
                self.avc = body
                    .get(AVC_TAG_HEADER..)
                    .and_then(|avcc| AvcConfig::parse(avcc).ok());
            }
            StreamHeader::AudioConfig => {
                self.adts = body
                    .get(AAC_TAG_HEADER..)
                    .and_then(|asc| AdtsConfig::from_audio_specific_config(asc, false).ok());
            }
            StreamHeader::Metadata => {}
        }
        self.muxer.set_streams(Streams {
            video: self.avc.is_some(),
            audio: self.adts.is_some(),
        });
    }

    /// Appends the TS packets of one tag to `out` (nothing for headers, script data, or frames
    /// whose configuration is unknown or that cannot be converted).
    pub(super) fn convert(&mut self, tag: &FlvTag, keyframe: bool, out: &mut Vec<u8>) {
        let dts_ns = i64::from(tag.timestamp_ms) * 1_000_000;
        match tag.tag_type {
            flv::TAG_VIDEO if flv::is_video_frame(tag.tag_type, &tag.body) => {
                self.video(tag, dts_ns, keyframe, out);
            }
            flv::TAG_AUDIO if tag.body.get(1) == Some(&1) => self.audio(tag, dts_ns, out),
            _ => {}
        }
    }

    fn video(&mut self, tag: &FlvTag, dts_ns: i64, keyframe: bool, out: &mut Vec<u8>) {
        let Some(avc) = &self.avc else { return };
        let Some(au) = tag.body.get(AVC_TAG_HEADER..) else {
            return;
        };
        let sets = keyframe.then_some(&avc.parameter_sets[..]);
        if to_annex_b(au, avc.length_size, sets, &mut self.annex_b).is_err() {
            return;
        }
        // Composition time: signed 24 bits, milliseconds.
        let cts = i32::from_be_bytes([0, tag.body[2], tag.body[3], tag.body[4]]) << 8 >> 8;
        let pts_ns = dts_ns + i64::from(cts) * 1_000_000;
        if keyframe {
            // Tables first: a viewer starting here needs them before any PES.
            self.muxer.write_tables(out);
            self.muxer.flush_audio(out);
        }
        let (pts, dts) = (timestamp_90khz(pts_ns), timestamp_90khz(dts_ns));
        self.muxer
            .write_video(out, &self.annex_b, pts, dts, keyframe);
    }

    fn audio(&mut self, tag: &FlvTag, pts_ns: i64, out: &mut Vec<u8>) {
        let Some(adts) = &self.adts else { return };
        let Some(raw) = tag.body.get(AAC_TAG_HEADER..) else {
            return;
        };
        if adts.write_frame(raw, &mut self.frame).is_err() {
            return;
        }
        if self.avc.is_none() {
            self.audio_since_tables += 1;
            if self.audio_since_tables >= AUDIO_ONLY_TABLE_INTERVAL {
                self.audio_since_tables = 0;
                self.muxer.write_tables(out);
                self.muxer.flush_audio(out);
            }
        }
        self.muxer
            .write_audio(out, &self.frame, timestamp_90khz(pts_ns));
    }
}
