//! Separation: the stems of a grouping plus the residual give back the input; stereo stays
//! stereo at the input's rate and length; per-note stems partition the same sound.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};

use common::hands;
use scorenmf::io::audio::{read_audio, Audio, AudioFormat, Container, WavEncoding};
use scorenmf::io::score::Score;
use scorenmf::pipeline::{run_transcription, separate, Config, Preset};
use scorenmf::signal::synth::random_piece;
use scorenmf::tasks::separate::By;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scorenmf-sep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn rel_err(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        for (u, v) in x.iter().zip(y) {
            num += ((u - v) as f64).powi(2);
            den += (*v as f64).powi(2);
        }
    }
    (num / den).sqrt()
}

/// The sum of the WAV files in `dir` (plus the residual), each full length.
fn sum_of(dir: &Path, files: &[PathBuf]) -> Vec<Vec<f32>> {
    let mut sum: Option<Vec<Vec<f32>>> = None;
    for f in files.iter().map(|f| dir.join(f)) {
        let a = read_audio(&f).unwrap();
        match &mut sum {
            None => sum = Some(a.channels),
            Some(s) => {
                for (acc, c) in s.iter_mut().zip(&a.channels) {
                    for (x, y) in acc.iter_mut().zip(c) {
                        *x += y;
                    }
                }
            }
        }
    }
    sum.unwrap()
}

fn check(audio: &Audio, score: &Score, name: &str) {
    let config = Config::preset(Preset::Default);
    let mut out = run_transcription(audio, score, &config, |_| {}).unwrap();
    let dir = temp(name);
    let written = separate(
        &dir,
        audio,
        score,
        &config,
        &mut out,
        &[By::Instrument, By::Pitch, By::Note],
        true,
        WavEncoding::Float32,
        &|_, _| {},
    )
    .unwrap();
    let files = |kind: &str| -> Vec<PathBuf> {
        written
            .iter()
            .filter(|w| w.kind == kind || w.kind == "residual")
            .map(|w| PathBuf::from(&w.file))
            .collect()
    };
    for kind in ["instrument", "pitch", "note"] {
        let f = files(kind);
        assert!(f.len() > 1, "{name}: no {kind} stems");
        let sum = sum_of(&dir, &f);
        assert_eq!(sum.len(), audio.channels.len());
        let e = rel_err(&sum, &audio.channels);
        assert!(
            e < 1e-4,
            "{name}: {kind} stems + residual differ from the input by {e:.2e}"
        );
    }
    for w in &written {
        let a = read_audio(&dir.join(&w.file)).unwrap();
        assert_eq!(a.sample_rate, audio.sample_rate);
        assert_eq!(a.channels.len(), audio.channels.len());
        assert_eq!(a.len(), audio.len(), "{}", w.file);
    }
    // Each instrument stem holds a real share of the sound.
    let residual = read_audio(&dir.join("stems/residual.wav")).unwrap();
    let energy = |c: &[Vec<f32>]| c.iter().flatten().map(|v| (*v as f64).powi(2)).sum::<f64>();
    assert!(energy(&residual.channels) < 0.1 * energy(&audio.channels));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn chopin_stems_add_up() {
    let (audio, score) = common::chopin();
    check(&audio, &score, "chopin");
}

/// Float audio of `channels` at `sample_rate`, as a 32-bit float WAV would decode.
fn float_audio(channels: Vec<Vec<f32>>, sample_rate: u32) -> Audio {
    Audio {
        channels,
        sample_rate,
        format: AudioFormat {
            container: Container::Wav,
            bits_per_sample: Some(32),
            float: true,
        },
    }
}

#[test]
fn stereo_44100_stems_add_up() {
    let score = random_piece(6.0, 2);
    let [lh, rh] = hands(&score, 44100, 7 * 44100, 3);
    // Left hand panned left, right hand right.
    let left: Vec<f32> = lh.iter().zip(&rh).map(|(a, b)| 0.8 * a + 0.2 * b).collect();
    let right: Vec<f32> = lh.iter().zip(&rh).map(|(a, b)| 0.2 * a + 0.8 * b).collect();
    let audio = float_audio(vec![left, right], 44100);
    check(&audio, &score, "stereo");
}

/// Separation quality on a synthetic two-hand piece with known stems (the hands rendered apart
/// with different timbres, then summed): the per-hand stems score a real SDR, and the default
/// mask model (a linear-magnitude KL factorization) beats masks from the transcription's own
/// log-magnitude factorization.
#[test]
fn synthetic_hands_separate_and_linear_kl_masks_win() {
    use scorenmf::eval::stems::bss_eval_sources;
    use scorenmf::tasks::separate::MaskModel;
    let score = random_piece(20.0, 5);
    let sr = 22050;
    let truth = hands(&score, sr, 21 * sr as usize, 9);
    let mix: Vec<f32> = truth[0].iter().zip(&truth[1]).map(|(a, b)| a + b).collect();
    let audio = float_audio(vec![mix], sr);
    let mean_sdr = |model: MaskModel| {
        let mut config = Config::preset(Preset::Default);
        config.separate.model = model;
        let mut out = run_transcription(&audio, &score, &config, |_| {}).unwrap();
        let dir = temp(&format!("quality-{model:?}"));
        separate(
            &dir,
            &audio,
            &score,
            &config,
            &mut out,
            &[By::Instrument],
            false,
            WavEncoding::Float32,
            &|_, _| {},
        )
        .unwrap();
        let est: Vec<Vec<f64>> = ["lh", "rh"]
            .iter()
            .map(|k| {
                let a = read_audio(&dir.join(format!("stems/instrument/{k}.wav"))).unwrap();
                a.channels[0].iter().map(|&v| v as f64).collect()
            })
            .collect();
        std::fs::remove_dir_all(dir).unwrap();
        let refs: Vec<Vec<f64>> = truth
            .iter()
            .map(|c| c.iter().map(|&v| v as f64).collect())
            .collect();
        let s = bss_eval_sources(&refs, &est).unwrap();
        (s[0].sdr + s[1].sdr) / 2.0
    };
    let (kl, shared) = (mean_sdr(MaskModel::LinearKl), mean_sdr(MaskModel::Shared));
    eprintln!("mean SDR: linear-kl {kl:.2} dB, shared {shared:.2} dB");
    // Measured: 21.1 dB against 16.8 dB.
    assert!(kl > 15.0, "linear-kl masks: mean SDR {kl:.2} dB");
    assert!(
        kl > shared + 1.0,
        "linear-kl {kl:.2} dB vs shared {shared:.2} dB"
    );
}
