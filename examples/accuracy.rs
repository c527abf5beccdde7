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
    let quick = std::env::args().any(|a| a == "--quick");
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
