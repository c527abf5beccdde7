//! Note metrics agree with mir_eval 0.8.2 to 1e-9 (fixtures made by
//! `scripts/make_eval_fixtures.py`: tolerance edges, duplicates, unisons, empty sides, dense
//! random pieces, constant velocities).

use scorenmf::eval::notes::{evaluate, evaluate_velocity, EvalNote, NoteTolerances};

fn notes(v: &serde_json::Value) -> Vec<EvalNote> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let f = |i: usize| n[i].as_f64().unwrap();
            EvalNote {
                onset: f(0),
                offset: f(1),
                hz: f(2),
                velocity: f(3),
            }
        })
        .collect()
}

#[test]
fn agrees_with_mir_eval() {
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read("tests/data/eval/notes.json").unwrap()).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (r, e) = (notes(&case["ref"]), notes(&case["est"]));
        let params = &case["params"];
        let mut t = NoteTolerances::default();
        if let Some(v) = params.get("strict") {
            t.strict = v.as_bool().unwrap();
        }
        if let Some(v) = params.get("onset_tolerance") {
            t.onset_tolerance = v.as_f64().unwrap();
        }
        if let Some(v) = params.get("pitch_tolerance") {
            t.pitch_tolerance = v.as_f64().unwrap();
        }
        if let Some(v) = params.get("offset_min_tolerance") {
            t.offset_min_tolerance = v.as_f64().unwrap();
        }
        let onset_only = NoteTolerances {
            offset_ratio: None,
            ..t
        };
        for (key, got) in [
            ("onset_only", evaluate(&r, &e, &onset_only)),
            ("with_offset", evaluate(&r, &e, &t)),
            ("velocity", evaluate_velocity(&r, &e, &t)),
        ] {
            let want: Vec<f64> = case["expected"][key]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let ours = [
                got.precision,
                got.recall,
                got.f_measure,
                got.average_overlap_ratio,
            ];
            for (k, (a, b)) in ours.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-9,
                    "{name} {key} metric {k}: ours {a} vs mir_eval {b}"
                );
            }
        }
    }
}
