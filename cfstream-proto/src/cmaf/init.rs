//! The CMAF header (init segment) of one track: `ftyp` + `moov` with one `trak` whose sample
//! tables are empty (samples are in the fragments) and an `mvex`/`trex` announcing fragments.

use mp4_atom::{
    Audio, Avc1, Codec, Dinf, Dref, Encode, Esds, Ftyp, Hdlr, Mdhd, Mdia, Minf, Moov, Mp4a, Mvex,
    Mvhd, Smhd, Stbl, Stco, Stsd, Tkhd, Trak, Trex, Url, Visual, Vmhd, esds,
};

use super::codec::{AudioConfig, VideoConfig};
use crate::index::TrackKind;

/// The timescale of video tracks: the 90 kHz of MPEG systems, which every frame rate in use
/// divides well enough.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// MPEG-4 audio in `esds` (ISO/IEC 14496-1 table 5, `objectTypeIndication`).
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
/// `streamType` of an audio stream (ISO/IEC 14496-1 table 6).
const STREAM_TYPE_AUDIO: u8 = 0x05;

/// One track's codec: what its init segment describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackConfig {
    Video(VideoConfig),
    Audio(AudioConfig),
}

impl TrackConfig {
    pub fn kind(&self) -> TrackKind {
        match self {
            TrackConfig::Video(_) => TrackKind::Video,
            TrackConfig::Audio(_) => TrackKind::Audio,
        }
    }

    /// Ticks per second of the track's media timeline: 90 kHz for video, the sampling rate for
    /// audio (so that an AAC frame lasts exactly 1024 ticks).
    pub fn timescale(&self) -> u32 {
        match self {
            TrackConfig::Video(_) => VIDEO_TIMESCALE,
            TrackConfig::Audio(audio) => audio.sample_rate,
        }
    }

    /// The `track_ID` of the track in its init segment and fragments. Each track has its own
    /// files, so the ids only need to differ to keep the tracks apart if files are combined.
    pub fn track_id(&self) -> u32 {
        match self {
            TrackConfig::Video(_) => 1,
            TrackConfig::Audio(_) => 2,
        }
    }

    pub fn codec_string(&self) -> String {
        match self {
            TrackConfig::Video(video) => video.codec_string(),
            TrackConfig::Audio(audio) => audio.codec_string(),
        }
    }
}

/// Serialises the init segment of `track`.
pub fn init_segment(track: &TrackConfig) -> Result<Vec<u8>, mp4_atom::Error> {
    let ftyp = Ftyp {
        major_brand: b"cmfc".into(),
        minor_version: 0,
        compatible_brands: vec![b"cmfc".into(), b"iso6".into(), b"isom".into()],
    };
    let track_id = track.track_id();
    let moov = Moov {
        mvhd: Mvhd {
            timescale: track.timescale(),
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: track_id + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id,
                default_sample_description_index: 1,
                ..Default::default()
            }],
        }),
        trak: vec![trak(track)],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out)
}

fn trak(track: &TrackConfig) -> Trak {
    let (handler, name, tkhd) = match track {
        TrackConfig::Video(video) => (
            b"vide",
            "cfstream video",
            Tkhd {
                width: (video.width.min(u32::from(u16::MAX)) as u16).into(),
                height: (video.height.min(u32::from(u16::MAX)) as u16).into(),
                ..Default::default()
            },
        ),
        TrackConfig::Audio(_) => (
            b"soun",
            "cfstream audio",
            Tkhd {
                volume: 1.into(),
                alternate_group: 1,
                ..Default::default()
            },
        ),
    };
    Trak {
        tkhd: Tkhd {
            track_id: track.track_id(),
            enabled: true,
            in_movie: true,
            ..tkhd
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: track.timescale(),
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: handler.into(),
                name: name.into(),
            },
            minf: minf(track),
        },
        ..Default::default()
    }
}

