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

/// (onset in ms, pitch) of every note, sorted.
fn keys(notes: &[Note]) -> Vec<(i64, u8)> {
    let mut k: Vec<_> = notes.iter().map(key).collect();
    k.sort();
    k
}

/// Notes of `a` with a note of the same pitch in `b`, one to one: at the same onset (within
/// 2 ms), then, for those left, up to `later` ms after it (music21 puts a grace note at its
/// principal's onset, scorenmf a 32nd before).
fn matched(a: &[(i64, u8)], b: &[(i64, u8)], later: i64) -> (usize, usize) {
    let mut used = vec![false; b.len()];
    let mut left = Vec::new();
    let find = |t: i64, p: u8, lo: i64, hi: i64, used: &mut Vec<bool>| {
        let from = b.partition_point(|&(u, _)| u < t + lo);
        let i = (from..b.len())
            .take_while(|&i| b[i].0 <= t + hi)
            .find(|&i| !used[i] && b[i].1 == p)?;
        used[i] = true;
        Some(())
    };
    let mut exact = 0;
    for &(t, p) in a {
        match find(t, p, -2, 2, &mut used) {
            Some(()) => exact += 1,
            None => left.push((t, p)),
        }
    }
    let graces = left
        .iter()
        .filter(|&&(t, p)| find(t, p, 3, later, &mut used).is_some())
        .count();
    (exact, graces)
}

/// Real scores from music21's corpus (scripts/make_musicxml_fixtures.py), against music21's own
/// MIDI export of them with repeats expanded and ties merged.
#[test]
fn corpus_scores_match_music21s_midi_export() {
    let dir = Path::new("tests/data/musicxml");
    for (name, min_share) in [
        ("bach_bwv66.6", 1.0),
        ("mozart_k155_1", 1.0),
        ("haydn_op74no1_1", 0.99),
    ] {
        let xml = read_score(&dir.join(format!("{name}.mxl"))).unwrap();
        let mid = read_score(&dir.join(format!("{name}.music21.mid"))).unwrap();
        let (a, b) = (keys(&xml.notes), keys(&mid.notes));
        let (exact, graces) = matched(&a, &b, 150);
        let share = (exact + graces) as f64 / a.len().max(b.len()) as f64;
        assert!(
            share >= min_share,
            "{name}: {exact} + {graces} grace notes of {} / {} notes match",
            a.len(),
            b.len()
        );
        assert!(
            graces as f64 <= 0.01 * a.len() as f64,
            "{name}: {graces} grace notes"
        );
        assert_eq!(xml.instruments(), mid.instruments(), "{name}");
        assert!(xml.notes.iter().all(|n| n.measure.is_some()));
    }
}

/// The Maple Leaf Rag's repeats unfolded as a pianist plays them: sections A, B, C, D each
/// twice (A's first ending has no second-ending bracket in this file; the second pass skips it),
/// 144 bars of 2/4 at 100 per quarter. music21's expandRepeats leaves A once (130 bars).
#[test]
fn maple_leaf_rag_repeats_unfold_as_played() {
    let path = Path::new("tests/data/musicxml/joplin_maple_leaf_rag.mxl");
    let s = read_score(path).unwrap();
    assert!((s.end() - 144.0 * 1.2).abs() < 1e-6, "{}", s.end());
    assert_eq!(s.instruments(), ["lh", "rh"]);
    let once =
        scorenmf::io::score::read_score_with(path, scorenmf::io::score::Repeats::None).unwrap();
    assert!(
        (once.end() - 85.0 * 1.2 + 0.6).abs() < 1.0,
        "{}",
        once.end()
    );
    // Bar 1 is played twice, at 0.6 s (after the pickup) and again after bar 16.
    let bar1: Vec<f64> = s
        .notes
        .iter()
        .filter(|n| n.measure.as_deref() == Some("1"))
        .map(|n| n.onset)
        .collect();
    assert!(bar1.iter().any(|&t| t < 2.0) && bar1.iter().any(|&t| t > 18.0));
}
