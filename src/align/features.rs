//! The alignment's features, of the recording and of the score, at [`FEATURE_RATE`] frames a
//! second: chroma (12 pitch classes, ℓ² normalized) and DLNCO (decaying locally adaptive
//! normalized chroma onsets; Ewert, Müller, Grosche, ICASSP 2009), the features synctoolbox
//! aligns with (Müller et al., JOSS 2021).
//!
//! Both come from a pitch representation E(p, n) for p = 21..=108 (A0..C8):
//! * of the recording, the STFT magnitude summed over the bins nearest each pitch, on a pitch
//!   grid tuned to the recording's estimated A4 ([`estimate_a4`]);
//! * of the score, made directly from the note list (no synthesis): each note adds its velocity
//!   to its pitch and its first harmonics' pitches, decaying like a struck string
//!   ([`score_pitch_energy`]).
//!
//! Then, identically for both:
//! * chroma c(q, n) = Σ_{p mod 12 = q} E(p, n), ℓ²-normalized; a frame with (almost) nothing
//!   in it gets the flat vector 1/√12, so that silence matches silence and rests;
//! * onsets O(p, n) = max(0, L(p, n) − L(p, n−1)) with L = ln(1 + γ E) (for the score, the
//!   note onsets themselves), folded to chroma, divided by the local maximum of their ℓ² norm
//!   over ±[`LOCAL_NORM_SECONDS`], and smoothed by the decaying kernel √(1 − k/10), k = 0..9.

use rayon::prelude::*;
use realfft::num_complex::Complex;

use crate::io::score::Score;
use crate::signal::stft::{Stft, StftParams};

/// Feature frames per second (a 20 ms hop, as synctoolbox's).
pub const FEATURE_RATE: f64 = 50.0;
/// The sample rate the recording is analysed at.
pub const SAMPLE_RATE: u32 = 22050;
/// STFT of the recording's features: 2048-sample window (93 ms), hop 441 (20 ms).
pub const STFT: StftParams = StftParams {
    n_fft: 2048,
    hop: 441,
};
/// Lowest and highest pitch of the pitch representation (A0, C8).
const LOW: u8 = 21;
const HIGH: u8 = 108;
const N_PITCH: usize = (HIGH - LOW + 1) as usize;
/// Half-width of the onsets' local normalization window, seconds.
pub const LOCAL_NORM_SECONDS: f64 = 1.5;
/// Length of the DLNCO decaying kernel, frames.
const DECAY_FRAMES: usize = 10;
/// Decay time of a score note's energy, seconds (a piano tone's fall is of this order).
pub const NOTE_DECAY_SECONDS: f64 = 1.0;
/// Relative weights of a score note's harmonics 1..=6 in its pitch energy.
pub const HARMONICS: [f64; 6] = [1.0, 0.5, 0.33, 0.25, 0.2, 0.17];

/// Chroma and DLNCO of one sequence, frame by frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub chroma: Vec<[f32; 12]>,
    pub onsets: Vec<[f32; 12]>,
}

impl Features {
    pub fn len(&self) -> usize {
        self.chroma.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chroma.is_empty()
    }

    /// Frames averaged by `factor` (chroma renormalized, onsets by their maximum): a coarser
    /// level of the multiresolution alignment.
    pub fn coarsen(&self, factor: usize) -> Features {
        if factor <= 1 {
            return self.clone();
        }
        let chroma = self
            .chroma
            .chunks(factor)
            .map(|c| {
                let mut sum = [0f32; 12];
                for f in c {
                    for q in 0..12 {
                        sum[q] += f[q];
                    }
                }
                normalized(sum, 1e-9)
            })
            .collect();
        let onsets = self
            .onsets
            .chunks(factor)
            .map(|c| {
                let mut m = [0f32; 12];
                for f in c {
                    for q in 0..12 {
                        m[q] = m[q].max(f[q]);
                    }
                }
                m
            })
            .collect();
        Features { chroma, onsets }
    }

