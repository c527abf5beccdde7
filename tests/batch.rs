//! `scorenmf batch` end to end on the bundled example: a manifest with a bad row, per-row
//! options and references; resume, changed options, shards (also from Slurm's variables), a
//! batch killed with SIGKILL and rerun, and `batch summarize`.

use std::path::{Path, PathBuf};
use std::process::Command;

const WAV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";
const CSV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv";

fn scorenmf(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scorenmf"));
    c.args(args);
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("scorenmf-batch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn abs(p: &str) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

fn marker_bytes(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("batch.json")).unwrap()
}

#[test]
fn a_manifest_with_a_bad_row_resumes_and_summarizes() {
    let t = TempDir::new("main");
    // Reference stems with other masks, so that the separation scores are finite.
    let refdir = t.path("ref");
    let (code, err) = scorenmf(
        &[
            "-q",
            "separate",
            WAV,
            CSV,
            "-o",
            refdir.to_str().unwrap(),
            "--mask-power",
            "1",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let manifest = t.path("corpus.csv");
    std::fs::write(
        &manifest,
        format!(
            "name,audio,score,reference_notes,reference_stems,options\n\
             plain,{w},{c},{c},{r},\n\
             pitch,{w},{c},,,--by pitch\n\
             missing,nowhere.wav,{c},,,\n\
             badopt,{w},{c},,,--hop nope\n\
             coarse,{w},{c},,,--hop 1024\n",
            w = abs(WAV),
            c = abs(CSV),
            r = refdir.join("stems/instrument").display()
        ),
    )
    .unwrap();
    let out = t.path("out");
    let o = out.to_str().unwrap();
    let m = manifest.to_str().unwrap();
    let (code, err) = scorenmf(&["batch", m, "-o", o, "--jobs", "2"], &[]);
    assert_ne!(code, 0, "a failed row makes the exit code non-zero: {err}");
    assert!(err.contains("2 of 5 rows failed"), "{err}");
    for name in ["plain", "pitch", "coarse"] {
        let d = out.join(name);
        for f in ["batch.json", "notes.csv", "notes.json", "run.json"] {
            assert!(d.join(f).is_file(), "{name}/{f}");
        }
    }
    assert!(out.join("pitch/stems/pitch").is_dir() && !out.join("pitch/stems/instrument").exists());
    assert!(out.join("plain/stems/instrument/rh.wav").is_file());
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("coarse/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        run["config"]["stft"]["hop"], 1024,
        "the row's own options apply"
    );
    assert!(!out.join("missing").exists() && !out.join("badopt").exists());
    let log = std::fs::read_to_string(out.join("logs/missing.log")).unwrap();
    assert!(log.contains("nowhere.wav"), "{log}");
    let log = std::fs::read_to_string(out.join("logs/badopt.log")).unwrap();
    assert!(log.contains("line 5") && log.contains("nope"), "{log}");
    let failures = std::fs::read_to_string(out.join("failures.csv")).unwrap();
    assert_eq!(failures.lines().count(), 3, "{failures}");
    assert!(failures.contains("missing") && failures.contains("badopt"));
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".partial") || n.starts_with(".old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A rerun skips everything: done rows and rows that failed with the same inputs.
    let before = marker_bytes(&out.join("plain"));
    let (code, err) = scorenmf(&["batch", m, "-o", o], &[]);
    assert_ne!(code, 0);
    assert_eq!(err.matches("skipped (done before)").count(), 3, "{err}");
    assert_eq!(err.matches("failed before").count(), 2, "{err}");
    assert_eq!(marker_bytes(&out.join("plain")), before);

    // Changed options for every row rerun every good row; --retry-failed retries the others.
    let (_, err) = scorenmf(
        &[
            "batch",
            m,
            "-o",
            o,
            "--retry-failed",
            "--",
            "--iterations",
            "50",
        ],
        &[],
    );
    assert_eq!(err.matches("] plain done").count(), 1, "{err}");
    assert_eq!(err.matches("FAILED").count(), 2, "{err}");
    assert_ne!(marker_bytes(&out.join("plain")), before);

    let (code, err) = scorenmf(&["batch", "summarize", o], &[]);
    assert_eq!(code, 0, "{err}");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + 2, "{summary}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let plain: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("plain,"))
        .unwrap()
        .split(',')
        .collect();
    let field = |name: &str| {
        plain[header.iter().position(|h| *h == name).unwrap()]
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        field("onset_f") > 0.9,
        "the score as the reference: {summary}"
    );
    assert!(field("sdr").is_finite() && field("sdr") > 5.0, "{summary}");
    assert!(field("played") > 40.0);
    assert!(
        lines.iter().any(|l| l.starts_with("(mean)"))
            && lines.iter().any(|l| l.starts_with("(median)"))
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["failed"], 2);
    assert_eq!(json["rows"].as_array().unwrap().len(), 3);
}

/// Four rows (the same recording under four names) for the shard and kill tests.
fn four_rows(t: &TempDir) -> String {
    let manifest = t.path("four.tsv");
    let mut text = String::from("name\taudio\tscore\n");
    for i in 0..4 {
        text.push_str(&format!("r{i}\t{}\t{}\n", abs(WAV), abs(CSV)));
    }
    std::fs::write(&manifest, text).unwrap();
    manifest.display().to_string()
}

#[test]
fn shards_split_the_rows_and_follow_slurm() {
    let t = TempDir::new("shards");
    let m = four_rows(&t);
    let out = t.path("out");
    let o = out.to_str().unwrap();
    let (code, err) = scorenmf(
        &[
            "batch",
            &m,
            "-o",
            o,
            "--shard",
            "1/2",
            "--",
            "--by",
            "instrument",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let have = |n: &str| out.join(n).join("batch.json").is_file();
    assert!(!have("r0") && have("r1") && !have("r2") && have("r3"));
    let (code, err) = scorenmf(
        &["batch", &m, "-o", o, "--", "--by", "instrument"],
        &[
            ("SLURM_ARRAY_TASK_ID", "10"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "11"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        have("r0") && have("r2"),
        "array task 10 of 10..11 is shard 0/2: {err}"
    );
    assert_eq!(err.matches("] r").count(), 2, "only its own rows: {err}");
    let (code, err) = scorenmf(&["batch", &m, "-o", o, "--shard", "2/2"], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_killed_batch_loses_nothing_and_reruns_only_unfinished_rows() {
    let t = TempDir::new("kill");
    let m = four_rows(&t);
    let out = t.path("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args([
            "-q",
            "batch",
            &m,
            "-o",
            out.to_str().unwrap(),
            "--jobs",
            "1",
        ])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .spawn()
        .unwrap();
    // Kill it once the first row is finished and before the last is.
    let start = std::time::Instant::now();
    while !out.join("r0/batch.json").is_file() {
        assert!(
            start.elapsed().as_secs() < 120,
            "the first row never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !out.join("r3/batch.json").is_file(),
        "killed before the end"
    );
    let finished: Vec<String> = (0..4)
        .map(|i| format!("r{i}"))
        .filter(|n| out.join(n).exists())
        .collect();
    for n in &finished {
        assert!(
            out.join(n).join("batch.json").is_file(),
            "{n} is in place only when complete"
        );
    }
    let r0 = marker_bytes(&out.join("r0"));
    let (code, err) = scorenmf(
        &["batch", &m, "-o", out.to_str().unwrap(), "--jobs", "1"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(marker_bytes(&out.join("r0")), r0, "r0 was not run again");
    assert_eq!(
        err.matches("skipped (done before)").count(),
        finished.len(),
        "{err}"
    );
    for i in 0..4 {
        assert!(out.join(format!("r{i}/notes.csv")).is_file());
    }
    let leftovers = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_name() != ".failed")
        .count();
    assert_eq!(leftovers, 0, "the killed run's partial folder is gone");
}
