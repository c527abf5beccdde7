//! Corpus throughput: 20 recordings of 3 minutes (the Chopin excerpt repeated, with its score)
//! through `scorenmf batch --jobs 2` with per-instrument stems: hours of audio per hour of wall
//! time, the batch's peak memory, and one row's `run` alone (its peak memory is what each of
//! `--jobs` rows holds at once).
//!
//! Run: `cargo bench --bench batch` (`-- --quick`: 5 recordings).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use scorenmf::io::score;

#[allow(dead_code)]
mod common;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rows = if quick { 5 } else { 20 };
    let dir = Path::new("target/bench-batch");
    std::fs::create_dir_all(dir).unwrap();
    let r = common::Repeated::new(dir, 180.0);
    let csv = dir.join(format!("{}.csv", r.name));
    score::csv::write(&csv, &r.notes(|n, _| n)).unwrap();
    let manifest = dir.join("corpus.csv");
    let mut text = String::from("name,audio,score\n");
    let (wav, csv) = (
        std::fs::canonicalize(&r.wav).unwrap(),
        std::fs::canonicalize(&csv).unwrap(),
    );
    for i in 0..rows {
        text.push_str(&format!("row{i:02},{},{}\n", wav.display(), csv.display()));
    }
    std::fs::write(&manifest, text).unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    println!(
        "scorenmf batch bench: {rows} recordings of {:.0} s, `run --by instrument`",
        r.seconds()
    );
    println!("| what | wall s | audio s | × real time | peak MB |");
    println!("|---|---|---|---|---|");
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(["-q", "batch"])
        .arg(&manifest)
        .arg("-o")
        .arg(&out)
        .args(["--jobs", "2", "--", "--by", "instrument"])
        .spawn()
        .unwrap();
    let (ok, rss) = common::wait_rss(child);
    let wall = t.elapsed().as_secs_f64();
    assert!(ok, "batch failed");
    let audio = rows as f64 * r.seconds();
    println!(
        "| batch --jobs 2 | {wall:.2} | {audio:.0} | {:.0} | {:.0} |",
        audio / wall,
        rss / 1e6
    );
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_scorenmf"))
        .args(["-q", "run"])
        .arg(&wav)
        .arg(&csv)
        .arg("-o")
        .arg(dir.join("one"))
        .args(["--by", "instrument"])
        .spawn()
        .unwrap();
    let (ok, rss) = common::wait_rss(child);
    let wall = t.elapsed().as_secs_f64();
    assert!(ok, "run failed");
    println!(
        "| one run | {wall:.2} | {:.0} | {:.0} | {:.0} |",
        r.seconds(),
        r.seconds() / wall,
        rss / 1e6
    );
}
