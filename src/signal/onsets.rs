//! Per-pitch onset novelty on a fine time grid: where, near its score onset, a note's partials
//! start to sound.
//!
//! NMF activations at the FMP hop (46 ms) are too coarse to place onsets within the 50 ms
//! tolerance of the usual evaluation, and the onset rows pick up strikes of any pitch. Instead
//! each note's onset is found on a spectral-flux novelty restricted to the note's own partials
//! (a harmonic comb; cf. the spectral-based novelty of FMP §6.1.2 and Böck & Widmer's
//! SuperFlux, DAFx 2013, for the log compression and half-wave rectification):
//!
//! ```text
//! Y(n, k)  = log(1 + γ·|X(k, n)|)                                    (fine STFT, hop ≈ 11.6 ms)
//! Δ(n, k)  = max(0, Y(n, k) − Y(n − 1, k))
//! Δ_p(n)   = Σ_{m=1}^{M} (1/m) · Σ_{k ∈ B_m(p)} Δ(n, k)
//! ```
//!
//! where B_m(p) are the bins within ±`band` (relative) of the m-th partial m·f_p, and partials
//! that collide with a partial of another note sounding at the same time can be left out. The
//! same Δ_p on a shorter window (`refine`: n_fft 1024, hop 64) then places each onset within
//! ±15 ms of the first estimate: a long window's log flux rises as soon as a sharp attack enters
//! its leading edge.

use realfft::num_complex::Complex;
use serde::Serialize;
use wide::f32x8;

use crate::model::templates::pitch_frequency;
use crate::signal::stft::{magnitude, Stft, StftParams};

/// Parameters of the onset novelty and of the onset search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct OnsetParams {
    /// STFT geometry of the novelty (a fine hop: 256 samples at 22050 Hz).
    pub stft: StftParams,
    /// Log compression γ of the magnitude.
    pub gamma: f64,
    /// Number of partials in the comb.
    pub partials: usize,
    /// Relative half-width of each partial's band.
    pub band: f64,
    /// Half-width in seconds of the window around the (offset-corrected) score onset in which
    /// the onset is searched.
    pub search: f64,
    /// Standard deviation in seconds of the Gaussian prior that favours peaks near the
    /// expected onset (peaks are weighted by it before the strongest is taken).
    pub prior_sigma: f64,
    /// Remove the score's median onset offset before the search.
    pub align_median: bool,
    /// Score notes starting within this many seconds of each other form a chord whose notes
    /// agree on a common onset (0 disables).
    pub chord_tol: f64,
    /// A second, short-window novelty that places each onset precisely within ±`refine_search`
    /// of the first estimate (the long window's steepest rise depends on the attack's shape);
    /// `None` disables.
    pub refine: Option<StftParams>,
    /// Half-width in seconds of the refinement search.
    pub refine_search: f64,
}

impl Default for OnsetParams {
    fn default() -> Self {
        OnsetParams {
            stft: StftParams {
                n_fft: 2048,
                hop: 256,
            },
            gamma: 1.0,
            partials: 12,
            band: 0.03,
            search: 0.2,
            prior_sigma: 0.1,
            align_median: true,
            chord_tol: 0.03,
            // Measured (README, transcription accuracy): on the synthetic piece the long window
            // alone places onsets up to 29 ms early (attacks out of digital silence), refined
            // at most 15 ms off; on piano recordings F is unchanged within ±0.002.
            refine: Some(StftParams {
                n_fft: 1024,
                hop: 64,
            }),
            refine_search: 0.015,
        }
    }
}

/// The frame grid of a novelty: frame count and spacing, bins and their spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub n_bins: usize,
    pub n_frames: usize,
    /// Seconds between frames.
    pub frame_time: f64,
    /// Hz between bins.
    pub freq_res: f64,
}

impl Grid {
    /// The grid of the STFT `geometry` of `len` samples at `sample_rate`.
    pub fn new(len: usize, sample_rate: u32, geometry: StftParams) -> Grid {
        Grid {
            n_bins: geometry.n_bins(),
            n_frames: geometry.n_frames(len),
            frame_time: geometry.hop as f64 / sample_rate as f64,
            freq_res: sample_rate as f64 / geometry.n_fft as f64,
        }
    }

