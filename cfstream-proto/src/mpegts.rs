//! MPEG-TS (ISO/IEC 13818-1) as far as ingest needs it: the program tables (PAT, PMT) that name
//! a stream's codecs, so that an SRT caller sending HEVC, MP3 or anything but H.264 + AAC is
//! refused at its first PMT, as an RTMP publisher is at its first tag; and a count of the video
//! access units that pass.
//!
//! [`ProgramScanner`] takes bytes as they arrive (any split, resynchronising on the sync byte)
//! and holds at most one partial packet and one partial section per table PID.

use std::collections::HashMap;

use crate::flv::{CodecViolation, audio_violation, video_violation};

/// Bytes of a transport stream packet.
pub const PACKET_SIZE: usize = 188;
const SYNC_BYTE: u8 = 0x47;
const PAT_PID: u16 = 0;
const TABLE_PAT: u8 = 0x00;
const TABLE_PMT: u8 = 0x02;
/// A PSI section is at most 1024 bytes (`section_length` ≤ 1021).
const MAX_SECTION: usize = 1024;
/// Programs followed per stream; a PAT naming more is cut to these (a broadcast has one).
const MAX_PROGRAMS: usize = 16;

/// Stream types the rules allow (ISO/IEC 13818-1 table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// AAC with ADTS framing. Cloudflare refuses LATM (0x11) in MPEG-TS.
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
const STREAM_TYPE_PRIVATE_PES: u8 = 0x06;

/// What one elementary stream of a PMT carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carriage {
    H264,
    Aac,
    /// Video the rules refuse, by name.
    OtherVideo(&'static str),
    /// Audio the rules refuse, by name.
    OtherAudio(&'static str),
    /// Neither (metadata, SCTE-35, subtitles, private data): passed along, not checked.
    Data,
}

/// One elementary stream of a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementaryStream {
    pub pid: u16,
    pub stream_type: u8,
    pub carriage: Carriage,
}

impl ElementaryStream {
    /// The violation this stream is, if the codec rules refuse it.
    pub fn violation(&self) -> Option<CodecViolation> {
        match self.carriage {
            Carriage::OtherVideo(name) => Some(video_violation(name)),
            Carriage::OtherAudio(name) => Some(audio_violation(name)),
            Carriage::H264 | Carriage::Aac | Carriage::Data => None,
        }
    }
}

/// Classifies a PMT entry from its stream type and ES descriptors.
pub fn carriage(stream_type: u8, descriptors: &[u8]) -> Carriage {
    use Carriage::*;
    match stream_type {
        STREAM_TYPE_H264 => H264,
        STREAM_TYPE_AAC_ADTS => Aac,
        0x01 => OtherVideo("MPEG-1"),
        0x02 => OtherVideo("MPEG-2"),
        0x10 => OtherVideo("MPEG-4 Visual"),
        0x1F | 0x20 => OtherVideo("H.264 SVC/MVC"),
        0x24 | 0x25 => OtherVideo("HEVC"),
        0x33 => OtherVideo("VVC"),
        0x42 => OtherVideo("AVS"),
        0xD1 => OtherVideo("Dirac"),
        0xEA => OtherVideo("VC-1"),
        0x03 | 0x04 => OtherAudio("MPEG audio (MP2/MP3)"),
        0x11 => OtherAudio("AAC in LATM"),
        0x1C => OtherAudio("MPEG-4 audio without ADTS"),
        0x81 => OtherAudio("AC-3"),
        0x87 => OtherAudio("E-AC-3"),
        0x8A => OtherAudio("DTS"),
        STREAM_TYPE_PRIVATE_PES => private_carriage(descriptors),
        _ => Data,
    }
}

