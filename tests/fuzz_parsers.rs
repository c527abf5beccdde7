//! Every parser fed truncated and random bytes must return an error or a value, never panic;
//! and the whole job, fed mutated scores, must either write a consistent output folder or
//! return an input error. (Coverage-guided targets for the same paths are in `fuzz/`.)

use std::path::Path;

use scorenmf::io::audio;
use scorenmf::io::score::{csv, midi, musicxml, Repeats};

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn all_parsers(bytes: &[u8]) {
    let p = Path::new("fuzz");
    let _ = csv::parse(p, bytes);
    let _ = midi::parse(p, bytes);
    let _ = musicxml::parse(p, bytes, Repeats::Written);
    let _ = audio::decode(p, bytes.to_vec());
    let _ = scorenmf::io::matrix::parse(Path::new("fuzz.npy"), bytes);
    let _ = scorenmf::io::matrix::parse(Path::new("fuzz.csv"), bytes);
}

/// Real files of every kind, the seeds for truncation and mutation.
fn seeds() -> Vec<Vec<u8>> {
    let wav = std::fs::read("data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav").unwrap();
    [
        "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv",
        "data/FMP_C1_F12_Bach_BWV846_Sibelius.mid",
        "data/FMP_C1_F13a_Beethoven_FateMotive_Sibelius.mid",
        "data/alignment/FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml",
        "tests/data/musicxml/bach_bwv66.6.mxl",
        "tests/data/audio/stereo_440_660.flac",
        "tests/data/audio/stereo_440_660.mp3",
        "tests/data/audio/stereo_440_660.ogg",
        "tests/data/audio/stereo_440_660_f64.wav",
        "tests/data/decompose/fro_nndsvda_W.npy",
    ]
    .iter()
    .map(|f| std::fs::read(f).unwrap())
    .chain(std::iter::once(wav[..20_000].to_vec()))
    .collect()
}

#[test]
fn truncated_inputs() {
    for seed in seeds() {
        let step = (seed.len() / 97).max(1);
        for cut in (0..seed.len()).step_by(step) {
            all_parsers(&seed[..cut]);
        }
    }
}

#[test]
fn mutated_inputs() {
    let mut rng = SplitMix(7);
    for seed in seeds() {
        for _ in 0..60 {
            let mut b = seed.clone();
            for _ in 0..1 + rng.next() % 8 {
                let i = (rng.next() as usize) % b.len();
                b[i] = rng.next() as u8;
            }
            all_parsers(&b);
        }
    }
}

#[test]
fn random_inputs() {
    let mut rng = SplitMix(42);
    let prefixes: [&[u8]; 6] = [b"", b"MThd", b"RIFF\0\0\0\0WAVE", b"fLaC", b"OggS", b"ID3"];
    for prefix in prefixes {
        for n in [0, 1, 5, 14, 64, 1000, 5000] {
            let b = [prefix, &rng.bytes(n)].concat();
            all_parsers(&b);
        }
    }
}

/// Mutated scores (labels, pitches, times, bytes) through the whole job on two seconds of the
/// example: resampling, the label-to-file-name mapping and every writer. Each run succeeds with
/// every output in place, or fails with an input error and leaves no output of its own.
#[test]
fn mutated_scores_through_the_whole_job() {
    use scorenmf::io::audio::{write_wav, WavEncoding};
    use scorenmf::job::{self, Job, Silent, StemOutputs, Task};
    use scorenmf::pipeline::{Config, Preset};
    use scorenmf::tasks::separate::By;

    let dir = std::env::temp_dir().join(format!("scorenmf-fuzz-job-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = audio::read_audio(Path::new(
        "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav",
    ))
    .unwrap();
    // Two seconds at 44.1 kHz stereo, so the job resamples and writes two channels.
    let two: Vec<f32> = wav.channels[0][44_100..88_200].to_vec();
    let up: Vec<f32> = two.iter().flat_map(|&x| [x, x]).collect();
    let audio_path = dir.join("rec.wav");
    write_wav(&audio_path, &[up.clone(), up], 44_100, WavEncoding::Pcm16).unwrap();
    let mut rng = SplitMix(2024);
    let labels = [
        "lh", "rh", "a b", "a_b", "a_b_2", "CON", "..", "é", "", "x/y",
    ];
    let mut ok = 0;
    for case in 0..24 {
        let mut text = String::from("Start;Duration;Pitch;Velocity;Instrument\n");
        for _ in 0..1 + rng.next() % 12 {
            let onset = (rng.next() % 2200) as f64 / 1000.0 - 0.1;
            let dur = (rng.next() % 900) as f64 / 1000.0;
            let pitch = 20 + rng.next() % 100;
            let label = labels[(rng.next() % labels.len() as u64) as usize];
            text.push_str(&format!("{onset};{dur};{pitch};0.8;{label}\n"));
        }
        let mut bytes = text.into_bytes();
        if case % 3 == 2 {
            let i = (rng.next() as usize) % bytes.len();
            bytes[i] = rng.next() as u8;
        }
        let score_path = dir.join(format!("score{case}.csv"));
        std::fs::write(&score_path, &bytes).unwrap();
        let outdir = dir.join(format!("out{case}"));
        let mut config = Config::preset(Preset::Default);
        config.nmf.iterations = 10;
        let job = Job {
            task: Task::Run,
            audio: audio_path.clone(),
            score: score_path,
            repeats: Default::default(),
            align: None,
            outdir: outdir.clone(),
            config,
            stems: Some(StemOutputs {
                by: vec![By::Instrument, By::Pitch, By::Note],
                full_length: false,
                encoding: None,
            }),
            profile: None,
            report: None,
        };
        match job::run(&job, &Silent) {
            Ok(summary) => {
                ok += 1;
                for f in [
                    "notes.csv",
                    "notes.mid",
                    "notes.json",
                    "run.json",
                    "stems/residual.wav",
                ] {
                    assert!(outdir.join(f).is_file(), "case {case}: {f} missing");
                }
                let stems = std::fs::read_dir(outdir.join("stems/instrument"))
                    .unwrap()
                    .count();
                assert!(stems >= 1, "case {case}: no instrument stem");
                assert!(summary.stems >= stems, "case {case}");
                let leftovers = std::fs::read_dir(&outdir)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                    .count();
                assert_eq!(leftovers, 0, "case {case}: temporary files left");
            }
            Err(e) => {
                assert!(e.is_input_error(), "case {case}: {e}");
                assert!(!outdir.join("run.json").exists(), "case {case}: {e}");
            }
        }
    }
    assert!(
        ok >= 8,
        "only {ok} of 24 mutated scores ran: the mutations are too harsh to test the writers"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
