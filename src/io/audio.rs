//! Audio in and out: decoding, mono mix-down, band-limited resampling, WAV writing.
//!
//! * WAV is read with `hound` (PCM 8/16/24/32-bit integer, 32-bit float, any channel count and
//!   rate); WAV encodings hound does not handle (64-bit float, A-law, µ-law) and FLAC, MP3 and Ogg
//!   Vorbis are decoded with `symphonia`. The container is told by the file's first bytes, not its
//!   name.
//! * Integer samples are scaled to [-1, 1) by 2^(bits−1), as libsndfile and librosa do.
//! * Analysis runs on a mono mix-down (the mean of the channels, as `librosa.to_mono`) resampled to
//!   the analysis rate with `rubato`'s FFT resampler (band-limited); the original channels and rate
//!   stay in [`Audio`] so stems can be written in the input's own layout.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use rubato::{FftFixedIn, Resampler};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::io::atomic;

/// The container of an audio file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Wav,
    Flac,
    Mp3,
    Ogg,
}

impl Container {
    /// Recognizes a container from a file's first bytes.
    pub fn sniff(head: &[u8]) -> Option<Container> {
        match head {
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..]
            | [b'R', b'F', b'6', b'4', ..] => Some(Container::Wav),
            [b'f', b'L', b'a', b'C', ..] => Some(Container::Flac),
            [b'O', b'g', b'g', b'S', ..] => Some(Container::Ogg),
            [b'I', b'D', b'3', ..] => Some(Container::Mp3),
            // An MPEG audio frame header: 11 sync bits, layer bits not 00.
            [0xFF, b, ..] if b & 0xE0 == 0xE0 && b & 0x06 != 0 => Some(Container::Mp3),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Container::Wav => "WAV",
            Container::Flac => "FLAC",
            Container::Mp3 => "MP3",
            Container::Ogg => "Ogg Vorbis",
        }
    }
}

/// How the samples of an input file were encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioFormat {
    pub container: Container,
    /// Bits per sample of the stored samples, when the encoding has such a thing (not for MP3 or
    /// Vorbis).
    pub bits_per_sample: Option<u32>,
    /// True for floating-point samples.
    pub float: bool,
}

impl std::fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.container.name())?;
        match (self.bits_per_sample, self.float) {
            (Some(b), true) => write!(f, ", {b}-bit float"),
            (Some(b), false) => write!(f, ", {b}-bit integer"),
            (None, _) => Ok(()),
        }
    }
}

/// A decoded recording: one sample vector per channel, in [-1, 1].
#[derive(Debug, Clone)]
pub struct Audio {
    pub channels: Vec<Vec<f32>>,
    pub sample_rate: u32,
    pub format: AudioFormat,
}

impl Audio {
    /// Number of samples per channel.
    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Duration in seconds.
    pub fn duration(&self) -> f64 {
        self.len() as f64 / self.sample_rate as f64
    }

    /// The mean of the channels, sample by sample (`librosa.to_mono`).
    pub fn mono(&self) -> Vec<f32> {
        match self.channels.as_slice() {
            [only] => only.clone(),
            chans => {
                let scale = 1.0 / chans.len() as f32;
                (0..self.len())
                    .map(|i| chans.iter().map(|c| c[i]).sum::<f32>() * scale)
                    .collect()
            }
        }
    }

    /// The mono mix-down at `rate` Hz: what the analysis stages work on (borrowed when the
    /// recording is mono at that rate already, so a long recording is not held twice).
    pub fn analysis_signal(&self, rate: u32) -> Result<std::borrow::Cow<'_, [f32]>> {
        match self.channels.as_slice() {
            [only] if self.sample_rate == rate => Ok(std::borrow::Cow::Borrowed(only)),
            _ => Ok(std::borrow::Cow::Owned(resample(
                &self.mono(),
                self.sample_rate,
                rate,
            )?)),
        }
    }
}

/// The lowest sample rate a recording may have, Hz (below it, its few samples would stand for
/// hours of audio at the analysis rate).
pub const MIN_RATE: u32 = 1000;
/// The highest sample rate a recording may have, Hz (DXD's 705.6 kHz and 768 kHz fit).
pub const MAX_RATE: u32 = 768_000;

