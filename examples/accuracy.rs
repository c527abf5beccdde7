//! Transcription accuracy with degraded scores: the table in the README.
//!
//!     cargo run --release --example accuracy            # Chopin + synthetic + fluidsynth pieces
//!     cargo run --release --example accuracy -- --quick # Chopin + one short synthetic piece
//!
//! For each piece and seed, the ground-truth score is degraded (onsets + N(0, 60 ms) clipped at
//! ±150 ms, durations × U(0.8, 1.2); `eval::perturb`), transcribed with the default parameters,
//! and scored against the ground truth with mir_eval's onset-only F-measure (50 ms). A second
//! run adds 10 % fake notes to the degraded score and reports how many of them are judged not
//! played, and the precision of the played events. The fluidsynth pieces need `fluidsynth` and
//! the `fluid-soundfont-gm` piano (Debian packages; `scripts/accuracy.sh` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use scorenmf::eval::notes::{evaluate, EvalNote, NoteTolerances};
use scorenmf::eval::perturb::{perturb, Perturbation};
use scorenmf::io::audio::{read_audio, write_wav, Audio, WavEncoding};
use scorenmf::io::score::{midi, read_score, Score};
use scorenmf::pipeline::{run_transcription, Config, Preset};
use scorenmf::signal::synth::{random_piece, render, Timbre};

const SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

struct Piece {
    name: String,
    audio: Audio,
    truth: Score,
}

fn eval_notes(s: &Score) -> Vec<EvalNote> {
    s.notes.iter().map(EvalNote::from_note).collect()
}

fn onset_f(truth: &Score, est: &Score) -> (f64, f64) {
    let t = NoteTolerances {
        offset_ratio: None,
        ..Default::default()
    };
    let s = evaluate(&eval_notes(truth), &eval_notes(est), &t);
    (s.f_measure, s.precision)
}

fn fluidsynth_piece(dir: &Path, name: &str, score: &Score) -> Option<Piece> {
    scorenmf::io::score::csv::write(&dir.join(format!("{name}.csv")), &score.notes).ok()?;
    let mid = dir.join(format!("{name}.mid"));
    let wav = dir.join(format!("{name}.wav"));
    midi::write(&mid, &score.notes).ok()?;
    if !wav.exists() {
        let ok = Command::new("fluidsynth")
            .args(["-ni", "-g", "0.6", "-r", "22050", "-F"])
            .arg(&wav)
            .arg(SOUNDFONT)
            .arg(&mid)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("fluidsynth or {SOUNDFONT} missing: skipping {name} (scripts/accuracy.sh installs them)");
            return None;
        }
    }
    Some(Piece {
        name: name.into(),
        audio: read_audio(&wav).ok()?,
        truth: score.clone(),
    })
}