    /// The comb of `pitch`: partials 1..=`partials` below Nyquist, bands of ±`band` relative
    /// width (at least the nearest bin), weights 1/m.
    pub fn comb(&self, pitch: u8, a4: f64, p: &OnsetParams) -> Vec<Band> {
        let f0 = pitch_frequency(pitch as f64, a4);
        (1..=p.partials)
            .map_while(|m| {
                let f = m as f64 * f0;
                let centre = (f / self.freq_res).round() as usize;
                if centre + 1 >= self.n_bins {
                    return None;
                }
                let lo = ((f * (1.0 - p.band) / self.freq_res).round() as usize).min(centre);
                let hi = ((f * (1.0 + p.band) / self.freq_res).round() as usize)
                    .max(centre)
                    .min(self.n_bins - 1);
                Some(Band {
                    lo,
                    hi,
                    weight: 1.0 / m as f32,
                    freq: f,
                })
            })
            .collect()
    }

    /// The time of a novelty peak at (fractional) frame `pos`. Δ(n) is the rise from frame
    /// n − 1 to frame n (centred at (n − 1)·hop and n·hop), so it is placed half a hop back.
    pub fn onset_time(&self, pos: f64) -> f64 {
        (pos - 0.5).max(0.0) * self.frame_time
    }

    /// The frame whose novelty describes an onset at time `t` (the inverse of
    /// [`Grid::onset_time`]), clipped to the frames.
    pub fn frame_at(&self, t: f64) -> usize {
        ((t / self.frame_time + 0.5).round().max(0.0) as usize).min(self.n_frames.saturating_sub(1))
    }
}

/// Weight × mean of Δ over each band of `comb`, for the frame `delta`.
fn band_values<'a>(comb: &'a [Band], delta: &'a [f32]) -> impl Iterator<Item = f32> + 'a {
    comb.iter()
        .map(|b| b.weight * delta[b.lo..=b.hi].iter().sum::<f32>() / (b.hi - b.lo + 1) as f32)
}

/// The half-wave rectified log-magnitude increase Δ(n, k) of a whole signal, frame by frame
/// (K × N floats: for short signals and as the reference of the tests; the transcription uses a
/// [`NoveltyBank`], whose memory follows the notes, not the recording's length).
pub struct Flux {
    pub grid: Grid,
    /// `data[n * n_bins + k]` = Δ(n, k); frame 0 is all zero.
    data: Vec<f32>,
}

/// One band of a comb: bins [lo, hi] with a weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub lo: usize,
    pub hi: usize,
    pub weight: f32,
    /// The partial's centre frequency in Hz.
    pub freq: f64,
}

/// Y = log(1 + γ|X|) of the frames of `spec`, on the bins of `bins` (sorted, disjoint ranges
/// below `n_bins`; the other bins of each frame are left zero), then Δ in place (from the last
/// frame back, so each difference reads the previous frame's Y before it is overwritten); the
/// first frame of `spec` only serves as the previous of the second and is dropped unless
/// `first_is_zero`, in which case it is kept as an all-zero Δ (frame 0 of a signal). Output:
/// frame-major, `n_bins` per frame.
fn log_flux(
    spec: &crate::signal::stft::Spectrogram,
    gamma: f32,
    n_bins: usize,
    bins: &[std::ops::Range<usize>],
    first_is_zero: bool,
) -> Vec<f32> {
    let mut data = vec![0f32; spec.n_frames * n_bins];
    for (n, y) in data.chunks_exact_mut(n_bins.max(1)).enumerate() {
        let frame = spec.frame(n);
        for r in bins {
            log_magnitude(&mut y[r.clone()], &frame[r.clone()], gamma);
        }
    }
    for n in (1..spec.n_frames).rev() {
        let (before, here) = data.split_at_mut(n * n_bins);
        let prev = &before[(n - 1) * n_bins..];
        for r in bins {
            for (y, p) in here[r.clone()].iter_mut().zip(&prev[r.clone()]) {
                *y = (*y - p).max(0.0);
            }
        }
    }
    if first_is_zero {
        if let Some(first) = data.get_mut(..n_bins) {
            first.fill(0.0);
        }
    } else {
        data.drain(..n_bins.min(data.len()));
    }
    data
}

