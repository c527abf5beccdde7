//! Times `bss_eval_sources` on synthetic stems: `cargo run --release --example bench_eval_stems -- SECONDS SOURCES`.
use scorenmf::eval::stems::bss_eval_sources;
use scorenmf::signal::synth::white_noise;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).map_or(180.0, |a| a.parse().unwrap());
    let n: usize = args.get(2).map_or(2, |a| a.parse().unwrap());
    let t = (secs * 44100.0) as usize;
    let refs: Vec<Vec<f64>> = (0..n).map(|j| white_noise(t, j as u64)).collect();
    let ests: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let e = white_noise(t, (n + j) as u64);
            (0..t)
                .map(|i| refs[j][i] + 0.1 * refs[(j + 1) % n][i] + 0.01 * e[i])
                .collect()
        })
        .collect();
    let start = std::time::Instant::now();
    let s = bss_eval_sources(&refs, &ests).unwrap();
    let el = start.elapsed().as_secs_f64();
    println!(
        "{n} sources × {secs} s at 44.1 kHz: {el:.2} s ({:.2} s per source); SDR {:.2}",
        el / n as f64,
        s[0].sdr
    );
}
