//! Test material with known ground truth: an additive synthesizer for note lists, and a
//! generator of two-part pieces (chords in one hand, a melody in the other, repeated notes).
//!
//! A note of pitch p, velocity v, onset t₀ and duration d sounds as
//!
//! ```text
//! x(t) = v² · Σ_m a_m · e^{−(α + β·m)·τ} · sin(2π · m·f_p·√(1 + B·m²) · τ + φ_m) · env(τ)
//!        + v² · c · n(τ) · e^{−τ/τ_n}                      τ = t − t₀ ≥ 0
//! ```
//!
//! with partial amplitudes a_m and decays α, β of the instrument's [`Timbre`], inharmonicity B,
//! a seeded noise burst n of level c at the attack, and env a 2 ms linear attack and an
//! exponential release (time constant 50 ms) after t₀ + d. Amplitude ∝ velocity², the usual MIDI
//! loudness curve.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::io::score::{Note, Score};
use crate::model::templates::pitch_frequency;

/// The sound of one instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct Timbre {
    /// Amplitude of partial m (index m − 1).
    pub partials: Vec<f64>,
    /// Decay rate α of every partial, 1/s.
    pub decay: f64,
    /// Extra decay β per partial number, 1/s.
    pub partial_decay: f64,
    /// Inharmonicity B (piano strings: 1e-4 … 1e-3).
    pub inharmonicity: f64,
    /// Level c of the noise burst at the attack, relative to the first partial.
    pub attack_noise: f64,
}

impl Timbre {
    /// A bright, plucked or struck sound: partials 1/m, a clear noisy attack.
    pub fn bright() -> Timbre {
        Timbre {
            partials: (1..=12).map(|m| 1.0 / m as f64).collect(),
            decay: 1.2,
            partial_decay: 0.4,
            inharmonicity: 3e-4,
            attack_noise: 0.3,
        }
    }

    /// A darker, organ-like sound: strong odd partials, slow decay, little attack noise.
    pub fn mellow() -> Timbre {
        Timbre {
            partials: (1..=8)
                .map(|m| {
                    if m % 2 == 1 {
                        1.0 / m as f64
                    } else {
                        0.3 / m as f64
                    }
                })
                .collect(),
            decay: 0.5,
            partial_decay: 0.2,
            inharmonicity: 0.0,
            attack_noise: 0.1,
        }
    }
}

/// Renders `notes` at `sample_rate` into `len` samples; `timbre` gives each instrument's sound
/// and `seed` the attack noise and partial phases.
pub fn render(
    notes: &[Note],
    timbre: impl Fn(&str) -> Timbre,
    sample_rate: u32,
    len: usize,
    seed: u64,
) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sr = sample_rate as f64;
    let mut out = vec![0.0f64; len];
    for n in notes {
        let tb = timbre(&n.instrument);
        let f0 = pitch_frequency(n.pitch as f64, 440.0);
        let amp = n.velocity * n.velocity;
        let start = (n.onset * sr).round() as usize;
        let release_at = n.duration;
        // Sound until the release has decayed by 60 dB.
        let end = (start + ((n.duration + 0.35) * sr) as usize).min(len);
        let phases: Vec<f64> = tb
            .partials
            .iter()
            .map(|_| rng.random::<f64>() * std::f64::consts::TAU)
            .collect();
        for (i, sample) in out.iter_mut().enumerate().take(end).skip(start) {
            let tau = (i - start) as f64 / sr;
            let env = (tau / 0.002).min(1.0)
                * if tau > release_at {
                    (-(tau - release_at) / 0.05).exp()
                } else {
                    1.0
                };
            let mut v = 0.0;
            for (m0, (a, phi)) in tb.partials.iter().zip(&phases).enumerate() {
                let m = (m0 + 1) as f64;
                let f = m * f0 * (1.0 + tb.inharmonicity * m * m).sqrt();
                if f >= sr / 2.0 {
                    break;
                }
                v += a
                    * (-(tb.decay + tb.partial_decay * m) * tau).exp()
                    * (std::f64::consts::TAU * f * tau + phi).sin();
            }
            let noise = if tau < 0.05 {
                tb.attack_noise * (rng.random::<f64>() * 2.0 - 1.0) * (-tau / 0.008).exp()
            } else {
                0.0
            };
            *sample += amp * (v * env + noise);
        }
    }
    let peak = out.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-9);
    let gain = if peak > 0.9 { 0.9 / peak } else { 1.0 };
    out.into_iter().map(|v| (v * gain) as f32).collect()
}

