//! 8 kHz mono 16-bit PCM WAV files (greetings in, recordings out, the latter streamed to disk by a
//! [`WavWriter`] and readable by the owner only), WAV encoding and parsing at any rate (what speech
//! engines take and speak), and the generated greeting chime.

use std::fs::File;
use std::io::{BufWriter, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use super::RATE;

/// Writes mono 16-bit PCM at 8 kHz.
pub fn write(path: &Path, samples: &[i16]) -> std::io::Result<()> {
    std::fs::write(path, encode(RATE, samples))
}

/// A mono 16-bit PCM WAV file of `samples` at `rate`, in memory (44-byte header, then the samples).
pub fn encode(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&rate.to_le_bytes());
    bytes.extend_from_slice(&rate.saturating_mul(2).to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    bytes
}

/// An 8 kHz recording written as it is made: the header first (its lengths patched by
/// [`WavWriter::finish`]), then the samples through a buffer. The file is created with mode 0600 (a
/// caller's voice is personal data).
#[derive(Debug)]
pub struct WavWriter {
    file: BufWriter<File>,
    samples: u64,
}

impl WavWriter {
    /// Creates (or truncates) `path`, owner read/write only.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = BufWriter::new(options.open(path)?);
        file.write_all(&encode(RATE, &[]))?;
        Ok(Self { file, samples: 0 })
    }

    /// Appends samples.
    pub fn append(&mut self, samples: &[i16]) -> std::io::Result<()> {
        for s in samples {
            self.file.write_all(&s.to_le_bytes())?;
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Writes the lengths into the header and flushes.
    pub fn finish(mut self) -> std::io::Result<()> {
        let data_len = u32::try_from(self.samples * 2).unwrap_or(u32::MAX);
        self.file.flush()?;
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(4))?;
        file.write_all(&data_len.saturating_add(36).to_le_bytes())?;
        file.seek(SeekFrom::Start(40))?;
        file.write_all(&data_len.to_le_bytes())?;
        file.flush()
    }
}

/// Reads a mono 16-bit PCM WAV at 8 kHz.
pub fn read(path: &Path) -> Result<Vec<i16>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match parse(&bytes) {
        Ok(pcm) if pcm.rate == RATE => Ok(pcm.samples),
        Ok(_) => Err(format!("{}: must be 8 kHz mono 16-bit PCM", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Mono 16-bit PCM at some rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    /// Samples per second.
    pub rate: u32,
    /// The samples.
    pub samples: Vec<i16>,
}

/// Parses a mono 16-bit PCM WAV at any rate. A `data` chunk whose length runs past the end (a WAV
/// written to a pipe before its length was known, as `espeak-ng --stdout` does) ends at the last byte.
pub fn parse(bytes: &[u8]) -> Result<Pcm, String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file".into());
    }
    let (mut offset, mut rate) = (12, None);
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let len =
            u32::from_le_bytes([bytes[offset + 4], bytes[offset + 5], bytes[offset + 6], bytes[offset + 7]]) as usize;
        let body_start = offset + 8;
        if id == b"data" {
            let Some(rate) = rate else {
                return Err("must be mono 16-bit PCM".into());
            };
            let body = &bytes[body_start..body_start.saturating_add(len).min(bytes.len())];
            let samples = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            return Ok(Pcm { rate, samples });
        }
        let body = bytes.get(body_start..body_start + len).ok_or("truncated")?;
        if id == b"fmt " && body.len() >= 16 {
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            let format_ok = body[0] == 1 && body[1] == 0 && channels == 1 && bits == 16;
            rate = format_ok.then(|| u32::from_le_bytes([body[4], body[5], body[6], body[7]]));
        }
        offset = body_start + len + (len % 2);
    }
    Err("no data chunk".into())
}

/// A short two-note chime (E5 then A5, 0.4 s each, soft attack and release), then 0.2 s of silence.
pub fn greeting_chime() -> Vec<i16> {
    let note = |frequency: f64| {
        let n = (RATE as f64 * 0.4) as usize;
        (0..n).map(move |i| {
            let t = i as f64 / RATE as f64;
            let envelope = (t / 0.02).min(1.0) * ((0.4 - t) / 0.05).clamp(0.0, 1.0);
            (8000.0 * envelope * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
        })
    };
    note(659.25).chain(note(880.0)).chain(std::iter::repeat_n(0, (RATE as usize) / 5)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_recording_reads_back_and_only_its_owner_may_read_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("call.wav");
        let mut writer = WavWriter::create(&path).expect("create");
        let samples: Vec<i16> = (0..8000).map(|i| (i % 300) as i16 - 150).collect();
        for chunk in samples.chunks(160) {
            writer.append(chunk).expect("append");
        }
        assert_eq!(writer.samples(), 8000);
        writer.finish().expect("finish");
        assert_eq!(read(&path).expect("a valid WAV"), samples);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{mode:o}");
        }
    }

    #[test]
    fn wav_round_trip_and_chime_is_audible() {
        let dir = tempfile::tempdir().expect("dir");
        let chime = greeting_chime();
        assert_eq!(chime.len(), 8000);
        let rms = (chime.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / chime.len() as f64).sqrt();
        assert!(rms > 1000.0, "{rms}");
        let path = dir.path().join("chime.wav");
        write(&path, &chime).expect("write");
        assert_eq!(read(&path).expect("read"), chime);
        std::fs::write(dir.path().join("bad.wav"), b"RIFFxxxxWAVEjunk").expect("write");
        assert!(read(&dir.path().join("bad.wav")).is_err());
        // A streamed WAV (length unknown when the header was written) at another rate.
        let mut streamed = std::fs::read(&path).expect("read");
        streamed[24..28].copy_from_slice(&22050u32.to_le_bytes());
        streamed[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        let pcm = parse(&streamed).expect("streamed");
        assert_eq!((pcm.rate, pcm.samples.len()), (22050, chime.len()));
        assert!(read(&path).is_ok());
    }

    #[test]
    fn encoded_wavs_parse_at_their_rate() {
        let samples: Vec<i16> = (0..2205).map(|i| (i * 7 % 2000 - 1000) as i16).collect();
        let bytes = encode(22_050, &samples);
        assert_eq!(bytes.len(), 44 + samples.len() * 2);
        assert_eq!(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize, bytes.len() - 8);
        assert_eq!(parse(&bytes), Ok(Pcm { rate: 22_050, samples }));
        assert_eq!(parse(&encode(16_000, &[])), Ok(Pcm { rate: 16_000, samples: Vec::new() }));
    }
}