/// y = ln(1 + γ·|c|) for the bins `c`, eight at a time: `wide`'s vectorized `ln`, within 2 ulp
/// of the correctly rounded value (a libm's scalar `logf` took most of the novelty's time).
fn log_magnitude(y: &mut [f32], c: &[Complex<f32>], gamma: f32) {
    let g = f32x8::splat(gamma);
    for (y, c) in y.chunks_mut(8).zip(c.chunks(8)) {
        let mut m = [0f32; 8];
        for (m, c) in m.iter_mut().zip(c) {
            *m = magnitude(*c);
        }
        let l = (g * f32x8::from(m) + f32x8::ONE).ln().to_array();
        y.copy_from_slice(&l[..y.len()]);
    }
}

/// The bins the bands of `combs` read, as sorted, disjoint ranges.
fn bins_of<'a>(combs: impl Iterator<Item = &'a [Band]>) -> Vec<std::ops::Range<usize>> {
    let mut spans: Vec<(usize, usize)> = combs.flatten().map(|b| (b.lo, b.hi + 1)).collect();
    spans.sort_unstable();
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for (lo, hi) in spans {
        match merged.last_mut() {
            Some(last) if lo <= last.end => last.end = last.end.max(hi),
            _ => merged.push(lo..hi),
        }
    }
    merged
}

impl Flux {
    /// Computes Y and Δ of `x` (sampled at `sample_rate`) on the STFT `geometry`.
    pub fn new(
        x: &[f32],
        sample_rate: u32,
        geometry: StftParams,
        p: &OnsetParams,
    ) -> crate::Result<Flux> {
        let spec = Stft::single(geometry)?.forward(x);
        let grid = Grid::new(x.len(), sample_rate, geometry);
        let all = std::iter::once(0..grid.n_bins).collect::<Vec<_>>();
        let data = log_flux(&spec, p.gamma as f32, grid.n_bins, &all, true);
        Ok(Flux { grid, data })
    }

    /// Δ_comb(n) for frames n in `from..to`.
    pub fn novelty(&self, comb: &[Band], from: usize, to: usize) -> Vec<f32> {
        let nb = self.grid.n_bins;
        (from..to.min(self.grid.n_frames))
            .map(|n| band_values(comb, &self.data[n * nb..(n + 1) * nb]).sum())
            .collect()
    }
}

impl std::ops::Deref for Flux {
    type Target = Grid;
    fn deref(&self) -> &Grid {
        &self.grid
    }
}

/// The comb novelty of a list of requests (a comb and a window of frames each: one per score
/// note), computed block by block over the signal without ever holding the whole Δ, and within a
/// block only over the frames some window covers: memory and work follow the requests, not the
/// length of the recording, and blocks run in parallel.
pub struct NoveltyBank {
    pub grid: Grid,
    combs: Vec<Vec<Band>>,
    /// Frames `windows[i].0..windows[i].1` of request i.
    windows: Vec<(usize, usize)>,
    /// Request i: weight × band mean of Δ, frame by frame (window length × bands).
    values: Vec<Vec<f32>>,
}

/// Frames per block of the bank's computation.
const BANK_BLOCK: usize = 1024;