/// Reads an audio file (WAV, FLAC, MP3 or Ogg Vorbis), keeping all channels at the file's rate.
pub fn read_audio(path: &Path) -> Result<Audio> {
    let bytes = fs::read(path).map_err(|e| Error::read(path, e))?;
    decode(path, bytes)
}

/// Decodes an audio file already in memory; `path` only names it in errors.
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<Audio> {
    if bytes.is_empty() {
        return Err(Error::audio(path, "empty file"));
    }
    let container = Container::sniff(&bytes).ok_or_else(|| {
        Error::audio(
            path,
            "not a recognized audio file (expected WAV, FLAC, MP3 or Ogg Vorbis)",
        )
    })?;
    let audio = match container {
        Container::Wav => {
            let (bytes, declared) = check_wav_layout(path, bytes)?;
            let mut audio = match read_wav_hound(path, &bytes) {
                Ok(Some(audio)) => audio,
                Ok(None) => decode_guarded(path, bytes, container)?,
                // hound refuses some encodings it does not know (64-bit float) as malformed:
                // symphonia may read them; if it cannot either, hound's reason is the one told.
                Err(e) => decode_guarded(path, bytes, container).map_err(|_| e)?,
            };
            // The encoding as the fmt chunk states it (symphonia reports no float flag or bit
            // depth for some, e.g. 64-bit float with or without WAVE_FORMAT_EXTENSIBLE).
            if let Some((tag, _, bits)) = declared {
                audio.format.float |= tag == 3;
                audio.format.bits_per_sample = audio.format.bits_per_sample.or(Some(bits as u32));
            }
            audio
        }
        _ => decode_guarded(path, bytes, container)?,
    };
    if audio.is_empty() {
        return Err(Error::audio(path, "holds no audio samples"));
    }
    if let Some((c, i, v)) = first_non_finite(&audio.channels) {
        return Err(Error::audio(
            path,
            format!(
                "sample {i} of channel {} (at {:.3} s) is {v}: a recording must hold numbers",
                c + 1,
                i as f64 / audio.sample_rate.max(1) as f64
            ),
        ));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&audio.sample_rate) {
        return Err(Error::audio(
            path,
            format!(
                "sample rate {} Hz is outside {MIN_RATE}..={MAX_RATE} Hz",
                audio.sample_rate
            ),
        ));
    }
    Ok(audio)
}

/// The chunks of a RIFF/WAVE file that decoding depends on: the `fmt ` chunk's format tag
/// (the sub-format's for WAVE_FORMAT_EXTENSIBLE), block align and bits per sample, and where the
/// `data` chunk's size field and samples are.
struct WavLayout {
    format: Option<(u16, u16, u16)>,
    /// (offset of the data chunk's size field, its declared byte length).
    data: Option<(usize, u32)>,
}

fn wav_layout(bytes: &[u8]) -> WavLayout {
    let le16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let le32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut layout = WavLayout {
        format: None,
        data: None,
    };
    let mut at = 12;
    while let (Some(id), Some(size)) = (bytes.get(at..at + 4), le32(at + 4)) {
        match id {
            b"fmt " => {
                let tag = match le16(at + 8) {
                    // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the real tag.
                    Some(0xFFFE) => le16(at + 8 + 24),
                    t => t,
                };
                layout.format = tag
                    .zip(le16(at + 8 + 12))
                    .zip(le16(at + 8 + 14))
                    .map(|((t, a), b)| (t, a, b));
            }
            b"data" => {
                layout.data = Some((at + 4, size));
                break;
            }
            _ => {}
        }
        at += 8 + size as usize + (size as usize & 1);
    }
    layout
}

