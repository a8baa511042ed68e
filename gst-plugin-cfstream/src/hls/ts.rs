//! MPEG-TS (ISO/IEC 13818-1) muxer for HLS segments: one program with an H.264 stream
//! (stream type 0x1B, Annex B) and/or an AAC ADTS stream (0x0F).
//!
//! Every segment starts with PAT and PMT so that it decodes on its own. The PCR is carried on the
//! video PID (the audio PID when there is no video) in the first packet of every PES. Timestamps
//! are 90 kHz and wrap at 33 bits; they are shifted by [`TIMESTAMP_DELAY`] so that the PCR, which
//! is the undelayed time, always precedes the decoding times (as nginx-rtmp and ffmpeg do).

use memchr::memmem;

pub const PACKET_SIZE: usize = 188;
const PAYLOAD_SIZE: usize = PACKET_SIZE - 4;
const SYNC_BYTE: u8 = 0x47;

pub const PAT_PID: u16 = 0x0000;
pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x0100;
pub const AUDIO_PID: u16 = 0x0101;
const PROGRAM_NUMBER: u16 = 1;
pub const STREAM_TYPE_H264: u8 = 0x1B;
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;

const TIMESTAMP_MASK: u64 = (1 << 33) - 1;
/// 0.7 s, the decoder buffering the PCR grants ahead of every decoding time.
pub const TIMESTAMP_DELAY: u64 = 63_000;

/// Audio frames gathered into one PES: one frame per PES would spend two TS packets on a
/// ~200-byte AAC frame.
const AUDIO_FRAMES_PER_PES: usize = 8;
const AUDIO_PES_MAX_BYTES: usize = 16 * 1024;

const NAL_AUD: u8 = 9;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
/// Access unit delimiter, primary_pic_type 7 (any slice type).
const AUD: [u8; 6] = [0, 0, 0, 1, NAL_AUD, 0xF0];
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Converts a time in nanoseconds (may be negative, e.g. a DTS before the first PTS) to a 33-bit
/// 90 kHz PTS/DTS value, including [`TIMESTAMP_DELAY`].
pub fn timestamp_90khz(ns: i64) -> u64 {
    let ticks = (ns as i128 * 9).div_euclid(100_000) + TIMESTAMP_DELAY as i128;
    (ticks.rem_euclid(1 << 33)) as u64
}

/// Which elementary streams the program of a segment carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streams {
    pub video: bool,
    pub audio: bool,
}

impl Streams {
    fn pcr_pid(self) -> u16 {
        if self.video { VIDEO_PID } else { AUDIO_PID }
    }
}

/// Writes TS packets into a caller-provided byte buffer.
pub struct TsMuxer {
    streams: Streams,
    pmt_version: u8,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    /// Set the discontinuity_indicator on the next packet of each PID carrying the PCR.
    discontinuity: bool,
    sps: Vec<u8>,
    pps: Vec<u8>,
    audio_pending: Vec<u8>,
    audio_pending_frames: usize,
    audio_pending_pts: u64,
}

impl TsMuxer {
    pub fn new(streams: Streams) -> Self {
        TsMuxer {
            streams,
            pmt_version: 0,
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            discontinuity: false,
            sps: Vec::new(),
            pps: Vec::new(),
            audio_pending: Vec::new(),
            audio_pending_frames: 0,
            audio_pending_pts: 0,
        }
    }

    pub fn streams(&self) -> Streams {
        self.streams
    }

    /// Changes the program's streams from the next [`Self::write_tables`] on.
    pub fn set_streams(&mut self, streams: Streams) {
        if streams != self.streams {
            self.streams = streams;
            self.pmt_version = (self.pmt_version + 1) & 0x1F;
        }
    }

    /// Marks the timeline as discontinuous (a gap or a jump): the next PCR packet says so.
    pub fn mark_discontinuity(&mut self) {
        self.discontinuity = true;
    }

    /// Writes PAT and PMT; called at the start of every segment.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        let mut pat = Vec::with_capacity(16);
        pat.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
        pat.extend_from_slice(&(0xE000 | PMT_PID).to_be_bytes());
        let cc = next_cc(&mut self.cc_pat);
        write_section_packet(out, PAT_PID, cc, 0x00, 1, 0, &pat);

