//! Per-note evidence of one degraded score, for studying the not-played decision:
//!
//!     cargo run --release --example diagnose -- AUDIO TRUTH_SCORE SEED > notes.tsv
//!
//! One row per note of the degraded score (10 % fake notes): fake?, pitch, novelty, activation,
//! free partials, evidence, and for real notes the onset error against the truth.

use std::path::Path;

use scorenmf::eval::perturb::{perturb, Perturbation};
use scorenmf::io::audio::read_audio;
use scorenmf::io::score::read_score;
use scorenmf::pipeline::{run_transcription, Config, Preset};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let audio = read_audio(Path::new(&args[1])).unwrap();
    let truth = read_score(Path::new(&args[2])).unwrap();
    let seed: u64 = args[3].parse().unwrap();
    let p = perturb(
        &truth,
        &Perturbation {
            fake_fraction: 0.1,
            ..Default::default()
        },
        seed,
    );
    let mut config = Config::preset(Preset::Default);
    if let Ok(v) = std::env::var("ONSET_NFFT") {
        config.transcribe.onset.stft.n_fft = v.parse().unwrap();
    }
    if let Ok(v) = std::env::var("ONSET_HOP") {
        config.transcribe.onset.stft.hop = v.parse().unwrap();
    }
    if std::env::var("LINEAR_KL").is_ok() {
        config.magnitude = scorenmf::pipeline::Magnitude::Linear;
        config.nmf.divergence = scorenmf::model::nmf::Divergence::Kl;
    }
    for (key, field) in [
        ("CHORD_TOL", &mut config.transcribe.onset.chord_tol),
        ("PRIOR_SIGMA", &mut config.transcribe.onset.prior_sigma),
        ("SEARCH", &mut config.transcribe.onset.search),
        ("BAND", &mut config.transcribe.onset.band),
        ("MIN_GAP", &mut config.transcribe.min_gap),
    ] {
        if let Ok(v) = std::env::var(key) {
            *field = v.parse().unwrap();
        }
    }
    if std::env::var("NO_REFINE").is_ok() {
        config.transcribe.onset.refine = None;
    }
    if let Ok(v) = std::env::var("GAMMA") {
        config.transcribe.onset.gamma = v.parse().unwrap();
    }
    let out = run_transcription(&audio, &p.score, &config, |_| {}).unwrap();
    let t = &out.transcription;
    let onset_of = |id: usize| {
        t.events
            .iter()
            .find(|e| e.score_note == id)
            .map(|e| e.onset)
            .or_else(|| {
                t.not_played
                    .iter()
                    .find(|u| u.score_note == id)
                    .map(|u| u.candidate_onset)
            })
            .unwrap()
    };
    println!("fake\tpitch\tnovelty\tactivation\tfree\tevidence\tonset_error\tunique");
    for (id, n) in p.score.notes.iter().enumerate() {
        let e = &t.evidence[id];
        let onset = onset_of(id);
        let err = truth
            .notes
            .iter()
            .filter(|o| o.pitch == n.pitch && o.instrument == n.instrument)
            .map(|o| onset - o.onset)
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(f64::NAN);
        println!(
            "{}\t{}\t{:.4}\t{:.4}\t{}\t{:.4}\t{:.4}\t{:.4}",
            p.fake[id] as u8,
            n.pitch,
            e.novelty,
            e.activation,
            e.free_partials,
            e.evidence,
            err,
            e.unique
        );
    }
}
