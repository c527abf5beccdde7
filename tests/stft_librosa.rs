//! The STFT magnitudes match `librosa.stft` on the Chopin excerpt (fixtures made by
//! `scripts/make_stft_fixture.py`; see `tests/data/stft/fixtures.json` for versions).

use std::path::Path;

use scorenmf::io::audio::read_audio;
use scorenmf::signal::stft::{Stft, StftParams};

const WAV: &str = "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav";

#[test]
fn magnitudes_match_librosa() {
    let dir = Path::new("tests/data/stft");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("fixtures.json")).unwrap()).unwrap();
    let x = read_audio(Path::new(WAV)).unwrap().mono();
    assert_eq!(x.len() as u64, meta["samples"].as_u64().unwrap());
    let cases = meta["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let get = |k: &str| case[k].as_u64().unwrap() as usize;
        let (bins, frames) = (get("bins"), get("frames"));
        let params = StftParams {
            n_fft: get("n_fft"),
            hop: get("hop"),
        };
        let bytes = std::fs::read(dir.join(format!("{name}.f32"))).unwrap();
        let want: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(want.len(), bins * frames, "{name}");

        let spec = Stft::new(params).unwrap().forward(&x[..get("samples")]);
        assert_eq!(
            (spec.n_bins, spec.n_frames),
            (bins, frames),
            "{name}: shape"
        );
        let mut max_diff = 0.0f64;
        let mut max_val = 0.0f64;
        for k in 0..bins {
            for n in 0..frames {
                let ours = spec.frame(n)[k].norm() as f64;
                let theirs = want[k * frames + n] as f64;
                max_diff = max_diff.max((ours - theirs).abs());
                max_val = max_val.max(theirs.abs());
            }
        }
        let rel = max_diff / max_val;
        println!("{name}: max |Δ| {max_diff:.3e}, max |X| {max_val:.3}, relative {rel:.3e}");
        assert!(rel < 1e-4, "{name}: relative difference {rel:.3e} ≥ 1e-4");
    }
}