        let mut pmt = Vec::with_capacity(32);
        pmt.extend_from_slice(&(0xE000 | self.streams.pcr_pid()).to_be_bytes());
        pmt.extend_from_slice(&0xF000u16.to_be_bytes()); // program_info_length 0
        for (present, stream_type, pid) in [
            (self.streams.video, STREAM_TYPE_H264, VIDEO_PID),
            (self.streams.audio, STREAM_TYPE_AAC_ADTS, AUDIO_PID),
        ] {
            if present {
                pmt.push(stream_type);
                pmt.extend_from_slice(&(0xE000 | pid).to_be_bytes());
                pmt.extend_from_slice(&0xF000u16.to_be_bytes()); // ES_info_length 0
            }
        }
        let cc = next_cc(&mut self.cc_pmt);
        write_section_packet(
            out,
            PMT_PID,
            cc,
            0x02,
            PROGRAM_NUMBER,
            self.pmt_version,
            &pmt,
        );
    }

    /// Writes one H.264 access unit (Annex B) as a PES. An access unit delimiter is put in front
    /// when missing; a keyframe lacking SPS or PPS gets the last ones seen.
    pub fn write_video(&mut self, out: &mut Vec<u8>, au: &[u8], pts: u64, dts: u64, key: bool) {
        let first_nal = first_nal_type(au);
        let (au_head, au_tail) = match first_nal {
            Some((NAL_AUD, payload_start)) => au.split_at(aud_end(au, payload_start)),
            _ => (&[][..], au),
        };
        let aud: &[u8] = if first_nal.map(|(t, _)| t) == Some(NAL_AUD) {
            &[]
        } else {
            &AUD
        };

        let mut parameter_sets = Vec::new();
        if key {
            let (has_sps, has_pps) = self.cache_parameter_sets(au);
            let cached = !self.sps.is_empty() && !self.pps.is_empty();
            if cached && !(has_sps && has_pps) {
                parameter_sets.extend_from_slice(&START_CODE);
                parameter_sets.extend_from_slice(&self.sps);
                parameter_sets.extend_from_slice(&START_CODE);
                parameter_sets.extend_from_slice(&self.pps);
            }
        }

        let mut header = [0u8; 19];
        let header_len = pes_header(&mut header, 0xE0, pts, (dts != pts).then_some(dts), 0);
        let parts = [
            &header[..header_len],
            aud,
            au_head,
            &parameter_sets,
            au_tail,
        ];
        let pcr = dts.wrapping_sub(TIMESTAMP_DELAY) & TIMESTAMP_MASK;
        let pcr = (self.streams.pcr_pid() == VIDEO_PID).then_some(pcr);
        let mut cc = self.cc_video;
        self.write_pes(out, VIDEO_PID, &mut cc, &parts, pcr, key);
        self.cc_video = cc;
    }

    /// Queues one ADTS frame; frames are written as PES in groups (see [`Self::flush_audio`]).
    pub fn write_audio(&mut self, out: &mut Vec<u8>, adts: &[u8], pts: u64) {
        if self.audio_pending_frames > 0
            && self.audio_pending.len() + adts.len() > AUDIO_PES_MAX_BYTES
        {
            self.flush_audio(out);
        }
        if self.audio_pending_frames == 0 {
            self.audio_pending_pts = pts;
        }
        self.audio_pending.extend_from_slice(adts);
        self.audio_pending_frames += 1;
        if self.audio_pending_frames >= AUDIO_FRAMES_PER_PES {
            self.flush_audio(out);
        }
    }

    /// Writes the queued audio frames as one PES; must be called before a segment ends.
    pub fn flush_audio(&mut self, out: &mut Vec<u8>) {
        if self.audio_pending_frames == 0 {
            return;
        }
        let pts = self.audio_pending_pts;
        let payload = std::mem::take(&mut self.audio_pending);
        let mut header = [0u8; 19];
        let header_len = pes_header(&mut header, 0xC0, pts, None, payload.len());
        let audio_only = self.streams.pcr_pid() == AUDIO_PID;
        let pcr = audio_only.then_some(pts.wrapping_sub(TIMESTAMP_DELAY) & TIMESTAMP_MASK);
        let mut cc = self.cc_audio;
        self.write_pes(
            out,
            AUDIO_PID,
            &mut cc,
            &[&header[..header_len], &payload],
            pcr,
            audio_only,
        );
        self.cc_audio = cc;
        self.audio_pending = payload;
        self.audio_pending.clear();
        self.audio_pending_frames = 0;
    }

    /// Remembers the SPS and PPS of a keyframe; returns whether the access unit has each.
    fn cache_parameter_sets(&mut self, au: &[u8]) -> (bool, bool) {
        let (mut has_sps, mut has_pps) = (false, false);
        for nal in nal_units(au) {
            match nal.first().map(|b| b & 0x1F) {
                Some(NAL_SPS) => {
                    has_sps = true;
                    self.sps.clear();
                    self.sps.extend_from_slice(nal);
                }
                Some(NAL_PPS) => {
                    has_pps = true;
                    self.pps.clear();
                    self.pps.extend_from_slice(nal);
                }
                _ => {}
            }
        }
        (has_sps, has_pps)
    }

    fn write_pes(
        &mut self,
        out: &mut Vec<u8>,
        pid: u16,
        cc: &mut u8,
        parts: &[&[u8]],
        pcr: Option<u64>,
        random_access: bool,
    ) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        out.reserve((total / PAYLOAD_SIZE + 2) * PACKET_SIZE);
        let mut cursor = PartsCursor {
            parts,
            index: 0,
            offset: 0,
        };
        let mut remaining = total;
        let mut first = true;
        while remaining > 0 {
            let discontinuity = first && pcr.is_some() && std::mem::take(&mut self.discontinuity);
            let mut flags = 0u8;
            if discontinuity {
                flags |= 0x80;
            }
            if first && random_access {
                flags |= 0x40;
            }
            let pcr = if first { pcr } else { None };
            if pcr.is_some() {
                flags |= 0x10;
            }
            // Adaptation field: length byte + flags byte + PCR, when any flag is set.
            let mut field_len = if flags != 0 {
                2 + if pcr.is_some() { 6 } else { 0 }
            } else {
                0
            };
            let room = PAYLOAD_SIZE - field_len;
            let payload_len = remaining.min(room);
            if payload_len < room {
                field_len = PAYLOAD_SIZE - payload_len; // stuffing fills the packet
            }

            out.push(SYNC_BYTE);
            out.push(if first { 0x40 } else { 0 } | (pid >> 8) as u8);
            out.push(pid as u8);
            let control = if field_len > 0 { 0x30 } else { 0x10 };
            out.push(control | next_cc(cc));
            if field_len > 0 {
                out.push((field_len - 1) as u8);
                if field_len > 1 {
                    out.push(flags);
                    if let Some(pcr) = pcr {
                        push_pcr(out, pcr);
                    }
                    let written = 2 + if pcr.is_some() { 6 } else { 0 };
                    out.resize(out.len() + field_len.saturating_sub(written), 0xFF);
                }
            }
            cursor.copy_to(out, payload_len);
            remaining -= payload_len;
            first = false;
        }
    }
}