    /// The features of a sequence with every pitch class moved up by `shift` semitones.
    pub fn shifted(&self, shift: usize) -> Features {
        let roll = |v: &[f32; 12]| std::array::from_fn(|q| v[(q + 12 - shift % 12) % 12]);
        Features {
            chroma: self.chroma.iter().map(roll).collect(),
            onsets: self.onsets.iter().map(roll).collect(),
        }
    }
}

/// Quantized chroma (synctoolbox's `quantize_chroma`, after the CENS features of Müller, Kurth,
/// Clausen, ISMIR 2005): each class's share of the frame's sum becomes 4, 3, 2, 1 or 0 by the
/// thresholds 0.4, 0.2, 0.1, 0.05, which keeps which classes sound and drops how loudly; then
/// ℓ²-normalized. A frame whose sum is at most `floor` is flat.
fn quantized(c: [f32; 12], floor: f32) -> [f32; 12] {
    let sum: f32 = c.iter().sum();
    if sum <= floor {
        return normalized([0.0; 12], 1.0);
    }
    let q = c.map(|x| match x / sum {
        r if r >= 0.4 => 4.0,
        r if r >= 0.2 => 3.0,
        r if r >= 0.1 => 2.0,
        r if r >= 0.05 => 1.0,
        _ => 0.0,
    });
    normalized(q, 1e-9)
}

/// `v / ‖v‖₂`, or the flat vector when ‖v‖₂ is below `floor`.
fn normalized(v: [f32; 12], floor: f32) -> [f32; 12] {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm <= floor {
        [1.0 / 12f32.sqrt(); 12]
    } else {
        v.map(|x| x / norm)
    }
}

/// The recording's A4 in Hz, from the deviation of its spectral peaks from the 440 Hz pitch
/// grid: each peak (a local maximum between 100 Hz and 4 kHz within 40 dB of its frame's
/// strongest, its frequency refined by parabolic interpolation on the log magnitude) votes with
/// its magnitude for its deviation in cents; the histogram, circular over ±50 cents at 1 cent,
/// smoothed over ±5 cents, gives the deviation. Frames are taken every half second.
pub fn estimate_a4(x: &[f32], stft: &Stft) -> f64 {
    let p = stft.params();
    let n_frames = p.n_frames(x.len());
    let step = (FEATURE_RATE as usize / 2).max(1);
    let picks: Vec<usize> = (0..n_frames).step_by(step).collect();
    let hist = picks
        .par_chunks(64)
        .map(|chunk| {
            let mut hist = [0f64; 100];
            for &n in chunk {
                let spec = stft.forward_range(x, n, n + 1);
                vote_peaks(spec.frame(0), p.n_fft, &mut hist);
            }
            hist
        })
        .reduce(
            || [0f64; 100],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        );
    let smoothed: Vec<f64> = (0..100)
        .map(|c| {
            (-5i32..=5)
                .map(|d| hist[(c + d).rem_euclid(100) as usize])
                .sum()
        })
        .collect();
    let best = (0..100)
        .max_by(|&a, &b| smoothed[a].total_cmp(&smoothed[b]).then(b.cmp(&a)))
        .unwrap_or(50);
    if smoothed[best] <= 0.0 {
        return 440.0;
    }
    let cents = best as f64 - 50.0;
    440.0 * 2f64.powf(cents / 1200.0)
}

