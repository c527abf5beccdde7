//! The WᵀV kernel (`scorenmf::model::kernel::at_b`) alone, one thread, f32: GFLOP/s with B hot in
//! cache and cold (a new tile of a 53 MB V each call). Environment: `K` (1040), `A` (rows of
//! the product, 16), `LEN` (frames per tile, 16), `SHIFT` (floats by which every column starts
//! after a cache-line boundary, 0: 1 shows what unaligned columns cost), `AHEAD` (set: each call
//! also fetches the next tile into cache, as the NMF does), `SMALL_PAGES` (set: V on 4 KB pages
//! only, without `kernel::advise_huge_pages`), `SCORENMF_KERNELS` (`avx512`, `avx2`, `neon`: the
//! path, where this CPU runs it).
use scorenmf::model::kernel::{at_b, Aligned};
use std::time::Instant;
fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (k, a, len) = (env("K", 1040), env("A", 16), env("LEN", 16));
    let n = 12843 / len * len;
    let src: Vec<f32> = (0..k * n).map(|i| (i % 97) as f32 * 0.01).collect();
    let shift = env("SHIFT", 0);
    let small = std::env::var_os("SMALL_PAGES").is_some();
    let aligned = Aligned::columns(
        if small { &[] } else { &src[..] },
        k,
        k,
        if small { 0 } else { n + 1 },
    );
    // Filled (so touched) before any advice could apply.
    let mut raw = vec![1f32; if small { k * (n + 1) + 16 } else { 0 }];
    let off = raw.as_ptr().align_offset(64);
    if small {
        raw[off..off + k * n].copy_from_slice(&src);
    }
    let v: &[f32] = if small { &raw[off..] } else { &aligned };
    let v = &v[shift..shift + k * n];
    let wsrc: Vec<f32> = (0..k * a).map(|p| (p % 13) as f32 * 0.1).collect();
    let w = Aligned::columns(&wsrc, k, k, a + 1);
    let wr: Vec<&[f32]> = w[shift..shift + k * a].chunks(k).collect();
    let need = vec![0..len; a];
    let fetch = std::env::var_os("AHEAD").is_some();
    let mut c = vec![0f32; a * len];
    let flops = 2.0 * k as f64 * a as f64 * len as f64;
    for (label, cold) in [("hot", false), ("cold", true)] {
        let reps = 4000;
        let mut e = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for r in 0..reps {
                let s = if cold { (r * len) % n } else { 0 };
                let next = ((r + 1) * len) % n;
                let ahead = if fetch {
                    &v[next * k..(next + len) * k]
                } else {
                    &[]
                };
                at_b(&wr, &v[s * k..(s + len) * k], &need, ahead, &mut c);
            }
            e = e.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{} at_b a {a} len {len} {label}: {:.1} GFLOP/s",
            scorenmf::model::kernel::path().name(),
            flops * reps as f64 / e / 1e9
        );
    }
}
