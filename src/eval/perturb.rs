//! Degraded scores for measuring robustness: onsets jittered, durations stretched, and notes
//! that are in the score but not played ("fake" notes). Seeded and deterministic.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

use crate::io::score::{Note, Score};

/// How to degrade a score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Perturbation {
    /// Standard deviation of the onset jitter, seconds.
    pub sigma: f64,
    /// The jitter is clipped to ±clip seconds.
    pub clip: f64,
    /// Durations are multiplied by a factor uniform in this range.
    pub duration_scale: (f64, f64),
    /// Fake notes added, as a fraction of the score's notes.
    pub fake_fraction: f64,
}

impl Default for Perturbation {
    /// N(0, 60 ms) clipped at ±150 ms, durations × U(0.8, 1.2), no fake notes.
    fn default() -> Self {
        Perturbation {
            sigma: 0.06,
            clip: 0.15,
            duration_scale: (0.8, 1.2),
            fake_fraction: 0.0,
        }
    }
}

/// A degraded score; `fake[i]` tells whether note i of `score` was added (not played).
pub struct Perturbed {
    pub score: Score,
    pub fake: Vec<bool>,
}

/// Degrades `score`. Half of the fake notes are wrong notes 1–3 semitones from a played note at
/// about its time (the hard case: their partials sit next to a sounding note's); the other half
/// fall at a random time and pitch within the piece's range. No fake note repeats the pitch of a
/// note sounding near it.
pub fn perturb(score: &Score, p: &Perturbation, seed: u64) -> Perturbed {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let jitter = Normal::new(0.0, p.sigma.max(1e-12)).expect("positive sigma");
    let mut notes: Vec<(Note, bool)> = score
        .notes
        .iter()
        .map(|n| {
            let d = jitter.sample(&mut rng).clamp(-p.clip, p.clip);
            let scale = rng.random_range(p.duration_scale.0..=p.duration_scale.1);
            (
                Note {
                    onset: (n.onset + d).max(0.0),
                    duration: n.duration * scale,
                    ..n.clone()
                },
                false,
            )
        })
        .collect();
    let n_fake = (p.fake_fraction * score.notes.len() as f64).round() as usize;
    let (lo, hi) = score
        .notes
        .iter()
        .fold((127u8, 0u8), |(a, b), n| (a.min(n.pitch), b.max(n.pitch)));
    let span = score.end();
    let mut added = 0;
    let mut tries = 0;
    while added < n_fake && tries < 1000 * (n_fake + 1) {
        tries += 1;
        let base = &score.notes[rng.random_range(0..score.notes.len())];
        let (pitch, onset) = if added % 2 == 0 {
            let step = rng.random_range(1..=3i32) * if rng.random::<bool>() { 1 } else { -1 };
            (
                base.pitch as i32 + step,
                base.onset + rng.random_range(-0.05..0.05),
            )
        } else {
            (
                rng.random_range(lo as i32..=hi as i32),
                rng.random_range(0.0..span.max(0.1)),
            )
        };
        if !(0..=127).contains(&pitch) || onset < 0.0 {
            continue;
        }
        let pitch = pitch as u8;
        let clash = score
            .notes
            .iter()
            .any(|n| n.pitch == pitch && onset < n.end() + 0.3 && n.onset < onset + 1.0);
        if clash {
            continue;
        }
        notes.push((
            Note {
                onset,
                duration: rng.random_range(0.3..1.0),
                pitch,
                velocity: base.velocity,
                instrument: base.instrument.clone(),
                measure: None,
            },
            true,
        ));
        added += 1;
    }
    notes.sort_by(|(a, _), (b, _)| {
        a.onset
            .total_cmp(&b.onset)
            .then(a.pitch.cmp(&b.pitch))
            .then_with(|| a.instrument.cmp(&b.instrument))
    });
    let fake = notes.iter().map(|(_, f)| *f).collect();
    let score = Score::new(notes.into_iter().map(|(n, _)| n).collect(), vec![]);
    Perturbed { score, fake }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::synth::random_piece;

    #[test]
    fn jitter_is_bounded_seeded_and_fakes_are_marked() {
        let s = random_piece(20.0, 5);
        let p = Perturbation {
            fake_fraction: 0.1,
            ..Default::default()
        };
        let a = perturb(&s, &p, 9);
        let b = perturb(&s, &p, 9);
        assert_eq!(a.score, b.score);
        let n_fake = a.fake.iter().filter(|f| **f).count();
        assert_eq!(n_fake, (0.1 * s.notes.len() as f64).round() as usize);
        assert_eq!(a.score.notes.len(), s.notes.len() + n_fake);
        let real: Vec<&Note> = a
            .score
            .notes
            .iter()
            .zip(&a.fake)
            .filter(|(_, f)| !**f)
            .map(|(n, _)| n)
            .collect();
        // Every real note moved by at most the clip.
        let mut moved = 0;
        for n in &real {
            let nearest = s
                .notes
                .iter()
                .filter(|o| o.pitch == n.pitch && o.instrument == n.instrument)
                .map(|o| (o.onset - n.onset).abs())
                .fold(f64::INFINITY, f64::min);
            assert!(nearest <= 0.15 + 1e-12);
            moved += usize::from(nearest > 0.0);
        }
        assert!(moved > real.len() / 2);
    }
}
