//! The command line: `inspect` on the bundled example, and every bad-input case giving a one-line
//! error that names the file (and the place in it) with exit code 2.

use std::path::{Path, PathBuf};
use std::process::Command;

const WAV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";
const CSV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv";

fn scorenmf(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("scorenmf-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn inspect_reports_the_chopin_example() {
    let (code, out, err) = scorenmf(&["inspect", WAV, CSV]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("duration    10.65 s"), "{out}");
    assert!(out.contains("sample rate 22050 Hz"), "{out}");
    assert!(out.contains("channels    1"), "{out}");
    assert!(out.contains("WAV, 16-bit integer"), "{out}");
    assert!(out.contains("notes       54"), "{out}");
    assert!(out.contains("8 distinct (54..72)"), "{out}");
    assert!(
        out.contains("instruments 2: lh (48 notes), rh (6 notes)"),
        "{out}"
    );
    // Four notes are annotated to end 30 ms after the recording does.
    assert!(out.contains("4 notes end after the audio"), "{out}");
}

#[test]
fn inspect_reads_midi_scores() {
    let (code, out, err) = scorenmf(&["inspect", WAV, "data/FMP_C1_F12_Bach_BWV846_Sibelius.mid"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("notes       130"), "{out}");
    assert!(out.contains("instruments 1: Piano (130 notes)"), "{out}");
    assert!(out.contains("97 of them start after it"), "{out}");
}

/// Runs `inspect` and checks for exit code 2 and one line of error naming `file` and `expect`.
fn fails(audio: &str, score: Option<&str>, file: &str, expect: &str) {
    let mut args = vec!["inspect", audio];
    args.extend(score);
    let (code, out, err) = scorenmf(&args);
    assert_eq!(code, 2, "exit code for {expect}: stdout {out} stderr {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(file), "names {file}: {err}");
    assert!(err.contains(expect), "says {expect}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    cursor.into_inner()
}

#[test]
fn bad_audio_inputs() {
    let t = TempDir::new("audio");
    fails("no/such.wav", None, "no/such.wav", "No such file");
    let text = t.file("notes.wav", b"\"Start\";\"Duration\"\n1;2\n");
    fails(&text, None, &text, "not a recognized audio file");
    let empty_file = t.file("zero.wav", b"");
    fails(&empty_file, None, &empty_file, "empty file");
    let empty_wav = t.file("empty.wav", &wav_bytes(&[]));
    fails(&empty_wav, None, &empty_wav, "no audio samples");
    let full = wav_bytes(&(0..1000).map(|i| (i * 13) as i16).collect::<Vec<_>>());
    let truncated = t.file("truncated.wav", &full[..full.len() - 501]);
    fails(&truncated, None, &truncated, "truncated");
    let header_only = t.file("header.wav", &full[..30]);
    fails(&header_only, None, &header_only, "not a valid WAV file");
    let garbage = t.file("garbage.flac", b"fLaC\x00\x01\x02garbage");
    fails(&garbage, None, &garbage, "not a readable audio file");
}

#[test]
fn bad_csv_scores() {
    let t = TempDir::new("csv");
    let cases: [(&str, &str, &str); 9] = [
        (
            "nopitch.csv",
            "Start;Duration\n0;1\n",
            "line 1: missing required column Pitch",
        ),
        (
            "badvalue.csv",
            "Start;Duration;Pitch\n0;1;60\n0;abc;60\n",
            "line 3, column Duration: 'abc' is not a number",
        ),
        (
            "negative.csv",
            "Start;Duration;Pitch\n-0.5;1;60\n",
            "line 2, column Start: onset -0.5 s is negative",
        ),
        (
            "negdur.csv",
            "Start;Duration;Pitch\n0.5;-1;60\n",
            "line 2, column Duration: duration -1 s is negative",
        ),
        (
            "nan.csv",
            "Start;Duration;Pitch\nnan;1;60\n",
            "line 2, column Start: onset NaN",
        ),
        (
            "inf.csv",
            "Start;Duration;Pitch\n0;inf;60\n",
            "line 2, column Duration: duration inf",
        ),
        (
            "pitch.csv",
            "Start;Duration;Pitch\n0;1;128\n",
            "line 2, column Pitch: pitch 128 is not a MIDI pitch",
        ),
        (
            "nonotes.csv",
            "\"Start\";\"Duration\";\"Pitch\"\n",
            "no notes",
        ),
        (
            "binary.csv",
            "\u{0}\u{1}\u{2}\u{3}",
            "missing required column",
        ),
    ];
    for (name, text, expect) in cases {
        let path = t.file(name, text.as_bytes());
        fails(WAV, Some(&path), &path, expect);
    }
    let invalid_utf8 = t.file("latin1.csv", b"Start;Duration;Pitch\n0;1;60\xff\n");
    fails(WAV, Some(&invalid_utf8), &invalid_utf8, "not a text file");
    fails(WAV, Some("no/such.csv"), "no/such.csv", "No such file");
}

#[test]
fn bad_midi_scores() {
    let t = TempDir::new("midi");
    let real = std::fs::read("data/FMP_C1_F12_Bach_BWV846_Sibelius.mid").unwrap();
    let corrupt = t.file(
        "corrupt.mid",
        b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x03\xc0MTrkjunk",
    );
    fails(
        WAV,
        Some(&corrupt),
        &corrupt,
        "track 1: truncated or corrupt",
    );
    let truncated = t.file("truncated.mid", &real[..real.len() / 2]);
    fails(WAV, Some(&truncated), &truncated, "truncated or corrupt");
    let header = t.file("header.mid", &real[..9]);
    fails(WAV, Some(&header), &header, "not a valid MIDI file");
    // A valid file with only a conductor track.
    let no_notes = t.file(
        "nonotes.mid",
        &[
            b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0".as_slice(),
            b"MTrk\x00\x00\x00\x0b\x00\xff\x51\x03\x07\xa1\x20\x00\xff\x2f\x00",
        ]
        .concat(),
    );
    fails(WAV, Some(&no_notes), &no_notes, "no notes");
}

#[test]
fn help_for_every_command() {
    for args in [
        &["--help"][..],
        &["inspect", "--help"],
        &["decompose", "--help"],
        &["hpss", "--help"],
    ] {
        let (code, out, _) = scorenmf(args);
        assert_eq!(code, 0);
        assert!(out.contains("Usage: scorenmf"), "{out}");
    }
}

#[test]
fn inputs_are_not_modified() {
    let before = std::fs::read(Path::new(CSV)).unwrap();
    let (code, _, _) = scorenmf(&["inspect", WAV, CSV]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(Path::new(CSV)).unwrap(), before);
}

#[test]
fn run_writes_every_output_deterministically() {
    let t = TempDir::new("run");
    let out_a = t.0.join("a").display().to_string();
    let out_b = t.0.join("b").display().to_string();
    let profile = t.0.join("profile.json").display().to_string();
    for out in [&out_a, &out_b] {
        let mut args = vec![
            "-q",
            "run",
            WAV,
            CSV,
            "-o",
            out,
            "--by",
            "instrument,pitch,note",
        ];
        // The second run also profiles itself, which must not change its outputs.
        if out == &out_b {
            args.extend(["--profile", &profile]);
        }
        let (code, _, err) = scorenmf(&args);
        assert_eq!(code, 0, "{err}");
    }
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    let stages = p["stages"].as_array().unwrap();
    let nmf = stages
        .iter()
        .find(|s| s["name"] == "nmf")
        .expect("an nmf stage");
    assert!(nmf["seconds"].as_f64().unwrap() > 0.0, "{nmf}");
    assert!(nmf["cpu_seconds"].as_f64().unwrap() > 0.0, "{nmf}");
    assert!(nmf["peak_rss"].as_u64().unwrap() > 0, "{nmf}");
    assert_eq!(p["nmf"]["iterations"], 100);
    let a = Path::new(&out_a);
    for f in [
        "notes.csv",
        "notes.mid",
        "notes.json",
        "run.json",
        "stems/instrument/lh.wav",
        "stems/instrument/rh.wav",
        "stems/pitch/71_B4.wav",
        "stems/pitch/54_Fs3.wav",
        "stems/residual.wav",
    ] {
        let x = std::fs::read(a.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        let y = std::fs::read(Path::new(&out_b).join(f)).unwrap();
        assert!(x == y, "{f} differs between two identical runs");
    }
    assert!(std::fs::read_dir(a.join("stems/note")).unwrap().count() > 40);
    // notes.csv and notes.mid read back as scores; run.json records the inputs' SHA-256.
    let (code, out, _) = scorenmf(&["inspect", WAV, &a.join("notes.csv").display().to_string()]);
    assert_eq!(code, 0);
    assert!(out.contains("notes       53"), "{out}");
    let (code, out, _) = scorenmf(&["inspect", WAV, &a.join("notes.mid").display().to_string()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("instruments 2: lh (48 notes), rh (5 notes)"),
        "{out}"
    );
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(run["config"]["nmf"]["iterations"], 100);
    let notes: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("notes.json")).unwrap()).unwrap();
    assert_eq!(notes["not_played"][0]["score_note"], 0);
    assert!(notes["note_stems"].as_array().unwrap().len() > 40);
    // The evaluation commands read what run wrote.
    let (code, out, err) = scorenmf(&[
        "eval",
        "notes",
        CSV,
        &a.join("notes.csv").display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("onset+offset (0.2)"), "{out}");
    let (code, out, err) = scorenmf(&[
        "eval",
        "score-diff",
        CSV,
        &a.join("notes.json").display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("53 of 54 score notes played; 1 not played"),
        "{out}"
    );
    let lh = a.join("stems/instrument/lh.wav").display().to_string();
    let rh = a.join("stems/instrument/rh.wav").display().to_string();
    let (code, out, err) = scorenmf(&[
        "eval",
        "stems",
        &format!("{lh},{rh}"),
        &format!("{lh},{rh}"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mean"), "{out}");
}

#[test]
fn fmp_preset_and_bad_parameters() {
    let t = TempDir::new("fmp");
    let out = t.0.join("o").display().to_string();
    let (code, _, err) = scorenmf(&["-q", "transcribe", WAV, CSV, "-o", &out, "--preset", "fmp"]);
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.0.join("o/run.json")).unwrap()).unwrap();
    assert_eq!(run["config"]["stft"]["hop"], 1024);
    let (code, _, err) = scorenmf(&["transcribe", WAV, CSV, "-o", &out, "--hop", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("error: invalid parameter"), "{err}");
    let (code, _, err) = scorenmf(&["transcribe", WAV, CSV, "-o", &out, "--tol-note", "x"]);
    assert_eq!(code, 2, "{err}");
    for cmd in ["transcribe", "separate", "run"] {
        let (code, out, _) = scorenmf(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("[default:"), "{cmd} --help shows defaults");
    }
}

#[test]
fn eval_stems_matches_files_by_name_and_refuses_mismatched_folders() {
    let t = TempDir::new("evalstems");
    let out = t.0.join("o");
    let o = out.display().to_string();
    let (code, _, err) = scorenmf(&[
        "-q",
        "separate",
        WAV,
        CSV,
        "-o",
        &o,
        "--by",
        "instrument,pitch",
    ]);
    assert_eq!(code, 0, "{err}");
    let dir = |d: &str| out.join(d).display().to_string();
    // Identical folders: each file is matched by name and said so; a perfect estimate's scores
    // and their framewise medians are infinite, never NaN.
    let inst = dir("stems/instrument");
    let (code, stdout, err) = scorenmf(&["eval", "stems", &inst, &inst, "--framewise"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("matched") && err.contains("lh.wav") && err.contains("rh.wav"),
        "{err}"
    );
    assert!(stdout.contains("median over 1 s windows"), "{stdout}");
    assert!(!stdout.contains("NaN"), "{stdout}");
    // A run's `stems/` holds one folder per grouping: refused, naming them.
    let stems = dir("stems");
    let (code, _, err) = scorenmf(&["eval", "stems", &stems, &stems]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds folders (instrument, pitch)"), "{err}");
    // Two groupings share no file name.
    let (code, _, err) = scorenmf(&["eval", "stems", &inst, &dir("stems/pitch")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no stem file name in common"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn inspect_a_score_alone_and_options_only_where_they_apply() {
    let (code, out, err) = scorenmf(&["inspect", CSV]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("score       "), "{out}");
    assert!(out.contains("notes       54"), "{out}");
    assert!(!out.contains("audio"), "{out}");
    let (code, out, err) = scorenmf(&["inspect", "data/FMP_C1_F12_Bach_BWV846_Sibelius.mid"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("score       "), "{out}");
    // The analysing commands' options are theirs alone.
    for args in [
        &["--profile", "p.json", "inspect", WAV][..],
        &["inspect", WAV, "--threads", "2"],
        &["eval", "notes", CSV, CSV, "--profile", "p.json"],
    ] {
        let (code, _, err) = scorenmf(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("unexpected argument"), "{args:?}: {err}");
    }
    let (_, help, _) = scorenmf(&["eval", "--help"]);
    assert!(help.contains("notes") && help.contains("stems"), "{help}");
    let (_, help, _) = scorenmf(&["eval", "stems", "--help"]);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("1 when given without a value"), "{help}");
}

#[test]
fn outputs_never_replace_inputs() {
    let t = TempDir::new("inputs");
    let wav = t.file("rec.wav", &std::fs::read(WAV).unwrap());
    let score_bytes = std::fs::read(CSV).unwrap();
    let score = t.file("notes.csv", &score_bytes);
    let dir = t.0.display().to_string();
    // The score is named like the transcription and OUTDIR is its folder.
    let (code, _, err) = scorenmf(&["run", &wav, &score, "-o", &dir]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would overwrite the input score"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // The profile named like the recording; OUTDIR given through `..`.
    let (code, _, err) = scorenmf(&[
        "transcribe",
        &wav,
        CSV,
        "-o",
        &format!("{dir}/x/.."),
        "--profile",
        &wav,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would overwrite the input recording"), "{err}");
    // A recording inside the stems folder the run would write.
    std::fs::create_dir_all(t.0.join("o/stems")).unwrap();
    let inside = t.file("o/stems/residual.wav", &std::fs::read(WAV).unwrap());
    let (code, _, err) = scorenmf(&[
        "separate",
        &inside,
        CSV,
        "-o",
        &t.0.join("o").display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would overwrite the input recording"), "{err}");
    // Nothing was written, nothing was changed.
    assert_eq!(std::fs::read(&score).unwrap(), score_bytes);
    assert_eq!(std::fs::read(&wav).unwrap(), std::fs::read(WAV).unwrap());
    assert!(!t.0.join("run.json").exists());
    // A transcription beside its score, under another name, is fine.
    let (code, _, err) = scorenmf(&[
        "-q",
        "transcribe",
        &wav,
        &score,
        "-o",
        &format!("{dir}/out"),
    ]);
    assert_eq!(code, 0, "{err}");
}

/// A mono 16-bit WAV of `samples` at `rate` Hz.
fn wav_at(rate: u32, samples: &[i16]) -> Vec<u8> {
    let mut bytes = wav_bytes(samples);
    bytes[24..28].copy_from_slice(&rate.to_le_bytes());
    bytes[28..32].copy_from_slice(&(2 * rate).to_le_bytes());
    bytes
}

#[test]
fn sizes_that_would_exhaust_memory_are_refused_up_front() {
    let t = TempDir::new("bounds");
    let noise: Vec<i16> = (0..44_000)
        .map(|i| ((i * 7919) % 20000 - 10000) as i16)
        .collect();
    for rate in [1u32, 2, 999, 2_147_483_647] {
        let f = t.file(&format!("r{rate}.wav"), &wav_at(rate, &noise));
        fails(&f, None, &f, "is outside 1000..=768000 Hz");
        let (code, _, err) = scorenmf(&[
            "transcribe",
            &f,
            CSV,
            "-o",
            &t.0.join("o").display().to_string(),
        ]);
        assert_eq!(code, 2, "{err}");
    }
    let out = t.0.join("o").display().to_string();
    for (opt, value, expect) in [
        ("--n-fft", "100000000", "n_fft 100000000"),
        ("--hop", "4096", "hop 4096"),
        ("--threads", "100000", "--threads 100000"),
        ("--iterations", "100000000", "--iterations"),
    ] {
        let (code, _, err) = scorenmf(&["transcribe", WAV, CSV, "-o", &out, opt, value]);
        assert_eq!(code, 2, "{opt} {value}: {err}");
        assert!(err.contains(expect), "{opt} {value}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // More instrument labels than the stems are built for, and one enormous label.
    let mut many = String::from("Start;Duration;Pitch;Velocity;Instrument\n");
    for i in 0..2000 {
        many.push_str(&format!("{}.0;0.5;60;0.5;part{i}\n", i % 10));
    }
    let f = t.file("many.csv", many.as_bytes());
    fails(WAV, Some(&f), &f, "2000 distinct instrument labels");
    let huge = format!(
        "Start;Duration;Pitch;Velocity;Instrument\n1.0;0.5;60;0.5;{}\n",
        "x".repeat(5_000_000)
    );
    let f = t.file("huge.csv", huge.as_bytes());
    let (code, _, err) = scorenmf(&["inspect", WAV, &f]);
    assert_eq!(code, 2, "{}", &err[..err.len().min(300)]);
    assert!(
        err.len() < 300,
        "a short error line, not the label: {} bytes",
        err.len()
    );
}

#[test]
fn every_numeric_option_is_range_checked() {
    let t = TempDir::new("ranges");
    let out = t.0.join("o").display().to_string();
    for (opt, value) in [
        ("--mask-power", "inf"),
        ("--mask-power", "1e308"),
        ("--mask-power", "-1"),
        ("--mask-power", "nan"),
        ("--gamma", "nan"),
        ("--eps", "inf"),
        ("--search", "0"),
        ("--prior-sigma", "-1"),
        ("--threshold", "nan"),
        ("--offset-fraction", "2"),
        ("--min-gap", "inf"),
        ("--chord-tol", "-0.1"),
        ("--a4", "0"),
        ("--tol-pitch", "0.7"),
        ("--onset-hop", "0"),
        ("--nmf-tile", "0"),
        ("--stop-threshold", "nan"),
        ("--sample-rate", "500"),
    ] {
        let arg = format!("{opt}={value}");
        let (code, _, err) = scorenmf(&["run", WAV, CSV, "-o", &out, &arg]);
        assert_eq!(code, 2, "{arg}: {err}");
        assert!(err.starts_with("error: invalid parameter"), "{arg}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(
        !t.0.join("o").exists(),
        "nothing written for a bad parameter"
    );
}

#[test]
fn bad_samples_and_mismatched_stems_are_named() {
    let t = TempDir::new("samples");
    // A float WAV with a NaN at sample 3000 (0.136 s): refused by every command, naming the time.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let write = |name: &str, spec: hound::WavSpec, n: usize, bad: Option<usize>| {
        let p = t.0.join(name);
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..n * spec.channels as usize {
            let v = if Some(i) == bad {
                f32::NAN
            } else {
                ((i % 50) as f32 - 25.0) / 100.0
            };
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        p.display().to_string()
    };
    let nan = write("nan.wav", spec, 22050, Some(3000));
    fails(
        &nan,
        None,
        &nan,
        "sample 3000 of channel 1 (at 0.136 s) is NaN",
    );
    let ok = write("ok.wav", spec, 22050, None);
    let (code, _, err) = scorenmf(&["eval", "stems", &ok, &nan]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nan.wav") && err.contains("is NaN"), "{err}");
    // A missing estimate is named, not counted.
    let (code, _, err) = scorenmf(&["eval", "stems", &ok, "/nonexistent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
    // A short estimate, and stereo against mono.
    let short = write("short.wav", spec, 1000, None);
    let (code, _, err) = scorenmf(&["eval", "stems", &ok, &short]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("1000 samples where the reference has 22050"),
        "{err}"
    );
    let stereo = write(
        "stereo.wav",
        hound::WavSpec {
            channels: 2,
            ..spec
        },
        22050,
        None,
    );
    let (code, _, err) = scorenmf(&["eval", "stems", &ok, &stereo]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 channels where the reference has 1"),
        "{err}"
    );
}

#[test]
fn a_killed_run_leaves_the_old_outputs_or_the_new_ones() {
    let t = TempDir::new("killed");
    let out = t.0.join("o");
    let o = out.display().to_string();
    let (code, _, err) = scorenmf(&["-q", "transcribe", WAV, CSV, "-o", &o, "--preset", "fmp"]);
    assert_eq!(code, 0, "{err}");
    let mut killed_while_writing = 0;
    let old_notes = std::fs::read(out.join("notes.csv")).unwrap();
    let record = |dir: &Path| -> Option<String> {
        let run: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("run.json")).ok()?).ok()?;
        Some(run["command"].as_str()?.to_string())
    };
    // Kills every 15 ms into the run, until one finishes first.
    for delay_ms in (1..=200u64).map(|i| 15 * i) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
            .args([
                "-q",
                "run",
                WAV,
                CSV,
                "-o",
                &o,
                "--by",
                "instrument,pitch,note",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        match record(&out).as_deref() {
            // The old run's outputs, unchanged, and nothing of the new one.
            Some("transcribe") => {
                let staged = std::fs::read_dir(&out).unwrap().flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".scorenmf-staging-")
                });
                killed_while_writing += usize::from(staged);
                assert_eq!(std::fs::read(out.join("notes.csv")).unwrap(), old_notes);
                assert!(
                    !out.join("stems").exists(),
                    "killed after {delay_ms} ms: new stems beside the old run.json"
                );
            }
            // The new run finished before the kill: all of it is there.
            Some("run") => {
                for f in [
                    "notes.csv",
                    "stems/instrument/lh.wav",
                    "stems/pitch/71_B4.wav",
                    "stems/residual.wav",
                ] {
                    assert!(out.join(f).exists(), "{f} missing beside the new run.json");
                }
                break;
            }
            // Killed in the microseconds between the old run.json's removal and the new one's
            // arrival: the folder says it is incomplete (documented); go on.
            None => {}
            Some(other) => panic!("killed after {delay_ms} ms: run.json says {other}"),
        }
    }
    assert!(
        killed_while_writing > 0,
        "no kill landed while the outputs were written"
    );
    // A finished run afterwards removes what the killed ones left behind.
    let (code, _, err) = scorenmf(&["-q", "run", WAV, CSV, "-o", &o]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(record(&out).as_deref(), Some("run"));
    for dir in [out.clone(), out.join("stems"), out.join("stems/instrument")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{name} left in {}", dir.display());
        }
    }
    // The stems folder is the last run's alone: per-instrument stems only.
    assert!(!out.join("stems/pitch").exists() && !out.join("stems/note").exists());
}

/// A format-0 MIDI file of one track holding `events` (delta-time prefixed), end of track added.
fn smf(events: &[u8]) -> Vec<u8> {
    let mut track = events.to_vec();
    track.extend_from_slice(b"\x00\xff\x2f\x00");
    let mut bytes = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk".to_vec();
    bytes.extend_from_slice(&(track.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&track);
    bytes
}

#[test]
fn corrupt_tracks_and_unclosed_quotes_are_refused() {
    let t = TempDir::new("corrupt");
    let three = b"\x00\x90\x3c\x40\x60\x80\x3c\x00\x00\x90\x3e\x40\x60\x80\x3e\x00\x00\x90\x40\x40\x60\x80\x40\x00";
    let good = t.file("good.mid", &smf(three));
    let (code, out, err) = scorenmf(&["inspect", WAV, &good]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("notes       3"), "{out}");
    // An undefined status byte (0xF4) where the second note-on was: midly alone kept 1 note.
    let mut f4 = three.to_vec();
    f4[9] = 0xf4;
    let f4 = t.file("f4.mid", &smf(&f4));
    fails(WAV, Some(&f4), &f4, "track 1: event 3");
    // A text meta event whose length runs past the track.
    let mut overrun = three[..8].to_vec();
    overrun.extend_from_slice(b"\x00\xff\x01\x7fab");
    overrun.extend_from_slice(&three[8..]);
    let overrun = t.file("overrun.mid", &smf(&overrun));
    fails(WAV, Some(&overrun), &overrun, "track 1: event 3");
    // An unclosed quote swallowed the next row into a label.
    let csv = t.file(
        "quote.csv",
        b"Start;Duration;Pitch;Velocity;Instrument\n1;0.5;60;0.5;\"lh\n2;0.5;62;0.5;rh\n",
    );
    fails(
        WAV,
        Some(&csv),
        &csv,
        "line 2: a quoted field runs past the end of its line",
    );
}

#[test]
fn truncated_audio_is_refused_and_streamed_wavs_are_read() {
    let t = TempDir::new("truncated");
    for name in [
        "stereo_440_660.flac",
        "stereo_440_660.mp3",
        "stereo_440_660.ogg",
        "stereo_440_660_f64.wav",
    ] {
        let full = std::fs::read(format!("tests/data/audio/{name}")).unwrap();
        let (code, out, err) = scorenmf(&["inspect", &format!("tests/data/audio/{name}")]);
        assert_eq!(code, 0, "{err}");
        if name.ends_with("_f64.wav") {
            // WAVE_FORMAT_EXTENSIBLE with a float sub-format: float, not 64-bit integer.
            assert!(out.contains("WAV, 64-bit float"), "{out}");
        }
        let whole: usize = out
            .split('(')
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for k in 1..40 {
            let cut = t.file(name, &full[..full.len() * k / 40]);
            let (code, out, err) = scorenmf(&["inspect", &cut]);
            if code == 0 {
                // Only a cut within the last MP3 frame may be read.
                let got: usize = out
                    .split('(')
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(
                    name.ends_with(".mp3") && got + 1152 >= whole,
                    "{name} cut at {k}/40 read as {got} of {whole} samples"
                );
            } else {
                assert_eq!(code, 2, "{err}");
                assert_eq!(err.lines().count(), 1, "{err}");
            }
        }
    }
    // A 64-bit float WAV as sox writes it (format tag 3, no extension), and one written to a pipe
    // (data and RIFF sizes 0xFFFFFFFF, as ffmpeg leaves them).
    let n = 2205usize;
    let mut f64_wav =
        b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x03\0\x01\0\x22\x56\0\0\x10\xb1\x02\0\x08\0\x40\0data"
            .to_vec();
    f64_wav.extend_from_slice(&((8 * n) as u32).to_le_bytes());
    for i in 0..n {
        f64_wav.extend_from_slice(&(0.5 * (i as f64 * 0.1).sin()).to_le_bytes());
    }
    let riff = (f64_wav.len() - 8) as u32;
    f64_wav[4..8].copy_from_slice(&riff.to_le_bytes());
    let plain = t.file("f64.wav", &f64_wav);
    let (code, out, err) = scorenmf(&["inspect", &plain]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("WAV, 64-bit float") && out.contains("(2205 samples)"),
        "{out}"
    );
    let mut piped = wav_bytes(
        &(0..22050)
            .map(|i| ((i * 31) % 2000) as i16)
            .collect::<Vec<_>>(),
    );
    piped[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    piped[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    let piped = t.file("piped.wav", &piped);
    let (code, out, err) = scorenmf(&["inspect", &piped]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(22050 samples)"), "{out}");
}

#[test]
fn a_score_far_denser_than_its_recording_is_refused() {
    let t = TempDir::new("dense");
    let mut rows = String::from("Start;Duration;Pitch\n");
    for i in 0..4000 {
        rows.push_str(&format!(
            "{};0.3;{}\n",
            (i % 1000) as f64 / 100.0,
            40 + i % 40
        ));
    }
    let f = t.file("dense.csv", rows.as_bytes());
    let (code, _, err) = scorenmf(&[
        "transcribe",
        WAV,
        &f,
        "-o",
        &t.0.join("o").display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("dense.csv") && err.contains("4000 notes for 10.6 s of audio"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_run_that_cannot_write_its_outputs_leaves_the_old_ones() {
    let t = TempDir::new("full");
    let out = t.0.join("o");
    let o = out.display().to_string();
    let (code, _, err) = scorenmf(&["-q", "transcribe", WAV, CSV, "-o", &o]);
    assert_eq!(code, 0, "{err}");
    let old: Vec<Vec<u8>> = ["notes.csv", "notes.json", "run.json"]
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    // As on a full disk: files may not grow past 200 blocks of 512 bytes (the stems are larger),
    // and the signal that limit raises is ignored, so the write fails with EFBIG.
    let script = format!(
        "trap '' XFSZ; ulimit -f 200; exec {} -q run {WAV} {CSV} -o {o}",
        env!("CARGO_BIN_EXE_scorenmf")
    );
    let run = Command::new("sh").args(["-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for (f, bytes) in ["notes.csv", "notes.json", "run.json"].iter().zip(&old) {
        assert_eq!(&std::fs::read(out.join(f)).unwrap(), bytes, "{f} changed");
    }
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with('.') || n == "stems"),
        "{names:?}"
    );
}

#[test]
fn too_many_components_are_refused() {
    let t = TempDir::new("components");
    let mut rows = String::from("Start;Duration;Pitch;Velocity;Instrument\n");
    for i in 0..1200 {
        rows.push_str(&format!(
            "{};0.3;{};0.5;p{}\n",
            (i % 100) as f64 / 10.0,
            21 + i % 88,
            i % 100
        ));
    }
    let f = t.file("wide.csv", rows.as_bytes());
    let out = t.0.join("o").display().to_string();
    let (code, _, err) = scorenmf(&["transcribe", WAV, &f, "-o", &out, "--per-instrument"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("components, at most 1024"), "{err}");
}

#[test]
fn a_decoder_panic_on_malformed_data_is_an_error() {
    // Found by fuzz/ (audio_decode): an ID3v2 tag that reaches an `unreachable!` in
    // symphonia-metadata's ID3 reader.
    let t = TempDir::new("id3");
    let bytes = b"ID3\x04\x12\xff\x02\x00\xff\xff\xff\x32\x06\x00\x01\x1f\x01\x40\x00\x00\xfc";
    let f = t.file("tag.mp3", bytes);
    fails(&f, None, &f, "its decoder failed on malformed data");
}