/// A private PES stream names its codec in a descriptor: a registration (format identifier) or
/// DVB's AC-3 / E-AC-3 / DTS descriptors.
fn private_carriage(mut descriptors: &[u8]) -> Carriage {
    while let [tag, length, rest @ ..] = descriptors {
        let Some(body) = rest.get(..usize::from(*length)) else {
            break;
        };
        let named = match (tag, body) {
            (0x05, [a, b, c, d, ..]) => match &[*a, *b, *c, *d] {
                b"HEVC" => Some(Carriage::OtherVideo("HEVC")),
                b"Opus" => Some(Carriage::OtherAudio("Opus")),
                b"AC-3" => Some(Carriage::OtherAudio("AC-3")),
                b"EAC3" => Some(Carriage::OtherAudio("E-AC-3")),
                b"DTS1" | b"DTS2" | b"DTS3" => Some(Carriage::OtherAudio("DTS")),
                _ => None,
            },
            (0x6A, _) => Some(Carriage::OtherAudio("AC-3")),
            (0x7A, _) => Some(Carriage::OtherAudio("E-AC-3")),
            (0x7B, _) => Some(Carriage::OtherAudio("DTS")),
            _ => None,
        };
        if let Some(carriage) = named {
            return carriage;
        }
        descriptors = &rest[usize::from(*length)..];
    }
    Carriage::Data
}

/// What the bytes pushed so far amounted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Video access units (PES packets of the H.264 stream) that started in these bytes.
    pub video_frames: u64,
}

/// Reads a transport stream's program tables as its bytes arrive.
#[derive(Debug, Default)]
pub struct ProgramScanner {
    /// The start of a packet whose rest has not arrived (less than two packets).
    partial: Vec<u8>,
    /// The last packet started where the one before it ended.
    synced: bool,
    /// PMT PIDs named by the PAT.
    pmt_pids: Vec<u16>,
    /// Sections being assembled, by PID.
    sections: HashMap<u16, Vec<u8>>,
    /// The streams of each program's latest PMT, by PMT PID.
    programs: HashMap<u16, Vec<ElementaryStream>>,
    video_pid: Option<u16>,
}

impl ProgramScanner {
    pub fn new() -> ProgramScanner {
        ProgramScanner::default()
    }

    /// Every elementary stream of the programs seen so far.
    pub fn streams(&self) -> impl Iterator<Item = &ElementaryStream> {
        self.programs.values().flatten()
    }

