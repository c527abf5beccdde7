//! Initial templates W₀ (FMP notebook C8S3, "NMF-based spectral decomposition" with the onset
//! model; libfmp `template_pitch`, `init_nmf_template_pitch_onset`).
//!
//! The factorization has two components per score pitch (or per (pitch, instrument) pair with
//! `per_instrument`): an **onset** component, whose template starts uniform (every bin
//! `onset_init`, 0.1 in FMP) to catch the broadband strike, and a **harmonic** component, whose
//! template holds the partials of the pitch:
//!
//! ```text
//! f_p = A4 · 2^((p − 69)/12)
//! W₀(k, harmonic p) = 1/m  for  ⌊(1 − τ)·m·f_p / Δf⌋ ≤ k ≤ ⌊(1 + τ)·m·f_p / Δf⌋,  m = 1 … M
//! M = ⌈K·Δf / ((1 − τ)·f_p)⌉
//! ```
//!
//! with Δf = sample rate / n_fft the bin spacing, τ = `tol_pitch` (0.05) and K bins; all other
//! entries are 0, and stay 0 through the multiplicative updates.
//!
//! **Column order** (and the row order of H): components are sorted by pitch, then instrument;
//! for each, the onset column comes first, then the harmonic column — column 2r is the onset
//! and 2r+1 the harmonic component of the r-th (pitch, instrument), exactly FMP's order when
//! `per_instrument` is off.

use nalgebra::DMatrix;
use serde::Serialize;

use crate::io::score::Score;

/// What a column of W (row of H) models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Onset,
    Harmonic,
}

/// One component of the factorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub pitch: u8,
    /// The instrument label, when templates are per instrument; `None` when shared by all.
    pub instrument: Option<String>,
    pub kind: Kind,
}

impl Component {
    /// Whether a score note belongs to this component's pitch (and instrument).
    pub fn covers(&self, pitch: u8, instrument: &str) -> bool {
        self.pitch == pitch && self.instrument.as_deref().is_none_or(|i| i == instrument)
    }
}

/// The components of a score in column order (see the module documentation).
pub fn components(score: &Score, per_instrument: bool) -> Vec<Component> {
    let mut keys: Vec<(u8, Option<String>)> = score
        .notes
        .iter()
        .map(|n| (n.pitch, per_instrument.then(|| n.instrument.clone())))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .flat_map(|(pitch, instrument)| {
            [Kind::Onset, Kind::Harmonic].map(|kind| Component {
                pitch,
                instrument: instrument.clone(),
                kind,
            })
        })
        .collect()
}

/// Parameters of the template model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct TemplateParams {
    /// Relative half-width of each partial's band (FMP: 0.05).
    pub tol_pitch: f64,
    /// Initial value of every bin of an onset template (FMP: 0.1).
    pub onset_init: f64,
    /// Reference frequency of A4 in Hz.
    pub a4: f64,
}

impl Default for TemplateParams {
    fn default() -> Self {
        TemplateParams {
            tol_pitch: 0.05,
            onset_init: 0.1,
            a4: 440.0,
        }
    }
}

/// Fundamental frequency of MIDI pitch `p`: A4 · 2^((p − 69)/12).
pub fn pitch_frequency(p: f64, a4: f64) -> f64 {
    a4 * 2f64.powf((p - 69.0) / 12.0)
}

/// The harmonic template of `pitch` over `n_bins` bins spaced `freq_res` Hz apart.
pub fn harmonic_template(n_bins: usize, pitch: u8, freq_res: f64, p: &TemplateParams) -> Vec<f64> {
    let f0 = pitch_frequency(pitch as f64, p.a4);
    let max_freq = n_bins as f64 * freq_res;
    let max_order = (max_freq / ((1.0 - p.tol_pitch) * f0)).ceil() as usize;
    let mut t = vec![0.0; n_bins];
    for m in 1..=max_order {
        let mf = m as f64 * f0;
        let lo = ((1.0 - p.tol_pitch) * mf / freq_res) as usize;
        let hi = (((1.0 + p.tol_pitch) * mf / freq_res) as usize).min(n_bins - 1);
        for v in t.iter_mut().take(hi + 1).skip(lo) {
            *v = 1.0 / m as f64;
        }
    }
    t
}

/// W₀, `n_bins × components.len()`.
pub fn init_templates(
    components: &[Component],
    n_bins: usize,
    freq_res: f64,
    p: &TemplateParams,
) -> DMatrix<f64> {
    let mut w = Vec::with_capacity(n_bins * components.len());
    for c in components {
        match c.kind {
            Kind::Onset => w.extend(std::iter::repeat_n(p.onset_init, n_bins)),
            Kind::Harmonic => w.extend(harmonic_template(n_bins, c.pitch, freq_res, p)),
        }
    }
    DMatrix::from_vec(n_bins, components.len(), w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::score::Note;

    #[test]
    fn a4_template_has_partials_at_multiples_of_440() {
        let p = TemplateParams::default();
        let freq_res = 22050.0 / 2048.0;
        let t = harmonic_template(1025, 69, freq_res, &p);
        let bin = |f: f64| (f / freq_res).round() as usize;
        assert_eq!(t[bin(440.0)], 1.0);
        assert_eq!(t[bin(880.0)], 0.5);
        assert_eq!(t[bin(1320.0)], 1.0 / 3.0);
        assert_eq!(t[bin(660.0)], 0.0);
        assert_eq!(t[0], 0.0);
        // Band edges: ⌊0.95·440/Δf⌋ = 38 … ⌊1.05·440/Δf⌋ = 42.
        assert_eq!((t[37], t[38], t[42], t[43]), (0.0, 1.0, 1.0, 0.0));
    }

    #[test]
    fn components_in_fmp_order() {
        let n = |pitch, inst: &str| Note {
            onset: 0.0,
            duration: 1.0,
            pitch,
            velocity: 1.0,
            instrument: inst.into(),
            measure: None,
        };
        let s = Score::new(vec![n(64, "rh"), n(60, "lh"), n(64, "lh")], vec![]);
        let c = components(&s, false);
        assert_eq!(c.len(), 4);
        assert_eq!((c[0].pitch, c[0].kind), (60, Kind::Onset));
        assert_eq!((c[1].pitch, c[1].kind), (60, Kind::Harmonic));
        assert_eq!((c[2].pitch, c[3].pitch), (64, 64));
        let c = components(&s, true);
        assert_eq!(c.len(), 6);
        assert_eq!(c[2].instrument.as_deref(), Some("lh"));
        assert_eq!(c[4].instrument.as_deref(), Some("rh"));
        assert!(c[4].covers(64, "rh") && !c[4].covers(64, "lh"));
    }
}