impl NoveltyBank {
    /// Computes the requests (comb, first frame, end frame) on `x`; `grid` must be
    /// `Grid::new(x.len(), sample_rate, geometry)` (the combs were made on it).
    pub fn new(
        x: &[f32],
        grid: Grid,
        geometry: StftParams,
        p: &OnsetParams,
        requests: Vec<(Vec<Band>, usize, usize)>,
    ) -> crate::Result<NoveltyBank> {
        use rayon::prelude::*;
        let stft = Stft::single(geometry)?;
        let n = grid.n_frames;
        let windows: Vec<(usize, usize)> = requests
            .iter()
            .map(|r| (r.1.min(n), r.2.min(n).max(r.1.min(n))))
            .collect();
        let combs: Vec<Vec<Band>> = requests.into_iter().map(|r| r.0).collect();
        let top = combs.iter().flatten().map(|b| b.hi + 1).max().unwrap_or(0);
        // Requests ordered by their first frame, for finding those that meet a block.
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&i| windows[i].0);
        let longest = windows.iter().map(|w| w.1 - w.0).max().unwrap_or(0);
        let blocks: Vec<Vec<(usize, usize, Vec<f32>)>> = (0..n.div_ceil(BANK_BLOCK))
            .into_par_iter()
            .map(|b| {
                let (c0, c1) = (b * BANK_BLOCK, ((b + 1) * BANK_BLOCK).min(n));
                // Requests with first < c1 and end > c0: first lies in (c0 − longest, c1).
                let lo = order.partition_point(|&i| windows[i].0 + longest <= c0);
                let hi = order.partition_point(|&i| windows[i].0 < c1);
                let meet: Vec<usize> = order[lo..hi]
                    .iter()
                    .copied()
                    .filter(|&i| windows[i].1 > c0 && windows[i].1 > windows[i].0)
                    .collect();
                if meet.is_empty() || top == 0 {
                    return Vec::new();
                }
                // Only the frames some request needs: the union of their windows in the block.
                let mut spans: Vec<(usize, usize)> = meet
                    .iter()
                    .map(|&i| (windows[i].0.max(c0), windows[i].1.min(c1)))
                    .collect();
                spans.sort_unstable();
                let mut merged: Vec<(usize, usize)> = Vec::new();
                for (a, e) in spans {
                    match merged.last_mut() {
                        Some(last) if a <= last.1 => last.1 = last.1.max(e),
                        _ => merged.push((a, e)),
                    }
                }
                // Only the bins their bands read.
                let bins = bins_of(meet.iter().map(|&i| combs[i].as_slice()));
                let deltas: Vec<Vec<f32>> = merged
                    .iter()
                    .map(|&(a, e)| {
                        let spec = stft.forward_range(x, a.saturating_sub(1), e);
                        log_flux(&spec, p.gamma as f32, top, &bins, a == 0)
                    })
                    .collect();
                meet.into_iter()
                    .map(|i| {
                        let (a, e) = (windows[i].0.max(c0), windows[i].1.min(c1));
                        let s = merged.partition_point(|m| m.1 <= a);
                        let (s0, delta) = (merged[s].0, &deltas[s]);
                        let mut v = Vec::with_capacity((e - a) * combs[i].len());
                        for f in a..e {
                            let d = &delta[(f - s0) * top..(f - s0 + 1) * top];
                            v.extend(band_values(&combs[i], d));
                        }
                        (i, a, v)
                    })
                    .collect()
            })
            .collect();
        let mut values: Vec<Vec<f32>> = windows
            .iter()
            .zip(&combs)
            .map(|(w, c)| Vec::with_capacity((w.1 - w.0) * c.len()))
            .collect();
        // Blocks in time order append each request's frames in order.
        for block in blocks {
            for (i, a, v) in block {
                debug_assert_eq!(values[i].len(), (a - windows[i].0) * combs[i].len());
                values[i].extend_from_slice(&v);
            }
        }
        Ok(NoveltyBank {
            grid,
            combs,
            windows,
            values,
        })
    }

    /// The comb of request `i`.
    pub fn comb(&self, i: usize) -> &[Band] {
        &self.combs[i]
    }

    /// Δ_comb(n) of request `i` for frames n in `from..to`, over the bands `bands` (indices into
    /// its comb; `None`: all). Frames outside the request's window count 0.
    pub fn novelty(&self, i: usize, bands: Option<&[usize]>, from: usize, to: usize) -> Vec<f32> {
        let (a, e) = self.windows[i];
        let nb = self.combs[i].len();
        (from..to.min(self.grid.n_frames))
            .map(|f| {
                if f < a || f >= e {
                    return 0.0;
                }
                let row = &self.values[i][(f - a) * nb..(f - a + 1) * nb];
                match bands {
                    None => row.iter().sum(),
                    Some(idx) => idx.iter().map(|&j| row[j]).sum(),
                }
            })
            .collect()
    }
}