    /// Takes in `bytes`; the first PMT entry the codec rules refuse is an error (the scanner
    /// keeps no state worth continuing with after it).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Progress, CodecViolation> {
        let mut progress = Progress::default();
        let joined;
        let mut data = if self.partial.is_empty() {
            bytes
        } else {
            // Only a stream whose messages split packets (not SRT's 7 packets a message) or
            // one being resynchronised comes here.
            joined = [std::mem::take(&mut self.partial).as_slice(), bytes].concat();
            &joined[..]
        };
        while !data.is_empty() {
            // Out of sync, a sync byte counts only when the next packet starts with one too.
            let confirmed = self.synced || data.get(PACKET_SIZE) == Some(&SYNC_BYTE);
            if data[0] != SYNC_BYTE || (!confirmed && data.len() > PACKET_SIZE) {
                self.synced = false;
                let skip = memchr::memchr(SYNC_BYTE, &data[1..]).map_or(data.len(), |i| i + 1);
                data = &data[skip..];
                continue;
            }
            if data.len() < PACKET_SIZE || !confirmed {
                self.partial.extend_from_slice(data);
                break;
            }
            let (packet, rest) = data.split_at(PACKET_SIZE);
            self.synced = true;
            self.packet(packet, &mut progress)?;
            data = rest;
        }
        Ok(progress)
    }

    fn packet(&mut self, packet: &[u8], progress: &mut Progress) -> Result<(), CodecViolation> {
        let Some(header) = PacketHeader::parse(packet) else {
            return Ok(());
        };
        if Some(header.pid) == self.video_pid && header.unit_start {
            progress.video_frames += 1;
        }
        if header.pid != PAT_PID && !self.pmt_pids.contains(&header.pid) {
            return Ok(());
        }
        let Some(payload) = packet.get(header.payload_offset..) else {
            return Ok(());
        };
        for section in self.assemble(header.pid, header.unit_start, payload) {
            self.section(header.pid, &section)?;
        }
        Ok(())
    }

    /// Complete sections of `pid` found with this packet's payload.
    fn assemble(&mut self, pid: u16, unit_start: bool, payload: &[u8]) -> Vec<Vec<u8>> {
        let mut complete = Vec::new();
        let mut data = payload;
        if unit_start {
            let Some((&pointer, rest)) = data.split_first() else {
                return complete;
            };
            let pointer = usize::from(pointer).min(rest.len());
            // The tail of the section in progress comes before the pointer.
            if let Some(pending) = self.sections.get_mut(&pid) {
                pending.extend_from_slice(&rest[..pointer]);
            }
            complete.extend(self.sections.remove(&pid).filter(|s| section_complete(s)));
            let mut rest = &rest[pointer..];
            // One or more sections start here, until stuffing (0xFF).
            while rest.first().is_some_and(|&b| b != 0xFF) {
                match section_length(rest) {
                    Some(len) if len <= rest.len() => {
                        complete.push(rest[..len].to_vec());
                        rest = &rest[len..];
                    }
                    _ => {
                        self.sections.insert(pid, rest.to_vec());
                        break;
                    }
                }
            }
            return complete;
        }
        if let Some(pending) = self.sections.get_mut(&pid) {
            data = &data[..data.len().min(MAX_SECTION.saturating_sub(pending.len()))];
            pending.extend_from_slice(data);
            if section_complete(pending) {
                complete.extend(self.sections.remove(&pid));
            }
        }
        complete
    }

    fn section(&mut self, pid: u16, section: &[u8]) -> Result<(), CodecViolation> {
        let Some(len) = section_length(section) else {
            return Ok(());
        };
        let section = &section[..len];
        if len < 12 || crc32_mpeg2(section) != 0 {
            return Ok(());
        }
        // table_id, length (2), id (2), version/current (1), section numbers (2) … CRC (4).
        let current = section[5] & 0x01 != 0;
        let body = &section[8..len - 4];
        match section[0] {
            TABLE_PAT if pid == PAT_PID && current => self.pat(body),
            TABLE_PMT if pid != PAT_PID && current => return self.pmt(pid, body),
            _ => {}
        }
        Ok(())
    }

    fn pat(&mut self, body: &[u8]) {
        let pids: Vec<u16> = body
            .chunks_exact(4)
            .filter(|entry| entry[0] != 0 || entry[1] != 0) // program 0: the network PID
            .map(|entry| pid_of(entry[2], entry[3]))
            .take(MAX_PROGRAMS)
            .collect();
        self.programs.retain(|pid, _| pids.contains(pid));
        self.sections
            .retain(|pid, _| *pid == PAT_PID || pids.contains(pid));
        self.pmt_pids = pids;
    }

    fn pmt(&mut self, pmt_pid: u16, body: &[u8]) -> Result<(), CodecViolation> {
        let Some(info_length) = body.get(2..4).map(|b| length_of(b[0], b[1])) else {
            return Ok(());
        };
        let mut entries = body.get(4 + info_length..).unwrap_or_default();
        let mut streams = Vec::new();
        while let [
            stream_type,
            pid_high,
            pid_low,
            info_high,
            info_low,
            rest @ ..,
        ] = entries
        {
            let info_length = length_of(*info_high, *info_low).min(rest.len());
            let stream = ElementaryStream {
                pid: pid_of(*pid_high, *pid_low),
                stream_type: *stream_type,
                carriage: carriage(*stream_type, &rest[..info_length]),
            };
            if let Some(violation) = stream.violation() {
                return Err(violation);
            }
            streams.push(stream);
            entries = &rest[info_length..];
        }
        self.video_pid = streams
            .iter()
            .find(|s| s.carriage == Carriage::H264)
            .map(|s| s.pid);
        self.programs.insert(pmt_pid, streams);
        Ok(())
    }
}

struct PacketHeader {
    pid: u16,
    unit_start: bool,
    payload_offset: usize,
}

impl PacketHeader {
    /// `None` for packets without payload or with the transport error flag.
    fn parse(packet: &[u8]) -> Option<PacketHeader> {
        let (b1, b2, b3) = (packet[1], packet[2], packet[3]);
        if b1 & 0x80 != 0 {
            return None;
        }
        let adaptation = (b3 >> 4) & 0x03;
        let payload_offset = match adaptation {
            0b01 => 4,
            0b11 => 5 + usize::from(packet[4]),
            _ => return None,
        };
        (payload_offset < PACKET_SIZE).then_some(PacketHeader {
            pid: pid_of(b1, b2),
            unit_start: b1 & 0x40 != 0,
            payload_offset,
        })
    }
}

