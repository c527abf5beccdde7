//! BSS Eval v3 agreement with mir_eval 0.8.2 (`bss_eval_sources`, no permutation) to 0.01 dB,
//! and SI-SDR (fixtures made by `scripts/make_bss_fixtures.py`).

use scorenmf::eval::stems::bss_eval_sources;

#[test]
fn agrees_with_mir_eval() {
    let dir = std::path::Path::new("tests/data/eval/bss");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let cases = meta["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let n = case["n"].as_u64().unwrap() as usize;
        let t = case["T"].as_u64().unwrap() as usize;
        let bytes = std::fs::read(dir.join(format!("{name}.f64"))).unwrap();
        let v: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(v.len(), 2 * n * t);
        let signals: Vec<Vec<f64>> = v.chunks(t).map(<[f64]>::to_vec).collect();
        let (refs, ests) = signals.split_at(n);
        let scores = bss_eval_sources(refs, ests).unwrap();
        for (j, s) in scores.iter().enumerate() {
            for (metric, ours) in [
                ("sdr", s.sdr),
                ("sir", s.sir),
                ("sar", s.sar),
                ("si_sdr", s.si_sdr),
            ] {
                let want = case[metric][j].as_f64().unwrap();
                assert!(
                    (ours - want).abs() < 0.01,
                    "{name} source {j} {metric}: ours {ours:.4} vs mir_eval {want:.4}"
                );
            }
        }
    }
}

#[test]
fn framewise_agrees_with_mir_eval() {
    use scorenmf::eval::stems::bss_eval_sources_framewise;
    let dir = std::path::Path::new("tests/data/eval/bss");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let f = &meta["framewise"];
    let (n, t) = (
        f["n"].as_u64().unwrap() as usize,
        f["T"].as_u64().unwrap() as usize,
    );
    let (window, hop) = (
        f["window"].as_u64().unwrap() as usize,
        f["hop"].as_u64().unwrap() as usize,
    );
    let bytes = std::fs::read(dir.join("framewise.f64")).unwrap();
    let v: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let signals: Vec<Vec<f64>> = v.chunks(t).map(<[f64]>::to_vec).collect();
    let (refs, ests) = signals.split_at(n);
    let windows = bss_eval_sources_framewise(refs, ests, window, hop).unwrap();
    assert_eq!(windows.len(), f["sdr"][0].as_array().unwrap().len());
    for (k, w) in windows.iter().enumerate() {
        for j in 0..n {
            let want = &f["sdr"][j][k];
            match w {
                None => assert!(want.is_null(), "window {k}: mir_eval scored it"),
                Some(s) => {
                    for (metric, ours) in [("sdr", s[j].sdr), ("sir", s[j].sir), ("sar", s[j].sar)]
                    {
                        let want = f[metric][j][k].as_f64().unwrap();
                        assert!(
                            (ours - want).abs() < 0.01,
                            "window {k} source {j} {metric}: {ours} vs {want}"
                        );
                    }
                }
            }
        }
    }
    assert!(windows[1].is_none(), "the silent window");
}
