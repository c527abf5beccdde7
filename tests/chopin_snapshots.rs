//! Snapshot tests on the Chopin example: the transcribed note events and a compact summary of
//! the factorization, for the default and the FMP preset. A change in any stage shows here.

#[allow(dead_code)]
mod common;

use nalgebra::DMatrix;
use scorenmf::pipeline::{run_transcription, Config, Preset, TranscribeOutput};

fn run(preset: Preset) -> TranscribeOutput {
    let (audio, score) = common::chopin();
    run_transcription(&audio, &score, &Config::preset(preset), |_| {}).unwrap()
}

fn r(x: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (x * s).round() / s
}

fn summary(m: &DMatrix<f64>) -> serde_json::Value {
    serde_json::json!({
        "shape": [m.nrows(), m.ncols()],
        "nonzero": m.iter().filter(|x| **x != 0.0).count(),
        "row_sums": m.row_iter().map(|row| r(row.sum(), 2)).collect::<Vec<_>>(),
    })
}

fn events(out: &TranscribeOutput) -> Vec<String> {
    out.transcription
        .events
        .iter()
        .map(|e| {
            format!(
                "#{:<2} {:<3} {:<2} onset {:>6.3} offset {:>6.3} gain {:.3} vel {:>3}",
                e.score_note, e.pitch_name, e.instrument, e.onset, e.offset, e.gain, e.velocity
            )
        })
        .chain(out.transcription.not_played.iter().map(|u| {
            format!(
                "#{:<2} {:<3} {:<2} not played (evidence {:.3})",
                u.score_note, u.pitch_name, u.instrument, u.evidence.evidence
            )
        }))
        .collect()
}

#[test]
fn default_preset_events() {
    insta::assert_json_snapshot!(events(&run(Preset::Default)));
}

#[test]
fn factorization_summaries() {
    for preset in [Preset::Default, Preset::Fmp] {
        let out = run(preset);
        let d = &out.decomposition;
        let f = &d.factorization;
        insta::assert_json_snapshot!(
            format!("factorization_{preset:?}").to_lowercase(),
            serde_json::json!({
                "components": d.components.iter().map(|c| format!("{} {:?}", c.pitch, c.kind)).collect::<Vec<_>>(),
                "W0": summary(&d.w0),
                "H0": summary(&d.h0),
                "W": summary(&f.w),
                "H": summary(&f.h),
                "iterations": f.iterations,
                "relative_error": r(f.rel_error, 4),
            })
        );
    }
}