/// Checks a RIFF/WAVE file's data chunk against the file's length. A data chunk that declares
/// more bytes than follow is a truncated file: refused. One that declares 0xFFFFFFFF or 0 bytes
/// with samples after it was written to a stream that could not seek back (ffmpeg to a pipe):
/// its sizes are set to what the file holds (whole sample frames), as libsndfile reads it.
/// Returns the bytes to decode and the `fmt ` chunk's (format tag, block align, bits).
#[allow(clippy::type_complexity)]
fn check_wav_layout(path: &Path, mut bytes: Vec<u8>) -> Result<(Vec<u8>, Option<(u16, u16, u16)>)> {
    if !bytes.starts_with(b"RIFF") {
        return Ok((bytes, None)); // RF64 keeps its sizes in its ds64 chunk: the decoder checks them
    }
    let layout = wav_layout(&bytes);
    let Some((size_at, declared)) = layout.data else {
        return Ok((bytes, layout.format));
    };
    let start = size_at + 4;
    let holds = bytes.len().saturating_sub(start);
    if (declared == u32::MAX || declared == 0) && holds > 0 {
        let align = layout.format.map_or(1, |(_, a, _)| a.max(1) as usize);
        let whole = (holds / align * align).min(u32::MAX as usize - start) as u32;
        bytes[size_at..start].copy_from_slice(&whole.to_le_bytes());
        let riff = (start + whole as usize - 8) as u32;
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
        bytes.truncate(start + whole as usize);
        return Ok((bytes, layout.format));
    }
    if declared as usize > holds {
        return Err(Error::audio(
            path,
            format!(
                "truncated: the WAV data chunk declares {declared} bytes of samples, the file holds {holds}"
            ),
        ));
    }
    Ok((bytes, layout.format))
}

/// The first sample that is NaN or infinite: (channel, index, value).
fn first_non_finite(channels: &[Vec<f32>]) -> Option<(usize, usize, f32)> {
    channels.iter().enumerate().find_map(|(c, ch)| {
        ch.iter()
            .position(|v| !v.is_finite())
            .map(|i| (c, i, ch[i]))
    })
}

/// Decodes a WAV file with hound. `Ok(None)` means hound does not support the encoding and
/// symphonia should try.
fn read_wav_hound(path: &Path, bytes: &[u8]) -> Result<Option<Audio>> {
    let reader = match hound::WavReader::new(Cursor::new(bytes)) {
        Ok(r) => r,
        Err(hound::Error::Unsupported) => return Ok(None),
        Err(e) => return Err(Error::audio(path, format!("not a valid WAV file: {e}"))),
    };
    let spec = reader.spec();
    let n_channels = spec.channels as usize;
    if n_channels == 0 {
        return Err(Error::audio(path, "WAV header declares 0 channels"));
    }
    let declared = reader.len() as usize;
    let mut interleaved: Vec<f32> = Vec::with_capacity(declared.min(bytes.len()));
    let short = |got: usize| {
        Error::audio(
            path,
            format!(
                "truncated: the WAV header declares {} samples per channel, the file holds {}",
                declared / n_channels,
                got / n_channels
            ),
        )
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Ok(None);
            }
            for s in reader.into_samples::<f32>() {
                interleaved.push(s.map_err(|_| short(interleaved.len()))?);
            }
        }
        hound::SampleFormat::Int if spec.bits_per_sample == 16 => {
            // hound has parsed the header and stands at the first sample, right after the
            // data chunk's header ("data", byte length). Plain 16-bit PCM (two bytes a sample)
            // is converted straight from the bytes, as hound would, without its per-sample
            // reads; other layouts take hound's path.
            let n = declared;
            let pos = reader.into_inner().position() as usize;
            let plain = pos >= 8
                && &bytes[pos - 8..pos - 4] == b"data"
                && u32::from_le_bytes(bytes[pos - 4..pos].try_into().expect("4 bytes")) as usize
                    == 2 * n;
            if !plain {
                let reader = hound::WavReader::new(Cursor::new(bytes))
                    .map_err(|e| Error::audio(path, format!("not a valid WAV file: {e}")))?;
                read_ints(reader, &mut interleaved, &short)?;
            } else {
                let data = &bytes[pos..bytes.len().min(pos + 2 * n)];
                interleaved.extend(
                    data.chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0),
                );
            }
        }
        hound::SampleFormat::Int => {
            read_ints(reader, &mut interleaved, &short)?;
        }
    }
    if interleaved.len() < declared || interleaved.len() % n_channels != 0 {
        return Err(short(interleaved.len()));
    }
    Ok(Some(Audio {
        channels: deinterleave(interleaved, n_channels),
        sample_rate: spec.sample_rate,
        format: AudioFormat {
            container: Container::Wav,
            bits_per_sample: Some(spec.bits_per_sample as u32),
            float: spec.sample_format == hound::SampleFormat::Float,
        },
    }))
}

