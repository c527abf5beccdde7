//! The MIDI reader on real files exported by notation software, checked note by note against
//! pretty_midi (fixtures made by `scripts/make_midi_fixture.py`), and round trips through the
//! project's own writer.

use std::path::Path;

use scorenmf::io::score::{midi, read_score, Note};

fn pretty_midi_notes(stem: &str) -> Vec<(f64, f64, u8, u8)> {
    let text = std::fs::read_to_string(format!("tests/data/midi/{stem}.notes.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

fn check_against_pretty_midi(stem: &str, count: usize, label: &str) {
    let score = read_score(Path::new(&format!("data/{stem}.mid"))).unwrap();
    let want = pretty_midi_notes(stem);
    assert_eq!(score.notes.len(), count);
    assert_eq!(want.len(), count);
    for (n, (start, end, pitch, vel)) in score.notes.iter().zip(want) {
        assert_eq!(n.pitch, pitch);
        assert!((n.onset - start).abs() < 1e-6, "{} vs {start}", n.onset);
        assert!((n.end() - end).abs() < 1e-6, "{} vs {end}", n.end());
        assert_eq!((n.velocity * 127.0).round() as u8, vel);
        assert_eq!(n.instrument, label);
    }
    assert!(score.warnings.is_empty(), "{:?}", score.warnings);
}

#[test]
fn bach_prelude_exported_by_sibelius() {
    // 130 notes, tempo 58 BPM on the second track, 960 ticks per quarter.
    check_against_pretty_midi("FMP_C1_F12_Bach_BWV846_Sibelius", 130, "Piano");
}

#[test]
fn beethoven_fate_motive_exported_by_sibelius() {
    // The note track has no name: labelled by its number.
    check_against_pretty_midi("FMP_C1_F13a_Beethoven_FateMotive_Sibelius", 12, "track 2");
}

#[test]
fn real_files_round_trip_through_the_writer() {
    for stem in [
        "FMP_C1_F12_Bach_BWV846_Sibelius",
        "FMP_C1_F13a_Beethoven_FateMotive_Sibelius",
    ] {
        let score = read_score(Path::new(&format!("data/{stem}.mid"))).unwrap();
        let bytes = midi::to_smf_bytes(&score.notes).unwrap();
        let back = midi::parse(Path::new("round-trip.mid"), &bytes).unwrap();
        assert_eq!(back.notes.len(), score.notes.len());
        for (a, b) in back.notes.iter().zip(&score.notes) {
            let Note {
                pitch,
                instrument,
                velocity,
                ..
            } = b;
            assert_eq!((&a.pitch, &a.instrument), (pitch, instrument));
            assert!((a.onset - b.onset).abs() < 1e-3);
            assert!((a.end() - b.end()).abs() < 1e-3);
            assert!((a.velocity - velocity).abs() < 1e-9);
        }
    }
}

#[test]
fn the_chopin_csv_round_trips_through_midi() {
    let score = read_score(Path::new(
        "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv",
    ))
    .unwrap();
    let back = midi::parse(
        Path::new("round-trip.mid"),
        &midi::to_smf_bytes(&score.notes).unwrap(),
    )
    .unwrap();
    assert_eq!(back.notes.len(), 54);
    assert_eq!(back.instruments(), ["lh", "rh"]);
    for (a, b) in back.notes.iter().zip(&score.notes) {
        assert_eq!((a.pitch, &a.instrument), (b.pitch, &b.instrument));
        assert!(
            (a.onset - b.onset).abs() < 1e-3,
            "{} vs {}",
            a.onset,
            b.onset
        );
        assert!((a.end() - b.end()).abs() < 1e-3);
    }
}