/// Adds one frame's peaks to the deviation histogram (bin c = deviation + 50 cents).
fn vote_peaks(frame: &[Complex<f32>], n_fft: usize, hist: &mut [f64; 100]) {
    let bin_hz = SAMPLE_RATE as f64 / n_fft as f64;
    let mag: Vec<f64> = frame.iter().map(|c| c.norm() as f64).collect();
    let peak = mag.iter().cloned().fold(0.0, f64::max);
    if peak <= 1e-9 {
        return;
    }
    let lo = (100.0 / bin_hz) as usize;
    let hi = ((4000.0 / bin_hz) as usize).min(mag.len() - 2);
    for k in lo.max(1)..hi {
        let (a, b, c) = (mag[k - 1], mag[k], mag[k + 1]);
        if !(b > a && b >= c && b > peak * 0.01) {
            continue;
        }
        let (la, lb, lc) = (a.max(1e-12).ln(), b.ln(), c.max(1e-12).ln());
        let denom = la - 2.0 * lb + lc;
        let delta = if denom.abs() > 1e-12 {
            (0.5 * (la - lc) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let f = (k as f64 + delta) * bin_hz;
        let midi = 69.0 + 12.0 * (f / 440.0).log2();
        let dev = (midi - midi.round()) * 100.0;
        let c = ((dev + 50.0).round() as i64).rem_euclid(100) as usize;
        hist[c] += b;
    }
}

/// For each STFT bin, the pitch index (0 = A0) whose semitone band holds it, if any.
fn bin_pitches(n_fft: usize, a4: f64) -> Vec<Option<usize>> {
    let bin_hz = SAMPLE_RATE as f64 / n_fft as f64;
    (0..n_fft / 2 + 1)
        .map(|k| {
            let f = k as f64 * bin_hz;
            if f < 25.0 {
                return None;
            }
            let p = (69.0 + 12.0 * (f / a4).log2()).round();
            (p >= LOW as f64 && p <= HIGH as f64).then(|| (p as usize) - LOW as usize)
        })
        .collect()
}

/// E(p, n) of the recording `x` (mono, [`SAMPLE_RATE`]): STFT magnitudes summed per pitch,
/// frame by frame, computed in blocks so the spectrogram is never held whole.
pub fn audio_pitch_energy(x: &[f32], stft: &Stft, a4: f64) -> Vec<[f32; N_PITCH]> {
    let p = stft.params();
    let n_frames = p.n_frames(x.len());
    let map = bin_pitches(p.n_fft, a4);
    const BLOCK: usize = 512;
    let blocks: Vec<usize> = (0..n_frames).step_by(BLOCK).collect();
    // Blocks in parallel, collected in order straight into one vector (no per-block copies).
    blocks
        .par_iter()
        .flat_map_iter(|&from| {
            let to = (from + BLOCK).min(n_frames);
            let spec = stft.forward_range(x, from, to);
            let map = &map;
            (0..to - from)
                .map(move |n| {
                    let mut e = [0f32; N_PITCH];
                    for (c, m) in spec.frame(n).iter().zip(map) {
                        if let Some(i) = m {
                            e[*i] += c.norm();
                        }
                    }
                    e
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The recording's features from its pitch energies.
pub fn audio_features(energy: &[[f32; N_PITCH]]) -> Features {
    let mean = energy
        .iter()
        .flat_map(|e| e.iter())
        .map(|&v| v as f64)
        .sum::<f64>()
        / (energy.len() * N_PITCH).max(1) as f64;
    let gamma = if mean > 0.0 { 10.0 / mean } else { 1.0 };
    let log_of = |e: &[f32; N_PITCH]| e.map(|v| (1.0 + gamma * v as f64).ln() as f32);
    let mut prev = energy.first().map(log_of).unwrap_or([0.0; N_PITCH]);
    let onsets: Vec<[f32; 12]> = energy
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let mut o = [0f32; 12];
            let cur = log_of(e);
            if n > 0 {
                for p in 0..N_PITCH {
                    o[(p + LOW as usize) % 12] += (cur[p] - prev[p]).max(0.0);
                }
            }
            prev = cur;
            o
        })
        .collect();
    Features {
        chroma: chroma_of(energy),
        onsets: dlnco(&onsets),
    }
}

/// Chroma of pitch energies, quantized ([`quantized`]) and ℓ²-normalized; frames under 1e-3 of
/// the loudest frame's norm (−60 dB) are flat.
fn chroma_of(energy: &[[f32; N_PITCH]]) -> Vec<[f32; 12]> {
    let raw: Vec<[f32; 12]> = energy
        .iter()
        .map(|e| {
            let mut c = [0f32; 12];
            for (p, &v) in e.iter().enumerate() {
                c[(p + LOW as usize) % 12] += v;
            }
            c
        })
        .collect();
    let loudest = raw
        .iter()
        .map(|c| c.iter().map(|x| x * x).sum::<f32>().sqrt())
        .fold(0f32, f32::max);
    raw.into_iter()
        .map(|c| quantized(c, loudest * 1e-3))
        .collect()
}

/// DLNCO of chroma onsets: local normalization (each frame divided by the largest onset norm
/// within ±[`LOCAL_NORM_SECONDS`], at least 1 % of the largest overall), then the decaying
/// kernel √(1 − k/10), k = 0..9.
/// DLNCO of chroma onsets (see the module doc): each band minus its mean over ±[`MEAN_FRAMES`]
/// (the recording's novelty has a floor of noise between onsets, the score's has none), the
/// decaying kernel √(1 − k/10), k = 0..9, then each frame divided by the largest norm within
/// ±[`LOCAL_NORM_SECONDS`] (at least 1 % of the largest overall), so that an onset's decayed
/// peak is near 1 in both the recording and the score, whatever its loudness.
fn dlnco(onsets: &[[f32; 12]]) -> Vec<[f32; 12]> {
    let decayed = decay(&minus_local_mean(onsets, MEAN_FRAMES));
    let norms: Vec<f32> = decayed
        .iter()
        .map(|o| o.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    let global = norms.iter().cloned().fold(0f32, f32::max);
    let w = (LOCAL_NORM_SECONDS * FEATURE_RATE) as usize;
    let local = sliding_max(&norms, w);
    decayed
        .iter()
        .zip(&local)
        .map(|(o, &m)| {
            let d = m.max(global * 0.01).max(1e-12);
            o.map(|x| x / d)
        })
        .collect()
}

/// Half-width of the mean the onsets are reduced by, frames (0.2 s).
const MEAN_FRAMES: usize = 10;

/// The decaying kernel √(1 − k/10), k = 0..9, applied causally.
fn decay(v: &[[f32; 12]]) -> Vec<[f32; 12]> {
    let kernel: Vec<f32> = (0..DECAY_FRAMES)
        .map(|k| (1.0 - k as f32 / DECAY_FRAMES as f32).sqrt())
        .collect();
    (0..v.len())
        .map(|n| {
            let mut out = [0f32; 12];
            for (k, &g) in kernel.iter().enumerate() {
                if let Some(o) = n.checked_sub(k).map(|i| &v[i]) {
                    for q in 0..12 {
                        out[q] += g * o[q];
                    }
                }
            }
            out
        })
        .collect()
}

/// Each band minus its mean over ±`w` frames, half-wave rectified.
fn minus_local_mean(v: &[[f32; 12]], w: usize) -> Vec<[f32; 12]> {
    let n = v.len();
    let mut prefix = vec![[0f64; 12]; n + 1];
    for i in 0..n {
        for q in 0..12 {
            prefix[i + 1][q] = prefix[i][q] + v[i][q] as f64;
        }
    }
    (0..n)
        .map(|i| {
            let (a, b) = (i.saturating_sub(w), (i + w + 1).min(n));
            std::array::from_fn(|q| {
                let mean = (prefix[b][q] - prefix[a][q]) / (b - a) as f64;
                (v[i][q] - mean as f32).max(0.0)
            })
        })
        .collect()
}

/// max(v[n−w..=n+w]) for every n, in O(len) (monotone deque).
fn sliding_max(v: &[f32], w: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut next = 0;
    for (n, o) in out.iter_mut().enumerate() {
        while next < v.len() && next <= n + w {
            while dq.back().is_some_and(|&b| v[b] <= v[next]) {
                dq.pop_back();
            }
            dq.push_back(next);
            next += 1;
        }
        while dq.front().is_some_and(|&f| f + w < n) {
            dq.pop_front();
        }
        *o = dq.front().map_or(0.0, |&f| v[f]);
    }
    out
}

/// The score's frame of time `t` seconds.
fn frame_of(t: f64) -> usize {
    (t * FEATURE_RATE).round().max(0.0) as usize
}

/// The score's pitch energies and onsets, from its notes: a note of velocity v adds
/// v·h_k·exp(−(t − onset)/τ) to its k-th harmonic's pitch while it lasts (τ =
/// [`NOTE_DECAY_SECONDS`], h = [`HARMONICS`]), and v·h_k to that pitch's onset at its first
/// frame.
pub fn score_pitch_energy(score: &Score, n_frames: usize) -> (Vec<[f32; N_PITCH]>, Vec<[f32; 12]>) {
    let mut energy = vec![[0f32; N_PITCH]; n_frames];
    let mut onsets = vec![[0f32; 12]; n_frames];
    for note in &score.notes {
        let first = frame_of(note.onset);
        if first >= n_frames {
            continue;
        }
        let last = frame_of(note.end()).clamp(first + 1, n_frames);
        let v = note.velocity.max(0.05);
        for (k, &h) in HARMONICS.iter().enumerate() {
            let p = note.pitch as f64 + 12.0 * ((k + 1) as f64).log2();
            let p = p.round() as usize;
            if p < LOW as usize || p > HIGH as usize {
                continue;
            }
            let i = p - LOW as usize;
            for (n, e) in energy.iter_mut().enumerate().take(last).skip(first) {
                let t = (n - first) as f64 / FEATURE_RATE;
                e[i] += (v * h * (-t / NOTE_DECAY_SECONDS).exp()) as f32;
            }
            onsets[first][p % 12] += (v * h) as f32;
        }
    }
    (energy, onsets)
}

/// The score's features over `n_frames` frames.
pub fn score_features(score: &Score, n_frames: usize) -> Features {
    let (energy, onsets) = score_pitch_energy(score, n_frames);
    Features {
        chroma: chroma_of(&energy),
        onsets: dlnco(&onsets),
    }
}

/// Number of score frames: up to its last note's end, plus one.
pub fn score_frames(score: &Score) -> usize {
    frame_of(score.end()) + 1
}

/// The STFT the recording's features are computed with.
pub fn feature_stft() -> crate::error::Result<Stft> {
    Stft::single(STFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_max_matches_naive() {
        let v: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32).collect();
        for w in [0, 1, 3, 7] {
            let got = sliding_max(&v, w);
            for n in 0..v.len() {
                let lo = n.saturating_sub(w);
                let hi = (n + w).min(v.len() - 1);
                let m = v[lo..=hi].iter().cloned().fold(f32::MIN, f32::max);
                assert_eq!(got[n], m, "n {n} w {w}");
            }
        }
    }

    #[test]
    fn tuning_of_a_detuned_tone_is_found() {
        let stft = feature_stft().unwrap();
        for a4 in [432.0, 440.0, 446.0] {
            // A3, A4, E5 with a few harmonics, 4 s.
            let x: Vec<f32> = (0..SAMPLE_RATE as usize * 4)
                .map(|n| {
                    let t = n as f64 / SAMPLE_RATE as f64;
                    [0.5, 1.0, 1.5f64]
                        .iter()
                        .flat_map(|&r| (1..=4).map(move |h| (r, h)))
                        .map(|(r, h)| {
                            (2.0 * std::f64::consts::PI * a4 * r * h as f64 * t).sin() / h as f64
                        })
                        .sum::<f64>() as f32
                        * 0.1
                })
                .collect();
            let est = estimate_a4(&x, &stft);
            let cents = 1200.0 * (est / a4).log2();
            assert!(cents.abs() <= 3.0, "A4 {a4}: estimated {est}");
        }
    }

    #[test]
    fn silence_is_flat_chroma_and_a_note_lights_its_class() {
        let mut e = vec![[0f32; N_PITCH]; 3];
        e[1][(60 - LOW) as usize] = 1.0;
        let c = chroma_of(&e);
        assert!((c[0][0] - 1.0 / 12f32.sqrt()).abs() < 1e-6);
        assert!((c[1][0] - 1.0).abs() < 1e-6);
    }
}