/// Integer samples through hound, scaled to [−1, 1).
fn read_ints(
    reader: hound::WavReader<Cursor<&[u8]>>,
    out: &mut Vec<f32>,
    short: &dyn Fn(usize) -> Error,
) -> Result<()> {
    let scale = 1.0 / (1u64 << (reader.spec().bits_per_sample - 1)) as f32;
    for s in reader.into_samples::<i32>() {
        out.push(s.map_err(|_| short(out.len()))? as f32 * scale);
    }
    Ok(())
}

fn deinterleave(interleaved: Vec<f32>, n_channels: usize) -> Vec<Vec<f32>> {
    if n_channels == 1 {
        return vec![interleaved];
    }
    (0..n_channels)
        .map(|c| {
            interleaved
                .iter()
                .skip(c)
                .step_by(n_channels)
                .copied()
                .collect()
        })
        .collect()
}

/// [`decode_symphonia`], with a panic inside the decoder (a bug of its on malformed data: the
/// fuzz target found an ID3v2 tag of 21 bytes that reaches an `unreachable!` in
/// symphonia-metadata 0.5.5, reported upstream as Symphonia issue #485) turned into the error
/// it should have been. The panic's message is kept off stderr, so the error stays one line.
fn decode_guarded(path: &Path, bytes: Vec<u8>, container: Container) -> Result<Audio> {
    quietly_catching_panics(|| decode_symphonia(path, bytes, container)).unwrap_or_else(|_| {
        Err(Error::audio(
            path,
            "not a readable audio file: its decoder failed on malformed data",
        ))
    })
}

/// Runs `f`, catching a panic in it; while it runs, the panic hook prints nothing for this
/// thread (every other panic is printed as before).
fn quietly_catching_panics<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    use std::cell::Cell;
    use std::sync::Once;
    thread_local!(static QUIET: Cell<bool> = const { Cell::new(false) });
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result
}

/// Decodes any container symphonia knows, into f32 channels.
fn decode_symphonia(path: &Path, bytes: Vec<u8>, container: Container) -> Result<Audio> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
    use symphonia::core::errors::Error as SymError;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let bad = |what: &str, e: SymError| Error::audio(path, format!("{what}: {e}"));
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let format_opts = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&Hint::new(), mss, &format_opts, &MetadataOptions::default())
        .map_err(|e| bad("not a readable audio file", e))?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| Error::audio(path, "holds no audio track"))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| bad("unsupported audio encoding", e))?;

    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let mut n_channels = params.channels.map_or(0, |c| c.count());
    let mut interleaved: Vec<f32> = Vec::new();
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(bad("corrupt audio stream", e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet in a lossy stream: skip it, as players do.
            Err(SymError::DecodeError(_)) if container != Container::Wav => continue,
            Err(e) => return Err(bad("corrupt audio stream", e)),
        };
        let spec = *decoded.spec();
        sample_rate = spec.rate;
        n_channels = spec.channels.count();
        let needed = decoded.capacity() as u64;
        if buf.as_ref().is_none_or(|b| b.capacity() < needed as usize) {
            buf = Some(SampleBuffer::new(needed, spec));
        }
        let b = buf.as_mut().expect("allocated above");
        b.copy_interleaved_ref(decoded);
        interleaved.extend_from_slice(b.samples());
    }
    if n_channels == 0 || interleaved.is_empty() {
        return Err(Error::audio(path, "holds no audio samples"));
    }
    check_declared_length(
        path,
        container,
        params.n_frames,
        interleaved.len() / n_channels,
    )?;
    Ok(Audio {
        channels: deinterleave(interleaved, n_channels),
        sample_rate,
        format: AudioFormat {
            container,
            bits_per_sample: params.bits_per_sample,
            float: matches!(
                params.sample_format,
                Some(symphonia::core::sample::SampleFormat::F32)
                    | Some(symphonia::core::sample::SampleFormat::F64)
            ),
        },
    })
}