/// `n` samples of white noise, uniform in [−1, 1), seeded.
pub fn white_noise(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A two-part piece of about `seconds` seconds: `lh` plays three-note chords (re-struck, often on
/// the same pitches), `rh` a melody with repeated notes, both with varied velocities. Seeded,
/// deterministic.
pub fn random_piece(seconds: f64, seed: u64) -> Score {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut notes = Vec::new();
    // Left hand: chords on a slowly changing harmony, re-struck every beat or two.
    let beat = 0.5;
    let roots = [48u8, 50, 53, 55, 45, 52, 57];
    let mut t = 0.3;
    let mut root = roots[0];
    while t < seconds - 1.0 {
        if rng.random::<f64>() < 0.35 {
            root = roots[rng.random_range(0..roots.len())];
        }
        let len_beats = [1.0, 1.0, 2.0, 0.5][rng.random_range(0..4)];
        let dur = len_beats * beat;
        let vel = rng.random_range(0.35..0.85);
        for interval in [0u8, 4 + rng.random_range(0..2u8), 7] {
            notes.push(Note {
                onset: t + rng.random_range(-0.004..0.004),
                duration: dur * 0.95,
                pitch: root + interval,
                velocity: (vel + rng.random_range(-0.08..0.08f64)).clamp(0.2, 1.0),
                instrument: "lh".into(),
                measure: None,
            });
        }
        t += dur;
    }
    // Right hand: a melody stepping in a scale, with repeated notes.
    let scale = [0u8, 2, 4, 5, 7, 9, 11];
    let mut degree = 7i32;
    let mut t = 0.3;
    while t < seconds - 1.0 {
        let dur = [0.25, 0.25, 0.5, 0.5, 0.75, 1.0][rng.random_range(0..6)];
        if rng.random::<f64>() > 0.25 {
            degree = (degree + rng.random_range(-2..=2)).clamp(3, 14);
        }
        let pitch = 60 + 12 * (degree / 7) as u8 + scale[(degree % 7) as usize];
        notes.push(Note {
            onset: t,
            duration: dur * 0.9,
            pitch,
            velocity: rng.random_range(0.3..1.0),
            instrument: "rh".into(),
            measure: None,
        });
        t += dur;
    }
    Score::new(notes, vec![])
}

/// A denser two-part piece of about `seconds` seconds, like a real piano piece's texture for
/// the benchmark: the harmony moves through four keys (a new one every eight beats), `lh` plays
/// chords of 3 to 6 notes (a bass note and its chord spread over two octaves, sevenths and
/// doublings), `rh` a melody over an octave and a half of the key's scale, stepwise with leaps, and
/// occasional thirds; some 35 to 45 distinct pitches in a few minutes. Seeded, deterministic.
pub fn dense_piece(seconds: f64, seed: u64) -> Score {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut notes = Vec::new();
    let mut note = |onset: f64, duration: f64, pitch: u8, velocity: f64, hand: &str| {
        notes.push(Note {
            onset,
            duration,
            pitch,
            velocity: velocity.clamp(0.15, 1.0),
            instrument: hand.into(),
            measure: None,
        });
    };
    let beat = 0.45;
    // Keys (tonic pitch classes) and the scale degrees of the chords in each.
    let keys = [0u8, 7, 5, 2];
    let major = [0u8, 2, 4, 5, 7, 9, 11];
    let chord_degrees = [0usize, 3, 4, 5, 1, 4];
    let mut t = 0.3;
    let mut beat_no = 0usize;
    while t < seconds - 1.5 {
        let key = keys[(beat_no / 8) % keys.len()];
        let degree = chord_degrees[rng.random_range(0..chord_degrees.len())];
        let len = [1.0, 1.0, 2.0, 0.5][rng.random_range(0..4)];
        let dur = len * beat;
        let tone = |d: usize| key + major[d % 7] + 12 * (d / 7) as u8;
        // Bass in octave 2–3, the chord in octaves 3–4: 3 to 6 notes.
        let bass = 36 + tone(degree) % 12;
        let size = rng.random_range(3..=6usize);
        let vel = rng.random_range(0.35..0.8);
        note(t, dur * 0.95, bass, vel, "lh");
        for k in 1..size {
            let pitch = 48 + tone(degree + 2 * (k - 1)) % 24;
            let onset = t + rng.random_range(-0.006..0.006);
            note(
                onset,
                dur * 0.95,
                pitch,
                vel - rng.random_range(0.0..0.15),
                "lh",
            );
        }
        t += dur;
        beat_no += len.ceil() as usize;
    }
    // The melody: the current key's scale from its tonic above C4, stepwise with leaps.
    let mut t = 0.3;
    let mut d = 7i32;
    while t < seconds - 1.5 {
        let key = keys[((t / beat) as usize / 8) % keys.len()];
        let dur = [0.25, 0.25, 0.5, 0.5, 0.75, 1.0][rng.random_range(0..6)] * beat * 2.0;
        d = (d + [-2, -1, -1, 1, 1, 2, 3, -3][rng.random_range(0..8)]).clamp(0, 11);
        let pitch = 60 + key % 12 + major[(d % 7) as usize] + 12 * (d / 7) as u8;
        let vel = rng.random_range(0.45..1.0);
        note(t, dur * 0.9, pitch, vel, "rh");
        if rng.random::<f64>() < 0.15 {
            note(
                t,
                dur * 0.9,
                pitch - 3 - rng.random_range(0..2u8),
                vel * 0.8,
                "rh",
            );
        }
        t += dur;
    }
    Score::new(notes, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_is_deterministic_and_bounded() {
        let s = random_piece(4.0, 1);
        let a = render(&s.notes, |_| Timbre::bright(), 22050, 4 * 22050, 7);
        let b = render(&s.notes, |_| Timbre::bright(), 22050, 4 * 22050, 7);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| v.abs() <= 0.9 + 1e-6));
        assert!(a.iter().map(|v| v.abs()).fold(0.0, f32::max) > 0.1);
    }

    #[test]
    fn dense_pieces_have_a_real_pieces_pitch_count_and_chords() {
        let s = dense_piece(180.0, 4);
        let pitches = s.pitches().len();
        assert!((35..=45).contains(&pitches), "{pitches} distinct pitches");
        let lh: Vec<_> = s.notes.iter().filter(|n| n.instrument == "lh").collect();
        let mut sizes = std::collections::BTreeMap::new();
        let mut i = 0;
        while i < lh.len() {
            let j = (i..lh.len())
                .find(|&j| lh[j].onset - lh[i].onset > 0.02)
                .unwrap_or(lh.len());
            *sizes.entry(j - i).or_insert(0) += 1;
            i = j;
        }
        assert!(sizes.keys().all(|&k| (3..=6).contains(&k)), "{sizes:?}");
        assert!(sizes.len() >= 3, "{sizes:?}");
        assert_eq!(s, dense_piece(180.0, 4));
    }

    #[test]
    fn pieces_have_both_hands_and_repeats() {
        let s = random_piece(30.0, 3);
        assert!(s.notes.iter().any(|n| n.instrument == "lh"));
        assert!(s.notes.iter().any(|n| n.instrument == "rh"));
        let lh: Vec<_> = s.notes.iter().filter(|n| n.instrument == "lh").collect();
        let repeated = lh
            .windows(4)
            .any(|w| w[0].pitch == w[3].pitch && w[3].onset > w[0].onset);
        assert!(repeated);
        assert_eq!(s, random_piece(30.0, 3));
    }
}