fn minf(track: &TrackConfig) -> Minf {
    let (vmhd, smhd, codec) = match track {
        TrackConfig::Video(video) => (Some(Vmhd::default()), None, avc1(video)),
        TrackConfig::Audio(audio) => (None, Some(Smhd::default()), mp4a(audio)),
    };
    Minf {
        vmhd,
        smhd,
        dinf: Dinf {
            dref: Dref {
                entries: vec![
                    Url {
                        location: String::new(),
                    }
                    .into(),
                ],
            },
        },
        stbl: Stbl {
            stsd: Stsd {
                codecs: vec![codec],
            },
            stco: Some(Stco::default()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn avc1(video: &VideoConfig) -> Codec {
    Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width: video.width.min(u32::from(u16::MAX)) as u16,
            height: video.height.min(u32::from(u16::MAX)) as u16,
            horizresolution: 72.into(),
            vertresolution: 72.into(),
            frame_count: 1,
            compressor: "".into(),
            depth: 24,
        },
        avcc: video.avcc.clone(),
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    }
    .into()
}

fn mp4a(audio: &AudioConfig) -> Codec {
    Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(audio.channels.max(1)),
            sample_size: 16,
            // 16.16 fixed point: rates above 65535 Hz do not fit, and players read the rate
            // from the AudioSpecificConfig anyway.
            sample_rate: (audio.sample_rate.min(u32::from(u16::MAX)) as u16).into(),
        },
        esds: Esds {
            es_desc: esds::EsDescriptor {
                es_id: 2,
                depends_on_es_id: None,
                url: None,
                ocr_es_id: None,
                stream_priority: 0,
                dec_config: esds::DecoderConfig {
                    object_type_indication: OBJECT_TYPE_MPEG4_AUDIO,
                    stream_type: STREAM_TYPE_AUDIO,
                    // `raw` is what is written (the config as the publisher sent it); the other
                    // fields are a parsed view that the encoder ignores.
                    dec_specific: Some(esds::DecoderSpecific {
                        profile: audio.object_type,
                        freq_index: 0,
                        chan_conf: audio.channels,
                        raw: audio.audio_specific_config.clone(),
                    }),
                    ..Default::default()
                },
                sl_config: esds::SLConfig {},
            },
        },
        btrt: None,
        taic: None,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::codec::tests::{PPS, SPS_320X240_30FPS};
    use mp4_atom::{Any, Decode};

    fn video() -> TrackConfig {
        TrackConfig::Video(VideoConfig::from_parameter_sets(SPS_320X240_30FPS, PPS).unwrap())
    }

    fn audio() -> TrackConfig {
        TrackConfig::Audio(AudioConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap())
    }

    fn decode(bytes: &[u8]) -> (Ftyp, Moov) {
        let mut cursor = std::io::Cursor::new(bytes);
        let ftyp = Ftyp::decode(&mut cursor).unwrap();
        let moov = Moov::decode(&mut cursor).unwrap();
        assert_eq!(
            cursor.position() as usize,
            bytes.len(),
            "nothing after moov"
        );
        (ftyp, moov)
    }

    #[test]
    fn video_init_has_cmaf_brands_avcc_and_90khz() {
        let bytes = init_segment(&video()).unwrap();
        let (ftyp, moov) = decode(&bytes);
        assert_eq!(ftyp.major_brand, b"cmfc".into());
        assert!(ftyp.compatible_brands.contains(&b"iso6".into()));
        let trak = &moov.trak[0];
        assert_eq!(trak.mdia.mdhd.timescale, 90_000);
        assert_eq!(trak.mdia.hdlr.handler, b"vide".into());
        assert_eq!(moov.mvex.as_ref().unwrap().trex[0].track_id, 1);
        let stbl = &trak.mdia.minf.stbl;
        assert!(stbl.stts.entries.is_empty() && stbl.stsc.entries.is_empty());
        assert_eq!(stbl.stsz.samples, mp4_atom::StszSamples::default());
        match &stbl.stsd.codecs[0] {
            Codec::Avc1(avc1) => {
                assert_eq!((avc1.visual.width, avc1.visual.height), (320, 240));
                assert_eq!(avc1.avcc.sequence_parameter_sets[0], SPS_320X240_30FPS);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn audio_init_has_esds_with_the_config_and_sample_rate_timescale() {
        let bytes = init_segment(&audio()).unwrap();
        let (_, moov) = decode(&bytes);
        let trak = &moov.trak[0];
        assert_eq!(trak.mdia.mdhd.timescale, 44_100);
        assert_eq!(trak.mdia.hdlr.handler, b"soun".into());
        match &trak.mdia.minf.stbl.stsd.codecs[0] {
            Codec::Mp4a(mp4a) => {
                let config = &mp4a.esds.es_desc.dec_config;
                assert_eq!(config.object_type_indication, 0x40);
                assert_eq!(config.dec_specific.as_ref().unwrap().raw, [0x12, 0x10]);
                assert_eq!(mp4a.audio.channel_count, 2);
            }
            other => panic!("{other:?}"),
        }
        // Any other atom order or a stray box would fail to decode as ftyp + moov.
        assert!(matches!(
            Any::decode(&mut std::io::Cursor::new(&bytes)).unwrap(),
            Any::Ftyp(_)
        ));
    }
}