/// How many sample frames fewer than its header declares a lossy stream (MP3, Vorbis) may
/// decode to without being called truncated: one frame of 1152 samples, so a file cut within
/// its last frame is read (what is lost is under 30 ms at 44.1 kHz).
const LOSSY_SLACK: u64 = 1152;

/// Refuses a stream that decoded to fewer sample frames than its container declares (WAV's
/// data chunk, FLAC's STREAMINFO, an MP3's Xing/Info header, as symphonia reads them): it was
/// cut. Streams that declare no length are read as far as they go, to their last whole frame.
fn check_declared_length(
    path: &Path,
    container: Container,
    declared: Option<u64>,
    decoded: usize,
) -> Result<()> {
    let Some(declared) = declared.filter(|&n| n > 0) else {
        return Ok(());
    };
    let slack = match container {
        Container::Wav | Container::Flac => 0,
        Container::Mp3 | Container::Ogg => LOSSY_SLACK,
    };
    if (decoded as u64) + slack < declared {
        return Err(Error::audio(
            path,
            format!(
                "truncated: the {} header declares {declared} samples per channel, {decoded} could be decoded",
                container.name()
            ),
        ));
    }
    Ok(())
}

/// Resamples `signal` from `from` Hz to `to` Hz with rubato's synchronous FFT resampler
/// (band-limited; the anti-aliasing low-pass is part of the FFT-domain rate change). The output
/// has `ceil(len · to / from)` samples (librosa's convention) and is aligned with the input: the
/// resampler's delay is removed.
pub fn resample(signal: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to {
        return Ok(signal.to_vec());
    }
    if from == 0 || to == 0 {
        return Err(Error::Param(format!(
            "cannot resample from {from} Hz to {to} Hz"
        )));
    }
    let expected = (signal.len() as u64 * to as u64).div_ceil(from as u64) as usize;
    // The resampler's delay is half its output FFT length: make that length even (an even number
    // of the smallest whole-sample blocks) so the delay is a whole number of output samples.
    let gcd = gcd(from as usize, to as usize);
    let block_in = from as usize / gcd;
    let chunk_in = block_in * 2 * 1024usize.div_ceil(block_in);
    let mut rs = FftFixedIn::<f32>::new(from as usize, to as usize, chunk_in, 1, 1)
        .map_err(|e| Error::Param(format!("resampler {from} Hz → {to} Hz: {e}")))?;
    let delay = rs.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(expected + delay + 8192);
    let map = |e: rubato::ResampleError| Error::Param(format!("resampling failed: {e}"));
    let mut pos = 0;
    while pos + rs.input_frames_next() <= signal.len() {
        let n = rs.input_frames_next();
        let chunk = rs.process(&[&signal[pos..pos + n]], None).map_err(map)?;
        out.extend_from_slice(&chunk[0]);
        pos += n;
    }
    if pos < signal.len() {
        let chunk = rs
            .process_partial(Some(&[&signal[pos..]]), None)
            .map_err(map)?;
        out.extend_from_slice(&chunk[0]);
    }
    while out.len() < expected + delay {
        let chunk = rs.process_partial::<&[f32]>(None, None).map_err(map)?;
        out.extend_from_slice(&chunk[0]);
    }
    out.drain(..delay);
    out.truncate(expected);
    Ok(out)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Sample encodings for written WAV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WavEncoding {
    /// 16-bit integer PCM (samples beyond ±1 are clipped).
    Pcm16,
    /// 24-bit integer PCM (samples beyond ±1 are clipped).
    Pcm24,
    /// 32-bit IEEE float (no clipping).
    Float32,
}

impl WavEncoding {
    /// The encoding closest to an input's: 24-bit and float inputs keep their resolution,
    /// everything else is written as 16-bit PCM.
    pub fn like(format: &AudioFormat) -> WavEncoding {
        match (format.float, format.bits_per_sample) {
            (true, _) => WavEncoding::Float32,
            (false, Some(b)) if b > 16 => WavEncoding::Pcm24,
            _ => WavEncoding::Pcm16,
        }
    }
}

/// Writes `channels` (equal lengths) as a WAV file at `sample_rate`, atomically.
pub fn write_wav(
    path: &Path,
    channels: &[Vec<f32>],
    sample_rate: u32,
    encoding: WavEncoding,
) -> Result<()> {
    let len = channels.first().map_or(0, Vec::len);
    if channels.iter().any(|c| c.len() != len) {
        return Err(Error::Param(format!(
            "channels of unequal length for {}",
            path.display()
        )));
    }
    let mut w = WavStream::create(path, channels.len(), sample_rate, encoding)?;
    let parts: Vec<&[f32]> = channels.iter().map(Vec::as_slice).collect();
    w.write(&parts)?;
    w.finish()
}

/// A WAV file written piece by piece: the samples go to a temporary file beside `path`, which
/// becomes `path` only at [`WavStream::finish`]; dropped unfinished, it leaves nothing behind.
pub struct WavStream {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    writer: Option<hound::WavWriter<std::io::BufWriter<fs::File>>>,
    /// The same file, to sync it once the writer has flushed and closed its handle.
    sync: fs::File,
    encoding: WavEncoding,
    n_channels: usize,
}

impl WavStream {
    pub fn create(
        path: &Path,
        n_channels: usize,
        sample_rate: u32,
        encoding: WavEncoding,
    ) -> Result<WavStream> {
        if n_channels == 0 || n_channels > u16::MAX as usize {
            return Err(Error::Param(format!(
                "cannot write {n_channels} channels to {}",
                path.display()
            )));
        }
        let (bits, sample_format) = match encoding {
            WavEncoding::Pcm16 => (16, hound::SampleFormat::Int),
            WavEncoding::Pcm24 => (24, hound::SampleFormat::Int),
            WavEncoding::Float32 => (32, hound::SampleFormat::Float),
        };
        let spec = hound::WavSpec {
            channels: n_channels as u16,
            sample_rate,
            bits_per_sample: bits,
            sample_format,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        }
        let tmp = atomic::temp_path(path);
        let file = fs::File::create(&tmp).map_err(|e| Error::write(path, e))?;
        let sync = match file.try_clone() {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::write(path, e));
            }
        };
        let writer = hound::WavWriter::new(std::io::BufWriter::new(file), spec)
            .map_err(|e| Error::write(path, hound_io(e)));
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        Ok(WavStream {
            path: path.to_path_buf(),
            tmp,
            writer: Some(writer),
            sync,
            encoding,
            n_channels,
        })
    }

    /// Appends samples: one slice per channel, all of one length.
    pub fn write(&mut self, channels: &[&[f32]]) -> Result<()> {
        let len = channels.first().map_or(0, |c| c.len());
        if channels.len() != self.n_channels || channels.iter().any(|c| c.len() != len) {
            return Err(Error::Param(format!(
                "{} channels of unequal length for {}",
                channels.len(),
                self.path.display()
            )));
        }
        let w = self.writer.as_mut().expect("not finished");
        let bits = w.spec().bits_per_sample;
        // The inverse of the reader's scaling: x · 2^(bits−1), clipped to the integer range.
        let full_scale = (1i64 << (bits - 1)) as f64;
        let encoding = self.encoding;
        // x · 2^(bits−1) clipped to the integer range and rounded half away from zero (as
        // f64::round, without its libm call: y − trunc(y) is exact).
        let quantize = |x: f32| -> i32 {
            let y = (x as f64 * full_scale).clamp(-full_scale, full_scale - 1.0);
            let t = y as i64;
            let f = y - t as f64;
            (t + (f >= 0.5) as i64 - (f <= -0.5) as i64) as i32
        };
        let result = (|| {
            if encoding == WavEncoding::Pcm16 {
                // hound's buffered 16-bit writer: no per-sample dispatch or check. At most
                // 2^16 frames per buffer.
                for start in (0..len).step_by(1 << 16) {
                    let end = (start + (1 << 16)).min(len);
                    let mut sw = w.get_i16_writer(((end - start) * channels.len()) as u32);
                    for i in start..end {
                        for c in channels {
                            sw.write_sample(quantize(c[i]) as i16);
                        }
                    }
                    sw.flush()?;
                }
                return Ok(());
            }
            for i in 0..len {
                for c in channels {
                    let x = c[i];
                    match encoding {
                        WavEncoding::Float32 => w.write_sample(x),
                        _ => w.write_sample(quantize(x)),
                    }?;
                }
            }
            Ok::<(), hound::Error>(())
        })();
        result.map_err(|e| Error::write(&self.path, hound_io(e)))?;
        start_writeback(&self.sync);
        Ok(())
    }

    /// Completes the header, syncs and renames the file into place.
    pub fn finish(mut self) -> Result<()> {
        let w = self.writer.take().expect("not finished");
        let result = (|| {
            w.finalize().map_err(hound_io)?;
            self.sync.sync_all()?;
            fs::rename(&self.tmp, &self.path)
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&self.tmp);
            Error::write(&self.path, e)
        })
    }
}

