//! Every parser fed truncated and random bytes must return an error or a value, never panic.
//! (A coverage-guided target for the same parsers is in `fuzz/`.)

use std::path::Path;

use scorenmf::io::audio;
use scorenmf::io::score::{csv, midi};

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
    let _ = audio::decode(p, bytes.to_vec());
}

/// Real files of every kind, the seeds for truncation and mutation.
fn seeds() -> Vec<Vec<u8>> {
    let wav = std::fs::read("data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav").unwrap();
    [
        "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv",
        "data/FMP_C1_F12_Bach_BWV846_Sibelius.mid",
        "data/FMP_C1_F13a_Beethoven_FateMotive_Sibelius.mid",
        "tests/data/audio/stereo_440_660.flac",
        "tests/data/audio/stereo_440_660.mp3",
        "tests/data/audio/stereo_440_660.ogg",
        "tests/data/audio/stereo_440_660_f64.wav",
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
