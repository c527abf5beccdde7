//! Short-time Fourier transform and its inverse (FMP §2.5.3, `librosa.stft` / `librosa.istft`).
//!
//! Forward, for frame n and bin k (window w of length N = `n_fft`, hop H, centered frames):
//!
//! ```text
//! X(k, n) = Σ_{m=0}^{N−1} x̃(m + nH) · w(m) · e^{−2πikm/N},   k = 0..N/2
//! ```
//!
//! where x̃ is the signal with N/2 zeros added on both sides (librosa ≥ 0.10's default
//! `pad_mode="constant"`), so frame n is centered on sample nH, and w is the periodic Hann window
//! w(m) = ½ − ½ cos(2πm/N) (`scipy.signal.get_window("hann", N)`). There are 1 + ⌊(L + 2⌊N/2⌋ −
//! N)/H⌋ frames for L samples.
//!
//! Inverse: weighted overlap-add (Griffin & Lim 1984, as in `librosa.istft`):
//!
//! ```text
//! y(t) = Σ_n w(t − nH) · IDFT(X(·, n))(t − nH)  /  Σ_n w²(t − nH)
//! ```
//!
//! which gives back any signal from its unmodified STFT, trimmed to the requested length.
//! The transforms run in f64 ([`Stft::new`]) or f32 ([`Stft::single`]) with realfft; the spectra
//! are stored as `Complex<f32>`.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::num_traits::Float;
use realfft::{ComplexToReal, FftNum, RealFftPlanner, RealToComplex};
use serde::Serialize;

use crate::error::{Error, Result};

/// Frame geometry of an STFT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StftParams {
    /// Window and FFT length in samples.
    pub n_fft: usize,
    /// Hop between frames in samples.
    pub hop: usize,
}

impl Default for StftParams {
    /// The FMP notebooks' C8S3 setting: 2048 / 1024 at 22050 Hz.
    fn default() -> Self {
        StftParams {
            n_fft: 2048,
            hop: 1024,
        }
    }
}

impl StftParams {
    /// Number of frequency bins, N/2 + 1.
    pub fn n_bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Number of centered frames for a signal of `len` samples.
    pub fn n_frames(&self, len: usize) -> usize {
        let padded = len + 2 * (self.n_fft / 2);
        if padded < self.n_fft {
            0
        } else {
            1 + (padded - self.n_fft) / self.hop
        }
    }
}

/// A complex spectrogram: `n_frames` frames of `n_bins` bins, stored frame by frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    pub params: StftParams,
    pub n_bins: usize,
    pub n_frames: usize,
    /// `data[n * n_bins + k]` = X(k, n).
    pub data: Vec<Complex<f32>>,
}

impl Spectrogram {
    /// The spectrum of frame `n`.
    pub fn frame(&self, n: usize) -> &[Complex<f32>] {
        &self.data[n * self.n_bins..(n + 1) * self.n_bins]
    }
}

/// A planned STFT of fixed geometry: build once, transform many signals.
pub struct Stft {
    params: StftParams,
    /// The window in f64, for the inverse's normalization Σ w².
    window: Vec<f64>,
    plans: Plans,
}

/// The transforms of an [`Stft`] in its arithmetic.
enum Plans {
    Double(Plan<f64>),
    Single(Plan<f32>),
}

/// Forward and inverse real FFTs of one length and the window, in `T`.
struct Plan<T: Sample> {
    window: Vec<T>,
    forward: Arc<dyn RealToComplex<T>>,
    inverse: Arc<dyn ComplexToReal<T>>,
}

/// The float types the transforms run in.
trait Sample: FftNum + Float {
    fn of_f32(x: f32) -> Self;
    fn of_f64(x: f64) -> Self;
    fn as_f32(self) -> f32;
    fn as_f64(self) -> f64;
}

