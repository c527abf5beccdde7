//! Score alignment end to end, through the binary: notation scores (MusicXML, MIDI, CSV) against
//! the shared renderings and the Chopin recording, with the recordings' own MIDI (or annotation)
//! as the truth; free ends (silence around the piece, half a score); scores that do not fit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scorenmf::io::score::{read_score, Note};

const BEETHOVEN_XML: &str = "data/alignment/FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml";
const FERMATA_WAV: &str =
    "data/alignment/FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.wav";
const FERMATA_MID: &str =
    "data/alignment/FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.mid";
const PLAIN_WAV: &str = "data/alignment/FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.wav";
const PLAIN_MID: &str = "data/alignment/FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.mid";
const CHOPIN_WAV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";
const CHOPIN_CSV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv";
const BACH_MID: &str = "data/FMP_C1_F12_Bach_BWV846_Sibelius.mid";
const TRAEUMEREI_XML: &str = "data/alignment/FMP_C3S3_Schumann_Op15No7_Traeumerei_MusicXML.xml";

fn scorenmf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(args)
        .output()
        .expect("runs")
}

fn outdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("align")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The share of `aligned` notes within `tol` seconds of the same note (pitch, occurrence) of
/// `truth`, with `truth` moved by `offset`.
fn share_within(aligned: &[Note], truth: &[Note], offset: f64, tol: f64) -> f64 {
    let mut by: HashMap<u8, Vec<f64>> = HashMap::new();
    for n in truth {
        by.entry(n.pitch).or_default().push(n.onset + offset);
    }
    let mut seen: HashMap<u8, usize> = HashMap::new();
    let mut good = 0;
    for n in aligned {
        let k = seen.entry(n.pitch).or_default();
        if let Some(t) = by.get(&n.pitch).and_then(|v| v.get(*k)) {
            if (n.onset - t).abs() <= tol {
                good += 1;
            }
        }
        *k += 1;
    }
    good as f64 / truth.len() as f64
}

fn align(audio: &str, score: &str, out: &Path) -> Vec<Note> {
    let o = scorenmf(&["-q", "align", audio, score, "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read_score(&out.join("aligned_score.csv")).unwrap().notes
}

#[test]
fn musicxml_notation_aligns_to_the_fermata_rendering() {
    let out = outdir("fermata");
    let aligned = align(FERMATA_WAV, BEETHOVEN_XML, &out);
    let truth = read_score(Path::new(FERMATA_MID)).unwrap().notes;
    let share = share_within(&aligned, &truth, 0.0, 0.05);
    assert!(share >= 0.9, "{share:.3} of the notes within 50 ms");
    // The outputs: the MIDI reads back as the same score, the path is strictly increasing, the
    // JSON holds the figures and parameters.
    let mid = read_score(&out.join("aligned_score.mid")).unwrap().notes;
    assert_eq!(mid.len(), aligned.len());
    let path = std::fs::read_to_string(out.join("alignment.csv")).unwrap();
    let points: Vec<(f64, f64)> = path
        .lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(points
        .windows(2)
        .all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("alignment.json")).unwrap())
            .unwrap();
    assert!(json["confidence"].as_f64().unwrap() > 0.4);
    assert_eq!(json["params"]["radius"], 25);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["command"], "align");
    assert_eq!(run["results"]["aligned_notes"], aligned.len());
}

#[test]
fn midi_notation_aligns_and_is_nearly_the_identity_on_its_own_rendering() {
    let out = outdir("plain");
    let aligned = align(PLAIN_WAV, PLAIN_MID, &out);
    let truth = read_score(Path::new(PLAIN_MID)).unwrap().notes;
    let share = share_within(&aligned, &truth, 0.0, 0.05);
    assert!(share >= 0.9, "{share:.3} of the notes within 50 ms");
}