impl Drop for WavStream {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Asks the system to start writing the file's dirty pages to disk now, without waiting, so
/// that the `sync_all` before the rename finds little left to write. Only a hint: nothing
/// depends on it, and where it does not exist it does nothing.
fn start_writeback(file: &fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on an open descriptor; no memory is passed.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

fn hound_io(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5
            })
            .collect()
    }

    #[test]
    fn sniffs_containers() {
        assert_eq!(
            Container::sniff(b"RIFF\0\0\0\0WAVEfmt "),
            Some(Container::Wav)
        );
        assert_eq!(Container::sniff(b"fLaC\0"), Some(Container::Flac));
        assert_eq!(Container::sniff(b"OggS\0"), Some(Container::Ogg));
        assert_eq!(Container::sniff(b"ID3\x04"), Some(Container::Mp3));
        assert_eq!(Container::sniff(&[0xFF, 0xFB, 0x90]), Some(Container::Mp3));
        assert_eq!(Container::sniff(b"\"Start\";\"Duration\""), None);
        assert_eq!(Container::sniff(b"MThd"), None);
    }

    #[test]
    fn resample_keeps_a_sine_in_band_and_aligned() {
        // 1 kHz at 44.1 kHz → 22.05 kHz: same sine, same phase, ceil(n/2) samples.
        let x = sine(1000.0, 44100, 44101);
        let y = resample(&x, 44100, 22050).unwrap();
        assert_eq!(y.len(), 22051);
        let want = sine(1000.0, 22050, y.len());
        let err = y[200..y.len() - 200]
            .iter()
            .zip(&want[200..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn resample_removes_content_above_the_new_nyquist() {
        // 15 kHz cannot exist at 22.05 kHz (Nyquist 11.025 kHz): it must be filtered, not aliased
        // to 7.05 kHz as linear interpolation would.
        let x = sine(15000.0, 44100, 44100);
        let y = resample(&x, 44100, 22050).unwrap();
        let rms = (y[500..y.len() - 500].iter().map(|v| v * v).sum::<f32>()
            / (y.len() - 1000) as f32)
            .sqrt();
        assert!(rms < 1e-3, "aliased energy, rms {rms}");
    }

    #[test]
    fn resample_handles_non_integer_ratios() {
        let x = sine(440.0, 48000, 48000);
        let y = resample(&x, 48000, 22050).unwrap();
        assert_eq!(y.len(), 22050);
        let want = sine(440.0, 22050, y.len());
        let err = y[200..y.len() - 200]
            .iter()
            .zip(&want[200..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn mono_is_the_channel_mean() {
        let a = Audio {
            channels: vec![vec![1.0, 0.0, 0.5], vec![0.0, 1.0, -0.5]],
            sample_rate: 8000,
            format: AudioFormat {
                container: Container::Wav,
                bits_per_sample: Some(16),
                float: false,
            },
        };
        assert_eq!(a.mono(), vec![0.5, 0.5, 0.0]);
        assert_eq!(a.len(), 3);
    }
}
