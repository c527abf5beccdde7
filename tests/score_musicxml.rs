//! MusicXML scores against other exports of the same score: the Sibelius MIDI export of the
//! Beethoven piano reduction, and the FMP note list (in quarters) of Träumerei.

use std::path::Path;

use scorenmf::io::score::{read_score, Note, Score};

const DIR: &str = "data/alignment";

fn read(name: &str) -> Score {
    read_score(&Path::new(DIR).join(name)).unwrap()
}

fn key(n: &Note) -> (i64, u8) {
    ((n.onset * 1000.0).round() as i64, n.pitch)
}

#[test]
fn beethoven_musicxml_matches_its_midi_export() {
    let xml = read("FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml");
    let mid = read("FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.mid");
    let a: Vec<_> = xml.notes.iter().map(key).collect();
    let b: Vec<_> = mid.notes.iter().map(key).collect();
    assert_eq!(a, b);
    assert_eq!(xml.instruments(), ["lh", "rh"]);
    assert_eq!(xml.notes.last().unwrap().measure.as_deref(), Some("21"));
}

#[test]
fn traeumerei_musicxml_matches_its_note_list() {
    let xml = read("FMP_C3S3_Schumann_Op15No7_Traeumerei_MusicXML.xml");
    let csv = read("FMP_C3S3_Schumann_Op15No7_Traeumerei_MusicXML.csv");
    // The note list is at 60 quarters a minute, the MusicXML at its mark of 90; the list stops
    // after the pickup and 7½ bars (quarter 31), keeps tied notes apart and puts grace notes at
    // their principal's onset with no duration.
    let scale = 60.0 / 90.0;
    let list: Vec<Note> = csv
        .notes
        .iter()
        .map(|n| Note {
            onset: n.onset * scale,
            duration: n.duration * scale,
            ..n.clone()
        })
        .collect();
    let end = 31.0 * scale;
    let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
    let mut graces = 0;
    for x in xml.notes.iter().filter(|n| n.onset < end - 1e-6) {
        let principal = list
            .iter()
            .find(|c| c.pitch == x.pitch && near(c.onset, x.onset));
        let grace = list
            .iter()
            .find(|c| c.pitch == x.pitch && c.duration == 0.0 && (c.onset - x.onset).abs() < 0.2);
        match (principal, grace) {
            (Some(_), _) => {}
            (None, Some(_)) => graces += 1,
            (None, None) => panic!("{x:?} is not in the note list"),
        }
        assert!(x.measure.is_some());
    }
    assert_eq!(graces, 5, "Träumerei has five grace notes in these bars");
    for c in list.iter().filter(|c| c.duration > 0.0) {
        let covered = xml.notes.iter().any(|x| {
            x.pitch == c.pitch
                && x.onset <= c.onset + 1e-6
                && c.onset + c.duration <= x.end() + 1e-6
        });
        assert!(
            covered,
            "{c:?} (a tied part or a note) is not in the MusicXML"
        );
    }
    // Two staves: the right hand is staff 1, the left staff 2.
    assert_eq!(xml.instruments(), ["lh", "rh"]);
    let lowest = xml.notes.iter().min_by_key(|n| n.pitch).unwrap();
    assert_eq!(lowest.instrument, "lh");
}