/// Writes `x` with `pad` seconds of silence at both ends.
fn padded(src: &str, pad: f64, dst: &Path) {
    let mut r = hound::WavReader::open(src).unwrap();
    let spec = r.spec();
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    let zeros = vec![0i16; (pad * spec.sample_rate as f64) as usize * spec.channels as usize];
    let mut w = hound::WavWriter::create(dst, spec).unwrap();
    for s in zeros.iter().chain(&samples).chain(&zeros) {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn ten_seconds_of_silence_at_both_ends_are_skipped() {
    let out = outdir("silence");
    std::fs::create_dir_all(&out).unwrap();
    let wav = out.join("padded.wav");
    padded(FERMATA_WAV, 10.0, &wav);
    let aligned = align(wav.to_str().unwrap(), BEETHOVEN_XML, &out.join("out"));
    let truth = read_score(Path::new(FERMATA_MID)).unwrap().notes;
    let share = share_within(&aligned, &truth, 10.0, 0.05);
    assert!(share >= 0.9, "{share:.3} of the notes within 50 ms");
}

#[test]
fn a_score_of_half_the_recording_aligns_to_its_half() {
    let out = outdir("half");
    std::fs::create_dir_all(&out).unwrap();
    let score = read_score(Path::new(BEETHOVEN_XML)).unwrap();
    let half: Vec<Note> = score
        .notes
        .iter()
        .filter(|n| n.onset < score.end() / 2.0)
        .cloned()
        .collect();
    let csv = out.join("half.csv");
    scorenmf::io::score::csv::write(&csv, &half).unwrap();
    let aligned = align(FERMATA_WAV, csv.to_str().unwrap(), &out.join("out"));
    let truth = read_score(Path::new(FERMATA_MID)).unwrap().notes;
    let truth_half: Vec<Note> = truth.into_iter().take(half.len()).collect();
    let share = share_within(&aligned, &truth_half, 0.0, 0.05);
    assert!(share >= 0.9, "{share:.3} of the notes within 50 ms");
}

#[test]
fn a_score_of_another_piece_is_refused_in_one_line() {
    for other in [BACH_MID, TRAEUMEREI_XML] {
        let out = outdir("misfit");
        let o = scorenmf(&["align", CHOPIN_WAV, other, "-o", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{other}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(other) && err.contains(CHOPIN_WAV) && err.contains("confidence"),
            "{err}"
        );
        assert!(!out.join("aligned_score.csv").exists());
        // --force goes on, with a warning.
        let o = scorenmf(&[
            "align",
            "--force",
            CHOPIN_WAV,
            other,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("warning"));
    }
}

#[test]
fn an_unaligned_score_without_align_warns_and_align_fixes_it() {
    let out = outdir("stretched");
    std::fs::create_dir_all(&out).unwrap();
    let score = read_score(Path::new(CHOPIN_CSV)).unwrap();
    let stretched: Vec<Note> = score
        .notes
        .iter()
        .map(|n| Note {
            onset: n.onset * 1.3 + 2.0,
            duration: n.duration * 1.3,
            ..n.clone()
        })
        .collect();
    let csv = out.join("stretched.csv");
    scorenmf::io::score::csv::write(&csv, &stretched).unwrap();
    let dir = out.join("plain");
    let o = scorenmf(&[
        "transcribe",
        CHOPIN_WAV,
        csv.to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning") && err.contains("--align"), "{err}");
    // Notes the stretched score puts after the recording's end are not played, not piled on
    // its last frames.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("notes.json")).unwrap()).unwrap();
    let duration = 234832.0 / 22050.0;
    let at_end = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["onset"].as_f64().unwrap() > duration - 0.05)
        .count();
    assert_eq!(at_end, 0, "events on the last frames");
    // With --align: the transcription's onsets against the annotation.
    let dir = out.join("aligned");
    let o = scorenmf(&[
        "-q",
        "transcribe",
        "--align",
        CHOPIN_WAV,
        csv.to_str().unwrap(),
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "aligned_score.csv",
        "alignment.csv",
        "alignment.json",
        "notes.csv",
        "run.json",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let notes = read_score(&dir.join("notes.csv")).unwrap().notes;
    let share = share_within(&notes, &score.notes, 0.0, 0.05);
    assert!(
        share >= 0.85,
        "{share:.3} of the transcribed notes within 50 ms"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert!(run["results"]["alignment"]["confidence"].as_f64().unwrap() > 0.4);
}

#[test]
fn separate_with_align_writes_stems_and_the_alignment() {
    let out = outdir("separate");
    let o = scorenmf(&[
        "-q",
        "separate",
        "--align",
        PLAIN_WAV,
        BEETHOVEN_XML,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "stems/instrument/lh.wav",
        "stems/instrument/rh.wav",
        "aligned_score.mid",
        "alignment.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["repeats"], "written");
    assert!(run["align"]["params"]["onset_weight"].as_f64().is_some());
}

/// Writes the first `seconds` of `src`.
fn cut(src: &str, seconds: f64, dst: &Path) {
    let mut r = hound::WavReader::open(src).unwrap();
    let spec = r.spec();
    let n = (seconds * spec.sample_rate as f64) as usize * spec.channels as usize;
    let samples: Vec<i16> = r.samples::<i16>().take(n).map(|s| s.unwrap()).collect();
    let mut w = hound::WavWriter::create(dst, spec).unwrap();
    for s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn a_recording_of_part_of_the_score_aligns_that_part_and_leaves_out_the_rest() {
    let out = outdir("part");
    std::fs::create_dir_all(&out).unwrap();
    let wav = out.join("first_half.wav");
    cut(FERMATA_WAV, 12.0, &wav);
    let dir = out.join("out");
    let o = scorenmf(&[
        "align",
        wav.to_str().unwrap(),
        BEETHOVEN_XML,
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside"));
    let aligned = read_score(&dir.join("aligned_score.csv")).unwrap().notes;
    let truth: Vec<Note> = read_score(Path::new(FERMATA_MID))
        .unwrap()
        .notes
        .into_iter()
        .filter(|n| n.onset < 11.5)
        .collect();
    assert!(
        aligned.len() < 117 && aligned.len() + 10 >= truth.len(),
        "{} aligned",
        aligned.len()
    );
    // No note after the recording's end.
    assert!(
        aligned.iter().all(|n| n.onset < 12.0),
        "a note after the end"
    );
    // Measured 0.71: the path starts a few notes into the score (the motif's repeated chords
    // are skipped); see the README's alignment section.
    let share = share_within(&aligned, &truth, 0.0, 0.05);
    assert!(share >= 0.65, "{share:.3} of the notes within 50 ms");
}