fn pid_of(high: u8, low: u8) -> u16 {
    (u16::from(high & 0x1F) << 8) | u16::from(low)
}

fn length_of(high: u8, low: u8) -> usize {
    (usize::from(high & 0x0F) << 8) | usize::from(low)
}

/// The whole length of the section starting `bytes` (header included), once its header is there.
fn section_length(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..3)?;
    Some((3 + length_of(header[1], header[2])).min(MAX_SECTION))
}

fn section_complete(bytes: &[u8]) -> bool {
    section_length(bytes).is_some_and(|len| bytes.len() >= len)
}

/// CRC-32/MPEG-2 of `bytes`; 0 over a section including its CRC means it is intact.
pub fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte) << 24;
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

/// Transport stream packets carrying a PAT naming one program with its PMT on `pmt_pid`, and
/// that PMT listing `streams` as `(stream_type, pid, descriptors)`: test streams of any codec
/// without an encoder for it. Each table must fit in one packet.
pub fn program_packets(pmt_pid: u16, streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
    let mut pat = vec![0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01];
    pat.extend_from_slice(&[0xE0 | (pmt_pid >> 8) as u8, pmt_pid as u8]);
    let mut packets = psi_packet(PAT_PID, &psi_section(TABLE_PAT, &pat));
    packets.extend(psi_packet(pmt_pid, &pmt_section(streams)));
    packets
}

/// A PMT section (CRC included) of one program listing `streams`.
pub fn pmt_section(streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
    let mut pmt = vec![0x00, 0x01, 0xC1, 0x00, 0x00];
    let pcr_pid = streams.first().map_or(0x1FFF, |s| s.1);
    pmt.extend_from_slice(&[0xE0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xF0, 0x00]);
    for (stream_type, pid, descriptors) in streams {
        pmt.extend_from_slice(&[*stream_type, 0xE0 | (pid >> 8) as u8, *pid as u8]);
        pmt.extend_from_slice(&[
            0xF0 | (descriptors.len() >> 8) as u8,
            descriptors.len() as u8,
        ]);
        pmt.extend_from_slice(descriptors);
    }
    psi_section(TABLE_PMT, &pmt)
}