fn synth_piece(dir: &Path, name: &str, score: &Score) -> Piece {
    let len = ((score.end() + 1.0) * 22050.0) as usize;
    let timbre = |inst: &str| {
        if inst == "lh" {
            Timbre::mellow()
        } else {
            Timbre::bright()
        }
    };
    let x = render(&score.notes, timbre, 22050, len, 1);
    let wav = dir.join(format!("{name}.wav"));
    write_wav(&wav, &[x], 22050, WavEncoding::Float32).unwrap();
    scorenmf::io::score::csv::write(&dir.join(format!("{name}.csv")), &score.notes).unwrap();
    Piece {
        name: name.into(),
        audio: read_audio(&wav).unwrap(),
        truth: score.clone(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--realistic") {
        let dir = args.get(i + 1).map_or("target/realistic", String::as_str);
        realistic(Path::new(dir));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let seeds: u64 = if quick { 2 } else { 5 };
    let dir = PathBuf::from("target/accuracy");
    std::fs::create_dir_all(&dir).unwrap();
    let mut pieces = vec![Piece {
        name: "chopin (real)".into(),
        audio: read_audio(Path::new(
            "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav",
        ))
        .unwrap(),
        truth: read_score(Path::new(
            "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv",
        ))
        .unwrap(),
    }];
    if quick {
        pieces.push(synth_piece(&dir, "synth_30s", &random_piece(30.0, 11)));
    } else {
        pieces.push(synth_piece(&dir, "synth_120s", &random_piece(120.0, 11)));
        for (i, seed) in [21u64, 22].iter().enumerate() {
            if let Some(p) = fluidsynth_piece(
                &dir,
                &format!("fluid_piano_{}", i + 1),
                &random_piece(180.0, *seed),
            ) {
                pieces.push(p);
            }
        }
    }
    let config = Config::preset(Preset::Default);
    println!(
        "| piece | notes | duration | jittered score F | scorenmf F | fakes found | precision with fakes | F with fakes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for piece in &pieces {
        let (mut f_score, mut f_ours, mut found, mut fakes, mut prec, mut f_fake) =
            (0.0, 0.0, 0usize, 0usize, 0.0, 0.0);
        for seed in 0..seeds {
            let jittered = perturb(&piece.truth, &Perturbation::default(), seed);
            f_score += onset_f(&piece.truth, &jittered.score).0;
            let out = run_transcription(&piece.audio, &jittered.score, &config, |_| {}).unwrap();
            let est = Score::new(
                scorenmf::io::outputs::played_notes(&out.transcription),
                vec![],
            );
            f_ours += onset_f(&piece.truth, &est).0;

            let with_fakes = perturb(
                &piece.truth,
                &Perturbation {
                    fake_fraction: 0.1,
                    ..Default::default()
                },
                seed,
            );
            let out = run_transcription(&piece.audio, &with_fakes.score, &config, |_| {}).unwrap();
            fakes += with_fakes.fake.iter().filter(|f| **f).count();
            found += out
                .transcription
                .not_played
                .iter()
                .filter(|u| with_fakes.fake[u.score_note])
                .count();
            let est = Score::new(
                scorenmf::io::outputs::played_notes(&out.transcription),
                vec![],
            );
            let (f, p) = onset_f(&piece.truth, &est);
            prec += p;
            f_fake += f;
        }
        let k = seeds as f64;
        println!(
            "| {} | {} | {:.0} s | {:.3} | **{:.3}** | {}/{} ({:.0} %) | {:.3} | {:.3} |",
            piece.name,
            piece.truth.notes.len(),
            piece.audio.duration(),
            f_score / k,
            f_ours / k,
            found,
            fakes,
            100.0 * found as f64 / fakes.max(1) as f64,
            prec / k,
            f_fake / k
        );
    }
    println!("\n{seeds} seeds per piece; onset-only F-measure (mir_eval, 50 ms), mean over seeds.");
}

/// mir_eval's default note F-measure: onsets within 50 ms and offsets within 20 % of the
/// reference note's duration or 50 ms, whichever is larger.
fn offset_f(truth: &Score, est: &Score) -> f64 {
    evaluate(
        &eval_notes(truth),
        &eval_notes(est),
        &NoteTolerances::default(),
    )
    .f_measure
}

fn transcribe(audio: &Audio, score: &Score, config: &Config) -> (Score, Vec<usize>) {
    let out = run_transcription(audio, score, config, |_| {}).unwrap();
    let est = Score::new(
        scorenmf::io::outputs::played_notes(&out.transcription),
        vec![],
    );
    let unplayed = out
        .transcription
        .not_played
        .iter()
        .map(|u| u.score_note)
        .collect();
    (est, unplayed)
}

/// The pieces of `scripts/realistic_material.py` in `dir`, reported one by one: with the exact
/// score (NAME.score.csv: the played onsets, the keys' release as offsets), with the jittered
/// score (seeds 0-2), and with 10 % fake notes added to the jittered score; truth is
/// NAME.truth.csv (offsets where the sound stops, the pedal included).
fn realistic(dir: &Path) {
    const SEEDS: u64 = 3;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/accuracy.sh --realistic)",
                dir.display()
            )
        })
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".truth.csv").map(str::to_string)
        })
        .collect();
    names.sort();
    let config = Config::preset(Preset::Default);
    println!("| piece | notes | duration | exact score F | scorenmf F (exact) | real notes not played (exact) | score F with offsets | scorenmf F with offsets (exact) | jittered score F | scorenmf F (jittered) | scorenmf F with offsets (jittered) | fakes found | precision with fakes | real notes not played (fakes) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut sum = [0.0f64; 4];
    for name in &names {
        let audio = read_audio(&dir.join(format!("{name}.wav"))).unwrap();
        let truth = read_score(&dir.join(format!("{name}.truth.csv"))).unwrap();
        let exact = read_score(&dir.join(format!("{name}.score.csv"))).unwrap();
        let (est, unplayed) = transcribe(&audio, &exact, &config);
        let exact_f = onset_f(&truth, &exact).0;
        let ours_exact = onset_f(&truth, &est).0;
        let (mut f_jit, mut ours_jit, mut off_jit) = (0.0, 0.0, 0.0);
        let (mut found, mut fakes, mut prec, mut lost, mut real) = (0, 0, 0.0, 0, 0);
        for seed in 0..SEEDS {
            let jittered = perturb(&exact, &Perturbation::default(), seed);
            f_jit += onset_f(&truth, &jittered.score).0;
            let (e, _) = transcribe(&audio, &jittered.score, &config);
            ours_jit += onset_f(&truth, &e).0;
            off_jit += offset_f(&truth, &e);
            let p = Perturbation {
                fake_fraction: 0.1,
                ..Default::default()
            };
            let with_fakes = perturb(&exact, &p, seed);
            let (e, unplayed) = transcribe(&audio, &with_fakes.score, &config);
            fakes += with_fakes.fake.iter().filter(|f| **f).count();
            real += with_fakes.fake.iter().filter(|f| !**f).count();
            found += unplayed.iter().filter(|&&i| with_fakes.fake[i]).count();
            lost += unplayed.iter().filter(|&&i| !with_fakes.fake[i]).count();
            prec += onset_f(&truth, &e).1;
        }
        let k = SEEDS as f64;
        sum[0] += ours_exact - exact_f;
        sum[1] += ours_jit / k;
        sum[2] += found as f64 / fakes.max(1) as f64;
        sum[3] += lost as f64 / real.max(1) as f64;
        println!(
            "| {name} | {} | {:.0} s | {exact_f:.3} | **{ours_exact:.3}** | {} ({:.1} %) | {:.3} | {:.3} | {:.3} | **{:.3}** | {:.3} | {found}/{fakes} ({:.0} %) | {:.3} | {lost}/{real} ({:.1} %) |",
            truth.notes.len(),
            audio.duration(),
            unplayed.len(),
            100.0 * unplayed.len() as f64 / exact.notes.len() as f64,
            offset_f(&truth, &exact),
            offset_f(&truth, &est),
            f_jit / k,
            ours_jit / k,
            off_jit / k,
            100.0 * found as f64 / fakes.max(1) as f64,
            prec / k,
            100.0 * lost as f64 / real.max(1) as f64,
        );
    }
    let n = names.len().max(1) as f64;
    println!(
        "\nMean over {} pieces: scorenmf F (exact) − exact score F {:+.3}; scorenmf F (jittered) {:.3}; fakes found {:.1} %; real notes lost with fakes {:.2} %.",
        names.len(),
        sum[0] / n,
        sum[1] / n,
        100.0 * sum[2] / n,
        100.0 * sum[3] / n
    );
    println!("Jittered: onsets + N(0, 60 ms) clipped at ±150 ms, durations × U(0.8, 1.2), seeds 0-{}; fakes: 10 % added to the jittered score. F: mir_eval onset-only (50 ms); with offsets: mir_eval's default (20 % of the duration or 50 ms).", SEEDS - 1);
}
