//! Writes the seeded two-hand test piece of `scorenmf::signal::synth::random_piece` as an FMP-style CSV
//! score (the pieces of the accuracy and separation tables):
//!
//!     cargo run --release --example random_piece -- SECONDS SEED OUT.csv

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seconds, seed, out] = args.as_slice() else {
        eprintln!("usage: random_piece SECONDS SEED OUT.csv");
        std::process::exit(2);
    };
    let (Ok(seconds), Ok(seed)) = (seconds.parse::<f64>(), seed.parse::<u64>()) else {
        eprintln!("random_piece: SECONDS must be a number and SEED an integer");
        std::process::exit(2);
    };
    let score = scorenmf::signal::synth::random_piece(seconds, seed);
    if let Err(e) = scorenmf::io::score::csv::write(Path::new(out), &score.notes) {
        eprintln!("random_piece: {e}");
        std::process::exit(1);
    }
}