/// A section of `table_id` whose bytes after the length field are `rest`, with its CRC.
fn psi_section(table_id: u8, rest: &[u8]) -> Vec<u8> {
    let mut section = vec![table_id, 0xB0, 0];
    section.extend_from_slice(rest);
    let length = section.len() - 3 + 4;
    section[1] |= (length >> 8) as u8;
    section[2] = length as u8;
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

/// One packet starting and holding all of `section`.
fn psi_packet(pid: u16, section: &[u8]) -> Vec<u8> {
    assert!(
        section.len() <= PACKET_SIZE - 5,
        "section too long for one packet"
    );
    let mut packet = vec![SYNC_BYTE, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0x00];
    packet.extend_from_slice(section);
    packet.resize(PACKET_SIZE, 0xFF);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{ERR_UNSUPPORTED_AUDIO_CODEC, ERR_UNSUPPORTED_VIDEO_CODEC};

    /// `(stream_type, pid, descriptors)` of a PMT's streams.
    type Streams<'a> = &'a [(u8, u16, &'a [u8])];

    const AVC_AAC: Streams = &[(0x1B, 0x100, &[]), (0x0F, 0x101, &[])];

    /// A PES start on `pid` (payload only, contents irrelevant to the scanner).
    fn pes_start(pid: u16) -> Vec<u8> {
        let mut packet = vec![SYNC_BYTE, 0x40 | (pid >> 8) as u8, pid as u8, 0x10];
        packet.extend_from_slice(&[0, 0, 1, 0xE0]);
        packet.resize(PACKET_SIZE, 0);
        packet
    }

    #[test]
    fn accepts_h264_and_aac_and_counts_video_access_units() {
        let mut stream = program_packets(0x1000, AVC_AAC);
        stream.extend(pes_start(0x100));
        stream.extend(pes_start(0x101));
        stream.extend(pes_start(0x100));
        let mut scanner = ProgramScanner::new();
        assert_eq!(scanner.push(&stream).unwrap().video_frames, 2);
        let kinds: Vec<Carriage> = scanner.streams().map(|s| s.carriage).collect();
        assert_eq!(kinds, [Carriage::H264, Carriage::Aac]);
    }

    #[test]
    fn refuses_hevc_mp3_latm_and_private_ac3_naming_them() {
        let cases: [(Streams, &str, &str); 4] = [
            (&[(0x24, 0x100, &[])], ERR_UNSUPPORTED_VIDEO_CODEC, "HEVC"),
            (
                &[(0x1B, 0x100, &[]), (0x03, 0x101, &[])],
                ERR_UNSUPPORTED_AUDIO_CODEC,
                "MP3",
            ),
            (&[(0x11, 0x101, &[])], ERR_UNSUPPORTED_AUDIO_CODEC, "LATM"),
            (
                &[(0x06, 0x101, &[0x6A, 0x01, 0x00])],
                ERR_UNSUPPORTED_AUDIO_CODEC,
                "AC-3",
            ),
        ];
        for (streams, code, name) in cases {
            let error = ProgramScanner::new()
                .push(&program_packets(0x1000, streams))
                .unwrap_err();
            assert_eq!(error.code, code);
            assert!(error.reason.contains(name), "{}", error.reason);
        }
    }

    #[test]
    fn data_streams_pass_unchecked() {
        // ID3 metadata, SCTE-35, a private stream without a codec descriptor.
        let streams: &[(u8, u16, &[u8])] = &[
            (0x1B, 0x100, &[]),
            (0x15, 0x102, &[]),
            (0x86, 0x103, &[]),
            (0x06, 0x104, &[0x05, 0x04, b'K', b'L', b'V', b'A']),
        ];
        let mut scanner = ProgramScanner::new();
        scanner.push(&program_packets(0x1000, streams)).unwrap();
        assert_eq!(scanner.streams().count(), 4);
    }

    #[test]
    fn any_split_and_leading_garbage_read_the_same() {
        let mut stream = vec![0x12, 0x47, 0x00, 0x99];
        stream.extend(program_packets(0x1000, &[(0x24, 0x100, &[])]));
        for split in [1, 7, 187, 188, 189, 300] {
            let mut scanner = ProgramScanner::new();
            let mut result = Ok(Progress::default());
            for chunk in stream.chunks(split) {
                result = scanner.push(chunk);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(
                result.unwrap_err().code,
                ERR_UNSUPPORTED_VIDEO_CODEC,
                "{split}"
            );
        }
    }

    #[test]
    fn a_section_across_packets_is_assembled() {
        // A PMT with many descriptors spills into a second packet.
        let long = [0x05u8, 0x04, b'n', b'o', b'n', b'e'].repeat(40);
        let streams: &[(u8, u16, &[u8])] = &[(0x06, 0x101, &long), (0x24, 0x100, &[])];
        let section = pmt_section(streams);
        assert!(section.len() > 183);
        let mut stream = program_packets(0x1000, &[])[..PACKET_SIZE].to_vec();
        let first = [&[SYNC_BYTE, 0x50, 0x00, 0x10, 0x00][..], &section[..183]].concat();
        let mut second = vec![SYNC_BYTE, 0x10, 0x00, 0x11];
        second.extend_from_slice(&section[183..]);
        second.resize(PACKET_SIZE, 0xFF);
        stream.extend(first);
        stream.extend(second);
        let error = ProgramScanner::new().push(&stream).unwrap_err();
        assert!(error.reason.contains("HEVC"), "{}", error.reason);
    }

    #[test]
    fn a_corrupt_table_is_ignored() {
        let mut stream = program_packets(0x1000, &[(0x24, 0x100, &[])]);
        stream[PACKET_SIZE + 20] ^= 0x01; // inside the PMT: its CRC no longer matches
        assert!(ProgramScanner::new().push(&stream).is_ok());
    }
}