fn next_cc(cc: &mut u8) -> u8 {
    let value = *cc;
    *cc = (*cc + 1) & 0x0F;
    value
}

struct PartsCursor<'a> {
    parts: &'a [&'a [u8]],
    index: usize,
    offset: usize,
}

impl PartsCursor<'_> {
    fn copy_to(&mut self, out: &mut Vec<u8>, mut len: usize) {
        while len > 0 {
            let part = self.parts[self.index];
            let n = (part.len() - self.offset).min(len);
            out.extend_from_slice(&part[self.offset..self.offset + n]);
            self.offset += n;
            len -= n;
            if self.offset == part.len() {
                self.index += 1;
                self.offset = 0;
            }
        }
    }
}

fn push_pcr(out: &mut Vec<u8>, base: u64) {
    // 33-bit base, 6 reserved bits, 9-bit extension (0).
    out.extend_from_slice(&[
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) << 7) as u8 | 0x7E,
        0,
    ]);
}

/// Writes a PES header into `buf`; returns its length. `payload_len` 0 means unbounded (video).
fn pes_header(
    buf: &mut [u8; 19],
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: usize,
) -> usize {
    let optional_len = if dts.is_some() { 10 } else { 5 };
    buf[..4].copy_from_slice(&[0, 0, 1, stream_id]);
    let packet_len = if payload_len == 0 {
        0
    } else {
        3 + optional_len + payload_len
    };
    let packet_len = if packet_len > 0xFFFF {
        0
    } else {
        packet_len as u16
    };
    buf[4..6].copy_from_slice(&packet_len.to_be_bytes());
    buf[6] = 0x84; // marker bits '10', data_alignment_indicator
    buf[7] = if dts.is_some() { 0xC0 } else { 0x80 };
    buf[8] = optional_len as u8;
    match dts {
        Some(dts) => {
            encode_timestamp(&mut buf[9..14], 0x3, pts);
            encode_timestamp(&mut buf[14..19], 0x1, dts);
        }
        None => encode_timestamp(&mut buf[9..14], 0x2, pts),
    }
    9 + optional_len
}