impl std::ops::Deref for NoveltyBank {
    type Target = Grid;
    fn deref(&self) -> &Grid {
        &self.grid
    }
}

/// The indices of the bands of `comb` whose partial lies farther than `tol` (relative) from
/// every frequency in `others`.
pub fn exclusive(comb: &[Band], others: &[f64], tol: f64) -> Vec<usize> {
    (0..comb.len())
        .filter(|&i| {
            others
                .iter()
                .all(|&f| (f - comb[i].freq).abs() > tol * comb[i].freq)
        })
        .collect()
}

/// A peak of a novelty curve: its interpolated position (in frames, relative to the curve's
/// start) and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    pub pos: f64,
    pub height: f32,
}

/// The local maxima of `curve` (strictly higher than the left neighbour, at least as high as the
/// right one), each placed with sub-frame precision by fitting a parabola through it and its
/// neighbours: δ = ½ (y₋₁ − y₊₁) / (y₋₁ − 2y₀ + y₊₁).
pub fn peaks(curve: &[f32]) -> Vec<Peak> {
    let mut out = Vec::new();
    for i in 0..curve.len() {
        let y0 = curve[i];
        let left = if i > 0 {
            curve[i - 1]
        } else {
            f32::NEG_INFINITY
        };
        let right = curve.get(i + 1).copied().unwrap_or(f32::NEG_INFINITY);
        if y0 > left && y0 >= right && y0 > 0.0 {
            let mut pos = i as f64;
            if i > 0 && i + 1 < curve.len() {
                let (a, b, c) = (left as f64, y0 as f64, right as f64);
                let den = a - 2.0 * b + c;
                if den < 0.0 {
                    pos += (0.5 * (a - c) / den).clamp(-0.5, 0.5);
                }
            }
            out.push(Peak { pos, height: y0 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parabolic_peak_position() {
        // Samples of −(x − 2.3)² + 10 at x = 0..5: the peak is at 2.3.
        let curve: Vec<f32> = (0..5).map(|x| 10.0 - (x as f32 - 2.3).powi(2)).collect();
        let p = peaks(&curve);
        assert_eq!(p.len(), 1);
        assert!((p[0].pos - 2.3).abs() < 1e-6, "{}", p[0].pos);
    }

    #[test]
    fn novelty_rises_at_a_tone_onset_on_its_comb_only() {
        let sr = 22050;
        let onset = 11025; // 0.5 s
        let f0 = pitch_frequency(60.0, 440.0);
        let x: Vec<f32> = (0..sr as usize)
            .map(|i| {
                if i < onset {
                    0.0
                } else {
                    let t = i as f64 / sr as f64;
                    (1..=5)
                        .map(|m| (2.0 * std::f64::consts::PI * m as f64 * f0 * t).sin() / m as f64)
                        .sum::<f64>() as f32
                        * 0.3
                }
            })
            .collect();
        let p = OnsetParams::default();
        let flux = Flux::new(&x, sr, p.stft, &p).unwrap();
        let own = flux.novelty(&flux.comb(60, 440.0, &p), 0, flux.n_frames);
        let other = flux.novelty(&flux.comb(66, 440.0, &p), 0, flux.n_frames);
        let best = peaks(&own)
            .into_iter()
            .max_by(|a, b| a.height.total_cmp(&b.height))
            .unwrap();
        let t = flux.onset_time(best.pos);
        // The steepest rise of the log energy comes while the onset enters the 93 ms window.
        assert!((t - 0.5).abs() < 0.05, "onset found at {t}");
        let other_max = other.iter().cloned().fold(0.0f32, f32::max);
        // The abrupt start leaks into every band; the note's own comb still rises twice as much.
        assert!(
            other_max < 0.5 * best.height,
            "{other_max} vs {}",
            best.height
        );
    }

    #[test]
    fn the_bank_gives_the_whole_flux_novelty_in_each_window() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let sr = 22050;
        // Noise bursts, so every band moves; long enough for several bank blocks.
        let x: Vec<f32> = (0..sr as usize * 30)
            .map(|i| {
                if (i / 3000) % 3 == 0 {
                    rng.random::<f32>() - 0.5
                } else {
                    0.0
                }
            })
            .collect();
        let p = OnsetParams::default();
        let flux = Flux::new(&x, sr, p.stft, &p).unwrap();
        let n = flux.n_frames;
        // Separate, nested, overlapping, adjacent, empty, across a block's end, past the end.
        let windows = [
            (0, 40),
            (1000, 1100),
            (1020, 1030),
            (300, 310),
            (305, 320),
            (320, 330),
            (500, 500),
            (2040, 2100),
            (n - 30, n + 50),
        ];
        let requests: Vec<_> = windows
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| (flux.comb(50 + 3 * i as u8, 440.0, &p), a, b))
            .collect();
        let bank = NoveltyBank::new(&x, flux.grid, p.stft, &p, requests.clone()).unwrap();
        let mut moving = 0;
        for (i, (comb, a, b)) in requests.iter().enumerate() {
            let whole = flux.novelty(comb, *a, *b);
            let got = bank.novelty(i, None, *a, *b);
            assert_eq!(whole.len(), got.len());
            for (u, v) in whole.iter().zip(&got) {
                assert!(
                    (u - v).abs() <= 1e-5 * u.abs().max(1.0),
                    "request {i}: {u} vs {v}"
                );
            }
            moving += whole.iter().any(|&u| u > 0.0) as usize;
            let some = [0usize, 2];
            let part = bank.novelty(i, Some(&some), *a, *b);
            let sub: Vec<Band> = some.iter().map(|&j| comb[j]).collect();
            assert_eq!(part.len(), flux.novelty(&sub, *a, *b).len());
        }
        assert!(moving >= 6, "only {moving} windows see the noise");
        // Outside its window a request reads 0.
        assert_eq!(bank.novelty(1, None, 990, 1000), vec![0.0; 10]);
    }

    /// The vectorized log compression against the correctly rounded logarithm, over the range
    /// of magnitudes an STFT gives (and zero), including lengths that leave a partial chunk.
    #[test]
    fn log_magnitude_is_within_two_ulp() {
        let mut state = 12345u64;
        for len in [1, 7, 8, 9, 1000] {
            let c: Vec<Complex<f32>> = (0..len)
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let e = (state >> 40) as f32 / (1u64 << 24) as f32 * 16.0 - 10.0;
                    let a = if i % 5 == 0 { 0.0 } else { 10f32.powf(e) };
                    Complex::new(a * 0.6, -a * 0.8)
                })
                .collect();
            for gamma in [1.0f32, 100.0] {
                let mut y = vec![f32::NAN; len];
                log_magnitude(&mut y, &c, gamma);
                for (y, c) in y.iter().zip(&c) {
                    // ln of the f32 argument 1 + γ|c|, as the scalar f32 `ln` takes it.
                    let want = ((1.0 + gamma * magnitude(*c)) as f64).ln();
                    let ulp = f32::EPSILON as f64 * want.abs().max(f32::MIN_POSITIVE as f64);
                    assert!(
                        (*y as f64 - want).abs() <= 2.0 * ulp,
                        "{c} γ {gamma}: {y} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn exclusive_drops_colliding_partials() {
        let comb = [
            Band {
                lo: 1,
                hi: 2,
                weight: 1.0,
                freq: 100.0,
            },
            Band {
                lo: 3,
                hi: 4,
                weight: 0.5,
                freq: 200.0,
            },
        ];
        let kept = exclusive(&comb, &[201.0, 400.0], 0.02);
        assert_eq!(kept, vec![0]);
    }
}
