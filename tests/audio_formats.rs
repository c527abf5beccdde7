//! Audio decoding of every supported encoding, and WAV writing.

use std::path::{Path, PathBuf};

use scorenmf::io::audio::{read_audio, write_wav, Container, WavEncoding};
use scorenmf::signal::stft::{Stft, StftParams};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scorenmf-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Channel c of the test signal: a sine of `freqs[c]` Hz and amplitude `amps[c]`.
fn test_signal(rate: u32, n: usize, freqs: &[f64], amps: &[f64]) -> Vec<Vec<f64>> {
    freqs
        .iter()
        .zip(amps)
        .map(|(f, a)| {
            (0..n)
                .map(|i| a * (2.0 * std::f64::consts::PI * f * i as f64 / rate as f64).sin())
                .collect()
        })
        .collect()
}

#[test]
fn wav_integer_and_float_encodings_any_channels_and_rate() {
    let dir = temp_dir("wav-encodings");
    for (bits, float) in [
        (8u16, false),
        (16, false),
        (24, false),
        (32, false),
        (32, true),
    ] {
        for (channels, rate) in [(1usize, 8000u32), (2, 44100), (3, 48000)] {
            let n = 1000;
            let sig = test_signal(
                rate,
                n,
                &[440.0, 660.0, 880.0][..channels],
                &[0.9, 0.5, 0.25],
            );
            let path = dir.join(format!("{bits}{float}{channels}.wav"));
            let spec = hound::WavSpec {
                channels: channels as u16,
                sample_rate: rate,
                bits_per_sample: bits,
                sample_format: if float {
                    hound::SampleFormat::Float
                } else {
                    hound::SampleFormat::Int
                },
            };
            let full = (1i64 << (bits - 1)) as f64;
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            for i in 0..n {
                for ch in &sig {
                    if float {
                        w.write_sample(ch[i] as f32).unwrap();
                    } else {
                        w.write_sample((ch[i] * full).round() as i32).unwrap();
                    }
                }
            }
            w.finalize().unwrap();

            let a = read_audio(&path).unwrap();
            assert_eq!(a.sample_rate, rate);
            assert_eq!(a.channels.len(), channels);
            assert_eq!(a.len(), n);
            assert_eq!(a.format.container, Container::Wav);
            assert_eq!(a.format.bits_per_sample, Some(bits as u32));
            assert_eq!(a.format.float, float);
            let tol = if float { 1e-7 } else { (1.0 / full).max(1e-7) };
            for (got, want) in a.channels.iter().zip(&sig) {
                for (g, w) in got.iter().zip(want) {
                    assert!((*g as f64 - w).abs() <= tol, "{bits}-bit: {g} vs {w}");
                }
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The frequency (Hz) of the strongest bin of the middle frame, and its magnitude.
fn dominant(x: &[f32], rate: u32) -> (f64, f32) {
    let stft = Stft::new(StftParams {
        n_fft: 4096,
        hop: 1024,
    })
    .unwrap();
    let s = stft.forward(x);
    let frame = s.frame(s.n_frames / 2);
    let k = (0..s.n_bins)
        .max_by(|&a, &b| frame[a].norm().total_cmp(&frame[b].norm()))
        .unwrap();
    (k as f64 * rate as f64 / 4096.0, frame[k].norm())
}

#[test]
fn flac_mp3_ogg_and_f64_wav_decode() {
    for (file, container, duration) in [
        ("stereo_440_660.flac", Container::Flac, 0.5),
        ("stereo_440_660.mp3", Container::Mp3, 0.5),
        ("stereo_440_660.ogg", Container::Ogg, 0.5),
        ("stereo_440_660_f64.wav", Container::Wav, 0.1),
    ] {
        let a = read_audio(&Path::new("tests/data/audio").join(file)).unwrap();
        assert_eq!(a.format.container, container, "{file}");
        assert_eq!(a.sample_rate, 44100, "{file}");
        assert_eq!(a.channels.len(), 2, "{file}");
        // Lossy codecs may pad to whole frames when gapless data is missing.
        assert!(
            (a.duration() - duration).abs() < 0.06,
            "{file}: {} s",
            a.duration()
        );
        let (f_left, m_left) = dominant(&a.channels[0], a.sample_rate);
        let (f_right, m_right) = dominant(&a.channels[1], a.sample_rate);
        assert!((f_left - 440.0).abs() < 11.0, "{file}: left at {f_left} Hz");
        assert!(
            (f_right - 660.0).abs() < 11.0,
            "{file}: right at {f_right} Hz"
        );
        let ratio = m_left / m_right;
        assert!((ratio - 2.0).abs() < 0.1, "{file}: level ratio {ratio}");
    }
}

#[test]
fn analysis_signal_is_mono_at_the_analysis_rate() {
    let a = read_audio(Path::new("tests/data/audio/stereo_440_660.flac")).unwrap();
    let x = a.analysis_signal(22050).unwrap();
    assert_eq!(x.len(), a.len().div_ceil(2));
    let (f, _) = dominant(&x, 22050);
    assert!((f - 440.0).abs() < 6.0, "{f}");
}

#[test]
fn written_wavs_read_back() {
    let dir = temp_dir("wav-write");
    let sig: Vec<Vec<f32>> = test_signal(22050, 777, &[300.0, 500.0], &[0.99, 0.3])
        .into_iter()
        .map(|c| c.into_iter().map(|v| v as f32).collect())
        .collect();
    for (enc, tol) in [
        (WavEncoding::Pcm16, 0.5 / 32768.0),
        (WavEncoding::Pcm24, 0.5 / 8388608.0),
        (WavEncoding::Float32, 0.0),
    ] {
        let path = dir.join(format!("{enc:?}.wav"));
        write_wav(&path, &sig, 22050, enc).unwrap();
        let a = read_audio(&path).unwrap();
        assert_eq!((a.sample_rate, a.channels.len(), a.len()), (22050, 2, 777));
        for (got, want) in a.channels.iter().zip(&sig) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= tol as f32 * 1.01, "{enc:?}: {g} vs {w}");
            }
        }
    }
    // Out-of-range samples clip in integer PCM instead of wrapping.
    let path = dir.join("clip.wav");
    write_wav(&path, &[vec![1.5, -2.0, 0.0]], 8000, WavEncoding::Pcm16).unwrap();
    let a = read_audio(&path).unwrap();
    assert!(a.channels[0][0] > 0.999 && a.channels[0][1] < -0.999);
    // Halves of the 16-bit step round away from zero, as f64::round; past 2^16 frames (the
    // writer's buffer) the stereo interleaving stays right.
    let lsb = 1.0 / 32768.0f32;
    let mut left = vec![0.0f32; 70_000];
    left[..4].copy_from_slice(&[0.5 * lsb, -0.5 * lsb, 1.5 * lsb, -2.5 * lsb]);
    left[69_999] = 7.0 * lsb;
    let right: Vec<f32> = (0..70_000).map(|i| (i % 100) as f32 * lsb).collect();
    let path = dir.join("halves.wav");
    write_wav(&path, &[left, right.clone()], 8000, WavEncoding::Pcm16).unwrap();
    let a = read_audio(&path).unwrap();
    let steps: Vec<f32> = a.channels[0].iter().map(|x| x / lsb).collect();
    assert_eq!(&steps[..4], &[1.0, -1.0, 2.0, -3.0]);
    assert_eq!(steps[69_999], 7.0);
    assert_eq!(a.channels[1], right);
    std::fs::remove_dir_all(dir).unwrap();
}