impl Sample for f32 {
    fn of_f32(x: f32) -> Self {
        x
    }
    fn of_f64(x: f64) -> Self {
        x as f32
    }
    fn as_f32(self) -> f32 {
        self
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Sample for f64 {
    fn of_f32(x: f32) -> Self {
        x as f64
    }
    fn of_f64(x: f64) -> Self {
        x
    }
    fn as_f32(self) -> f32 {
        self as f32
    }
    fn as_f64(self) -> f64 {
        self
    }
}

impl<T: Sample> Plan<T> {
    fn new(window: &[f64]) -> Plan<T> {
        let mut planner = RealFftPlanner::<T>::new();
        Plan {
            window: window.iter().map(|&w| T::of_f64(w)).collect(),
            forward: planner.plan_fft_forward(window.len()),
            inverse: planner.plan_fft_inverse(window.len()),
        }
    }

    /// Frames `from..to` of the STFT of `x`, appended to `data` (see [`Stft::forward_range`]).
    fn forward_range(
        &self,
        params: StftParams,
        x: &[f32],
        from: usize,
        to: usize,
        data: &mut Vec<Complex<f32>>,
    ) {
        let StftParams { n_fft, hop } = params;
        let pad = (n_fft / 2) as isize;
        let mut frame = self.forward.make_input_vec();
        let mut spectrum = self.forward.make_output_vec();
        let mut scratch = self.forward.make_scratch_vec();
        for n in from..to {
            // Samples start + m for m in 0..n_fft; those outside x are zero: the window covers
            // x[lo..hi] with frame[m0..m0 + (hi − lo)].
            let start = (n * hop) as isize - pad;
            let lo = start.clamp(0, x.len() as isize) as usize;
            let hi = (start + n_fft as isize).clamp(0, x.len() as isize) as usize;
            frame.fill(T::zero());
            if lo < hi {
                // lo = max(start, 0) here, so m0 ≥ 0 and m0 + (hi − lo) ≤ n_fft.
                let m0 = (lo as isize - start) as usize;
                let m1 = m0 + (hi - lo);
                for ((f, &w), &s) in frame[m0..m1]
                    .iter_mut()
                    .zip(&self.window[m0..m1])
                    .zip(&x[lo..hi])
                {
                    *f = T::of_f32(s) * w;
                }
            }
            self.forward
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .expect("buffer sizes come from the plan");
            data.extend(
                spectrum
                    .iter()
                    .map(|c| Complex::new(c.re.as_f32(), c.im.as_f32())),
            );
        }
    }

    /// The windowed overlap-add of the inverse transforms of `frames` (`n_bins` each), frame i
    /// at i·hop: Σ_i w(u − i·hop) · IDFT(X_i)(u − i·hop), not yet divided by Σ w².
    fn overlap_add(&self, params: StftParams, frames: &[Complex<f32>], y: &mut [T]) {
        let StftParams { n_fft, hop } = params;
        let n_bins = params.n_bins();
        let mut spectrum = self.inverse.make_input_vec();
        let mut frame = self.inverse.make_output_vec();
        let mut scratch = self.inverse.make_scratch_vec();
        let scale = T::one() / T::of_f64(n_fft as f64);
        for (i, bins) in frames.chunks_exact(n_bins).enumerate() {
            for (s, c) in spectrum.iter_mut().zip(bins) {
                *s = Complex::new(T::of_f32(c.re), T::of_f32(c.im));
            }
            // A real signal's DC and Nyquist bins are real; drop any imaginary rounding.
            spectrum[0].im = T::zero();
            if n_fft % 2 == 0 {
                spectrum[n_fft / 2].im = T::zero();
            }
            self.inverse
                .process_with_scratch(&mut spectrum, &mut frame, &mut scratch)
                .expect("buffer sizes come from the plan");
            let off = i * hop;
            for (y, (&v, &w)) in y[off..off + n_fft]
                .iter_mut()
                .zip(frame.iter().zip(&self.window))
            {
                *y = *y + v * scale * w;
            }
        }
    }
}

impl Stft {
    /// An STFT whose transforms run in f64 (as numpy's FFT, which librosa calls: the
    /// spectrogram the factorization reads matches librosa's to ~1e-7, `tests/stft_librosa.rs`).
    pub fn new(params: StftParams) -> Result<Stft> {
        Self::build(params, |w| Plans::Double(Plan::new(w)))
    }

    /// An STFT whose transforms run in f32: about twice as fast, with relative rounding errors
    /// of ~1e-7 instead of ~1e-16, far below what the onset novelty or a stem written as 16-bit
    /// or f32 samples can show.
    pub fn single(params: StftParams) -> Result<Stft> {
        Self::build(params, |w| Plans::Single(Plan::new(w)))
    }

    /// Checks the geometry, then plans the transforms for its window.
    fn build(params: StftParams, plans: impl FnOnce(&[f64]) -> Plans) -> Result<Stft> {
        if params.n_fft < 2 || params.hop == 0 || params.hop > params.n_fft {
            return Err(Error::Param(format!(
                "STFT needs n_fft ≥ 2 and 0 < hop ≤ n_fft (got n_fft {}, hop {})",
                params.n_fft, params.hop
            )));
        }
        let window = hann(params.n_fft);
        Ok(Stft {
            params,
            plans: plans(&window),
            window,
        })
    }

    pub fn params(&self) -> StftParams {
        self.params
    }

    /// The STFT of `x` (see the module documentation for the formula), computed in parallel
    /// over blocks of frames.
    pub fn forward(&self, x: &[f32]) -> Spectrogram {
        use rayon::prelude::*;
        const BLOCK: usize = 256;
        let n_frames = self.params.n_frames(x.len());
        let blocks: Vec<Spectrogram> = (0..n_frames.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| self.forward_range(x, b * BLOCK, ((b + 1) * BLOCK).min(n_frames)))
            .collect();
        let mut data = Vec::with_capacity(n_frames * self.params.n_bins());
        for b in blocks {
            data.extend_from_slice(&b.data);
        }
        Spectrogram {
            params: self.params,
            n_bins: self.params.n_bins(),
            n_frames,
            data,
        }
    }

    /// Frames `from..to` of the STFT of `x` (the spectrogram's frame 0 is frame `from`); frames
    /// past the end of the full STFT are computed like the last ones, from zero padding.
    pub fn forward_range(&self, x: &[f32], from: usize, to: usize) -> Spectrogram {
        let n_bins = self.params.n_bins();
        let n_frames = to.saturating_sub(from);
        let mut data = Vec::with_capacity(n_frames * n_bins);
        match &self.plans {
            Plans::Double(p) => p.forward_range(self.params, x, from, to, &mut data),
            Plans::Single(p) => p.forward_range(self.params, x, from, to, &mut data),
        }
        Spectrogram {
            params: self.params,
            n_bins,
            n_frames,
            data,
        }
    }

    /// The inverse STFT by weighted overlap-add, `length` samples long (the length of the signal
    /// the spectrogram came from, so odd lengths come back exactly).
    pub fn inverse(&self, spec: &Spectrogram, length: usize) -> Vec<f32> {
        assert_eq!(
            spec.params, self.params,
            "spectrogram of another STFT geometry"
        );
        let (start, mut y) = self.inverse_frames(&spec.data, 0, spec.n_frames, length);
        debug_assert_eq!(start, 0);
        y.resize(length, 0.0);
        y
    }

    /// The inverse of frames `first .. first + m` of an STFT with `n_frames` frames of a signal of
    /// `length` samples (`frames` holds the m frames' bins, frame by frame), all other frames
    /// taken as zero: returns the first sample index and the samples those frames reach. The
    /// normalization Σ w² counts every frame of the full STFT, so pieces inverted separately
    /// add up to the inverse of the whole.
    pub fn inverse_frames(
        &self,
        frames: &[Complex<f32>],
        first: usize,
        n_frames: usize,
        length: usize,
    ) -> (usize, Vec<f32>) {
        let StftParams { n_fft, hop } = self.params;
        let m = frames.len() / self.params.n_bins();
        let pad = n_fft / 2;
        // Padded-signal coordinates u = t + pad; frame n covers u ∈ [n·hop, n·hop + n_fft).
        let u0 = first * hop;
        let u1 = (first + m.max(1) - 1) * hop + n_fft;
        let start = u0.saturating_sub(pad).min(length);
        let end = u1.saturating_sub(pad).min(length).max(start);
        let out = match &self.plans {
            Plans::Double(p) => {
                let mut y = vec![0.0f64; u1 - u0];
                p.overlap_add(self.params, frames, &mut y);
                self.normalize(&y, u0, start..end, n_frames)
            }
            Plans::Single(p) => {
                let mut y = vec![0.0f32; u1 - u0];
                p.overlap_add(self.params, frames, &mut y);
                self.normalize(&y, u0, start..end, n_frames)
            }
        };
        (start, out)
    }

    /// Samples `t` in `range` of the overlap-add `y` (which starts at padded position `u0`)
    /// divided by Σ w², the sum over every frame of the full STFT (`n_frames`) that covers t.
    fn normalize<T: Sample>(
        &self,
        y: &[T],
        u0: usize,
        range: std::ops::Range<usize>,
        n_frames: usize,
    ) -> Vec<f32> {
        let StftParams { n_fft, hop } = self.params;
        let pad = n_fft / 2;
        let tiny = f32::MIN_POSITIVE as f64;
        // Σ w(u − n·hop)² over the frames n = lo..=hi that cover u, in that order. Where hop
        // divides n_fft and all n_fft / hop frames do (away from the ends), it depends only on
        // u mod hop: those sums, added in the same order, are taken once.
        let wss_of = |u: usize, lo: usize, hi: usize| -> f64 {
            (lo..=hi).map(|n| self.window[u - n * hop].powi(2)).sum()
        };
        let full = n_fft / hop;
        let periodic: Vec<f64> = if n_fft % hop == 0 {
            (0..hop)
                .map(|r| wss_of((full - 1) * hop + r, 0, full - 1))
                .collect()
        } else {
            Vec::new()
        };
        range
            .map(|t| {
                let u = t + pad;
                let lo = (u + 1).saturating_sub(n_fft).div_ceil(hop);
                let hi = (u / hop).min(n_frames.saturating_sub(1));
                let wss = if !periodic.is_empty() && hi + 1 == lo + full && u >= (full - 1) * hop {
                    periodic[u % hop]
                } else {
                    wss_of(u, lo, hi)
                };
                let v = y[u - u0].as_f64();
                if wss > tiny {
                    (v / wss) as f32
                } else {
                    v as f32
                }
            })
            .collect()
    }
}

/// |c| = √(re² + im²) of an STFT bin, the squares and their sum in f64 (exact squares, one
/// rounding of the sum), then the square root rounded to f32. No overflow for any finite bin,
/// the same bits on every platform (a libm's `hypotf` may differ in the last bit), and loops of
/// it vectorize. On glibc 2.35 it gives `hypotf`'s bits: 0 differences in 2·10⁸ random pairs.
#[inline(always)]
pub fn magnitude(c: Complex<f32>) -> f32 {
    let (re, im) = (c.re as f64, c.im as f64);
    (re * re + im * im).sqrt() as f32
}

/// The periodic Hann window of length `n`: w(m) = ½ − ½ cos(2πm/n).
pub fn hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|m| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * m as f64 / n as f64).cos())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let x = crate::signal::synth::white_noise(n, seed);
        x.into_iter().map(|v| v as f32).collect()
    }

    fn rel_err(a: &[f32], b: &[f32]) -> f64 {
        let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
        (num / den).sqrt()
    }

    #[test]
    fn magnitude_is_the_rounded_modulus_without_overflow() {
        assert_eq!(magnitude(Complex::new(3.0, -4.0)), 5.0);
        assert_eq!(magnitude(Complex::new(0.0, 0.0)), 0.0);
        // Squares past f32::MAX: still the modulus, not ∞.
        let big = magnitude(Complex::new(3e30, 4e30));
        assert!((big / 5e30 - 1.0).abs() < 1e-6, "{big}");
        // Within half an ulp of the f64 modulus … and close to libm's hypot.
        for (re, im) in [(1e-30f32, 2e-31f32), (0.1, 0.7), (-123.456, 7.5e-3)] {
            let m = magnitude(Complex::new(re, im));
            let exact = (re as f64).hypot(im as f64);
            assert!((m as f64 - exact).abs() <= exact * f32::EPSILON as f64 / 2.0 * 1.01);
            assert!((m - re.hypot(im)).abs() <= m * f32::EPSILON);
        }
    }

    #[test]
    fn frame_count_matches_librosa() {
        let p = StftParams::default();
        assert_eq!(p.n_frames(234_832), 230); // the Chopin excerpt
        assert_eq!(p.n_frames(1024), 2);
        assert_eq!(p.n_frames(1023), 1);
        assert_eq!(p.n_frames(0), 1);
    }

    #[test]
    fn a_sine_peaks_in_its_bin() {
        let stft = Stft::new(StftParams::default()).unwrap();
        let f = 20.0 * 22050.0 / 2048.0; // exactly bin 20
        let x: Vec<f32> = (0..22050)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / 22050.0).sin() as f32)
            .collect();
        let s = stft.forward(&x);
        let mid = s.frame(s.n_frames / 2);
        let peak = (0..s.n_bins)
            .max_by(|&a, &b| mid[a].norm().total_cmp(&mid[b].norm()))
            .unwrap();
        assert_eq!(peak, 20);
        // Hann: the amplitude-1 sine gives N/4 at its bin.
        assert!((mid[20].norm() - 512.0).abs() < 0.5, "{}", mid[20].norm());
    }

    /// Every frame, at the start, inside, across the end and wholly past it, against a direct
    /// DFT of the zero-padded, windowed samples.
    #[test]
    fn frames_are_windowed_dfts_of_the_zero_padded_signal() {
        let p = StftParams { n_fft: 16, hop: 4 };
        let stft = Stft::new(p).unwrap();
        let x: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 23) as f32 / 23.0 - 0.4)
            .collect();
        let (from, to) = (0, p.n_frames(x.len()) + 4);
        let spec = stft.forward_range(&x, from, to);
        let window = hann(16);
        for n in from..to {
            for k in 0..p.n_bins() {
                let mut want = Complex::new(0.0f64, 0.0);
                for (m, w) in window.iter().enumerate() {
                    let t = (n * 4 + m) as isize - 8;
                    if t >= 0 && (t as usize) < x.len() {
                        let a = -2.0 * std::f64::consts::PI * (k * m) as f64 / 16.0;
                        want += Complex::from_polar(x[t as usize] as f64 * w, a);
                    }
                }
                let got = spec.frame(n - from)[k];
                assert!((got.re as f64 - want.re).abs() < 1e-5, "frame {n} bin {k}");
                assert!((got.im as f64 - want.im).abs() < 1e-5, "frame {n} bin {k}");
            }
        }
    }

    #[test]
    fn inverse_reconstructs_any_length() {
        for (n_fft, hop) in [
            (2048, 1024),
            (2048, 512),
            (1000, 250),
            (512, 128),
            (1025, 300),
        ] {
            let stft = Stft::new(StftParams { n_fft, hop }).unwrap();
            for len in [1, 7, 999, 4096, 10_001] {
                let x = noise(len, len as u64);
                let y = stft.inverse(&stft.forward(&x), len);
                assert_eq!(y.len(), len);
                let e = rel_err(&y, &x);
                assert!(e < 1e-6, "n_fft {n_fft} hop {hop} len {len}: rel err {e}");
            }
        }
    }

    /// The f32 transforms give the f64 ones' spectra and inverses to single-precision rounding,
    /// and round-trip as well.
    #[test]
    fn single_precision_matches_double_to_rounding() {
        for (n_fft, hop) in [(2048, 256), (1024, 64), (1000, 250)] {
            let p = StftParams { n_fft, hop };
            let (d, s) = (Stft::new(p).unwrap(), Stft::single(p).unwrap());
            let x = noise(9_001, n_fft as u64);
            let (xd, xs) = (d.forward(&x), s.forward(&x));
            assert_eq!((xs.n_frames, xs.n_bins), (xd.n_frames, xd.n_bins));
            let num: f64 = xd
                .data
                .iter()
                .zip(&xs.data)
                .map(|(a, b)| ((a - b).norm() as f64).powi(2))
                .sum();
            let den: f64 = xd.data.iter().map(|a| (a.norm() as f64).powi(2)).sum();
            let e = (num / den).sqrt();
            assert!(
                e < 1e-6 && e > 0.0,
                "n_fft {n_fft}: spectra differ by {e:.1e}"
            );
            let y = s.inverse(&xs, x.len());
            assert!(rel_err(&y, &x) < 1e-6, "n_fft {n_fft}: round trip");
            assert!(rel_err(&y, &d.inverse(&xd, x.len())) < 1e-6);
        }
        assert!(Stft::single(StftParams { n_fft: 64, hop: 65 }).is_err());
    }

    #[test]
    fn pieces_inverted_separately_add_up_to_the_whole() {
        let stft = Stft::new(StftParams {
            n_fft: 1024,
            hop: 256,
        })
        .unwrap();
        let x = noise(20_001, 3);
        let spec = stft.forward(&x);
        let nb = spec.n_bins;
        let mut sum = vec![0.0f32; x.len()];
        for (a, b) in [(0, 17), (17, 40), (40, spec.n_frames)] {
            let (start, y) =
                stft.inverse_frames(&spec.data[a * nb..b * nb], a, spec.n_frames, x.len());
            for (i, v) in y.iter().enumerate() {
                sum[start + i] += v;
            }
        }
        assert!(rel_err(&sum, &x) < 1e-6);
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(Stft::new(StftParams {
            n_fft: 1024,
            hop: 0
        })
        .is_err());
        assert!(Stft::new(StftParams {
            n_fft: 1024,
            hop: 2048
        })
        .is_err());
    }
}