fn encode_timestamp(buf: &mut [u8], prefix: u8, ts: u64) {
    let ts = ts & TIMESTAMP_MASK;
    buf[0] = (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1;
    buf[1] = (ts >> 22) as u8;
    buf[2] = (((ts >> 15) as u8 & 0x7F) << 1) | 1;
    buf[3] = (ts >> 7) as u8;
    buf[4] = ((ts as u8 & 0x7F) << 1) | 1;
}

/// Writes one PSI section (PAT or PMT) in a single packet; `body` follows the section's
/// last_section_number byte.
fn write_section_packet(
    out: &mut Vec<u8>,
    pid: u16,
    cc: u8,
    table_id: u8,
    id: u16,
    version: u8,
    body: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&[SYNC_BYTE, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | cc, 0]);
    let section_start = out.len();
    let section_len = 5 + body.len() + 4; // after the length field: header, body, CRC
    out.push(table_id);
    out.extend_from_slice(&(0xB000 | section_len as u16).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.push(0xC1 | (version << 1)); // current_next_indicator
    out.extend_from_slice(&[0, 0]); // section_number, last_section_number
    out.extend_from_slice(body);
    let crc = crc32_mpeg2(&out[section_start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.resize(start + PACKET_SIZE, 0xFF);
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, no final xor).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= (byte as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The type of the first NAL unit and the offset of its header byte.
fn first_nal_type(au: &[u8]) -> Option<(u8, usize)> {
    let zeros = au.iter().take_while(|&&b| b == 0).count();
    if zeros >= 2 && au.get(zeros) == Some(&1) {
        au.get(zeros + 1).map(|b| (b & 0x1F, zeros + 1))
    } else {
        None
    }
}

/// End of an access unit delimiter NAL whose header is at `header`: the next start code.
fn aud_end(au: &[u8], header: usize) -> usize {
    match memmem::find(&au[header..], &[0, 0, 1]) {
        Some(pos) => {
            let mut end = header + pos;
            // A four-byte start code's leading zero belongs to the next NAL unit.
            if end > header && au[end - 1] == 0 {
                end -= 1;
            }
            end
        }
        None => au.len(),
    }
}

/// The NAL units of an Annex B byte stream, without start codes (trailing zeros trimmed).
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = memmem::find_iter(data, &[0, 0, 1])
        .map(|p| p + 3)
        .peekable();
    std::iter::from_fn(move || {
        let start = starts.next()?;
        let end = starts.peek().map(|next| next - 3).unwrap_or(data.len());
        let mut nal = &data[start..end.max(start)];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        Some(nal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `data` into packets and checks size, sync byte and per-PID continuity counters;
    /// returns (pid, payload_unit_start, adaptation field, payload) per packet.
    fn packets(data: &[u8]) -> Vec<(u16, bool, Vec<u8>, Vec<u8>)> {
        assert_eq!(data.len() % PACKET_SIZE, 0, "whole packets only");
        let mut ccs = std::collections::HashMap::new();
        data.chunks(PACKET_SIZE)
            .map(|p| {
                assert_eq!(p[0], SYNC_BYTE);
                let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
                let control = (p[3] >> 4) & 3;
                let cc = p[3] & 0x0F;
                if let Some(prev) = ccs.insert(pid, cc) {
                    assert_eq!(cc, (prev + 1) & 0x0F, "continuity counter of pid {pid:#x}");
                }
                let (field, payload) = if control == 3 {
                    let len = p[4] as usize;
                    (p[4..5 + len].to_vec(), p[5 + len..].to_vec())
                } else {
                    (Vec::new(), p[4..].to_vec())
                };
                (pid, p[1] & 0x40 != 0, field, payload)
            })
            .collect()
    }

    fn decode_timestamp(b: &[u8]) -> u64 {
        (((b[0] >> 1) & 7) as u64) << 30
            | (b[1] as u64) << 22
            | ((b[2] >> 1) as u64) << 15
            | (b[3] as u64) << 7
            | (b[4] >> 1) as u64
    }

    fn pes_payloads(pkts: &[(u16, bool, Vec<u8>, Vec<u8>)], pid: u16) -> Vec<Vec<u8>> {
        let mut pes: Vec<Vec<u8>> = Vec::new();
        for (p, start, _, payload) in pkts.iter().filter(|p| p.0 == pid) {
            assert_eq!(*p, pid);
            if *start {
                pes.push(Vec::new());
            }
            pes.last_mut()
                .expect("PES starts with PUSI")
                .extend_from_slice(payload);
        }
        pes
    }

    #[test]
    fn tables_have_valid_crc_and_list_streams() {
        let mut mux = TsMuxer::new(Streams {
            video: true,
            audio: true,
        });
        let mut out = Vec::new();
        mux.write_tables(&mut out);
        let pkts = packets(&out);
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[0].0, PAT_PID);
        assert_eq!(pkts[1].0, PMT_PID);
        for (_, start, _, payload) in &pkts {
            assert!(start);
            let section = &payload[1..];
            let len = (u16::from_be_bytes([section[1], section[2]]) & 0x0FFF) as usize;
            assert_eq!(
                crc32_mpeg2(&section[..3 + len]),
                0,
                "CRC over section incl. CRC is 0"
            );
        }
        let pmt = &pkts[1].3[1..];
        assert_eq!(
            u16::from_be_bytes([pmt[8], pmt[9]]) & 0x1FFF,
            VIDEO_PID,
            "PCR PID"
        );
        assert_eq!(pmt[12], STREAM_TYPE_H264);
        assert_eq!(pmt[17], STREAM_TYPE_AAC_ADTS);

        let mut audio_only = TsMuxer::new(Streams {
            video: false,
            audio: true,
        });
        let mut out = Vec::new();
        audio_only.write_tables(&mut out);
        let pmt = &packets(&out)[1].3[1..];
        assert_eq!(u16::from_be_bytes([pmt[8], pmt[9]]) & 0x1FFF, AUDIO_PID);
        assert_eq!(pmt[12], STREAM_TYPE_AAC_ADTS);
    }

    #[test]
    fn video_pes_has_aud_parameter_sets_timestamps_and_pcr() {
        let mut mux = TsMuxer::new(Streams {
            video: true,
            audio: false,
        });
        let mut out = Vec::new();
        let sps = [0x67, 0x42, 0x00, 0x1E, 0xAB];
        let pps = [0x68, 0xCE, 0x38, 0x80];
        let mut idr_with_sets = Vec::new();
        for nal in [&sps[..], &pps[..], &[0x65; 1000][..]] {
            idr_with_sets.extend_from_slice(&START_CODE);
            idr_with_sets.extend_from_slice(nal);
        }
        mux.write_video(&mut out, &idr_with_sets, 93_000, 90_000, true);
        let idr_alone = [&START_CODE[..], &[0x65; 300][..]].concat();
        mux.write_video(&mut out, &idr_alone, 183_000, 180_000, true);
        let delta = [&AUD[..], &START_CODE[..], &[0x41; 10][..]].concat();
        mux.write_video(&mut out, &delta, 186_000, 186_000, false);

        let pkts = packets(&out);
        let first = &pkts[0];
        assert!(first.1);
        assert_eq!(
            first.2[1] & 0x50,
            0x50,
            "PCR and random_access_indicator on a keyframe"
        );
        let pcr = (first.2[2] as u64) << 25
            | (first.2[3] as u64) << 17
            | (first.2[4] as u64) << 9
            | (first.2[5] as u64) << 1
            | (first.2[6] >> 7) as u64;
        assert_eq!(pcr, 90_000 - TIMESTAMP_DELAY);

        let pes = pes_payloads(&pkts, VIDEO_PID);
        assert_eq!(pes.len(), 3);
        assert_eq!(&pes[0][..4], &[0, 0, 1, 0xE0]);
        assert_eq!(pes[0][7], 0xC0, "PTS and DTS");
        assert_eq!(decode_timestamp(&pes[0][9..14]), 93_000);
        assert_eq!(decode_timestamp(&pes[0][14..19]), 90_000);
        let types = |es: &[u8]| nal_units(es).map(|n| n[0] & 0x1F).collect::<Vec<_>>();
        assert_eq!(types(&pes[0][19..]), vec![9, 7, 8, 5]);
        assert_eq!(
            types(&pes[1][19..]),
            vec![9, 7, 8, 5],
            "cached SPS/PPS re-inserted"
        );
        assert_eq!(pes[1].len(), 19 + AUD.len() + (4 + 5) + (4 + 4) + (4 + 300));
        assert_eq!(pes[2][7], 0x80, "PTS only when DTS equals PTS");
        assert_eq!(types(&pes[2][14..]), vec![9, 1], "no second AUD");
        let last = pkts.last().unwrap();
        assert_eq!(last.3.len() + last.2.len(), PAYLOAD_SIZE);
        assert!(
            last.2.len() > 100 && last.2[8..].iter().all(|&b| b == 0xFF),
            "PCR, then stuffing"
        );
    }

    #[test]
    fn audio_frames_are_grouped_and_flushed() {
        let mut mux = TsMuxer::new(Streams {
            video: false,
            audio: true,
        });
        let mut out = Vec::new();
        for i in 0..10u64 {
            mux.write_audio(
                &mut out,
                &[0xFF, 0xF1, i as u8, 0, 0, 0, 0],
                1000 + i * 2089,
            );
        }
        mux.flush_audio(&mut out);
        let pkts = packets(&out);
        let pes = pes_payloads(&pkts, AUDIO_PID);
        assert_eq!(pes.len(), 2);
        assert_eq!(&pes[0][..4], &[0, 0, 1, 0xC0]);
        assert_eq!(
            u16::from_be_bytes([pes[0][4], pes[0][5]]) as usize,
            pes[0].len() - 6
        );
        assert_eq!(decode_timestamp(&pes[0][9..14]), 1000);
        assert_eq!(decode_timestamp(&pes[1][9..14]), 1000 + 8 * 2089);
        assert_eq!(pes[1].len(), 14 + 2 * 7);
        assert_eq!(
            pkts[0].2[1] & 0x50,
            0x50,
            "audio-only: PCR and RAI on audio"
        );
    }

    #[test]
    fn one_byte_stuffing_and_exact_fit() {
        for len in [100, 170, 171, 172, 173, 174, 175, 176, 183, 184, 185, 400] {
            let mut mux = TsMuxer::new(Streams {
                video: true,
                audio: false,
            });
            let mut out = Vec::new();
            let au = [&AUD[..], &START_CODE[..], &vec![0x41; len][..]].concat();
            mux.write_video(&mut out, &au, 0, 0, false);
            let pes = pes_payloads(&packets(&out), VIDEO_PID);
            assert_eq!(pes[0].len(), 14 + au.len(), "payload of {len} bytes intact");
        }
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        assert_eq!(timestamp_90khz(0), TIMESTAMP_DELAY);
        assert_eq!(timestamp_90khz(1_000_000_000), 90_000 + TIMESTAMP_DELAY);
        assert_eq!(
            timestamp_90khz(-7_777_777),
            (TIMESTAMP_DELAY as i64 - 700) as u64
        );
        let wrap_ns = ((1u64 << 33) * 100_000).div_ceil(9) as i64;
        assert_eq!(timestamp_90khz(wrap_ns), TIMESTAMP_DELAY);
        let mut buf = [0u8; 5];
        encode_timestamp(&mut buf, 2, TIMESTAMP_MASK);
        assert_eq!(decode_timestamp(&buf), TIMESTAMP_MASK);
    }
}
