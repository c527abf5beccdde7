#!/usr/bin/env python3
"""Make the BSS Eval agreement fixtures for tests/eval_stems.rs.

    venv/bin/pip install mir_eval==0.8.2 numpy scipy
    venv/bin/python scripts/make_bss_fixtures.py tests/data/eval/bss

For each case: `<name>.f64`, the references then the estimates (n sources each, T samples,
little-endian float64, source by source), and `cases.json` with n, T and what
mir_eval.separation.bss_eval_sources(compute_permutation=False) returns (SDR, SIR, SAR per
source), plus SI-SDR by its definition. Estimates mix in the other sources (interference),
a short filter (allowed distortion) and noise (artifacts) in varied amounts.
"""
import json, os, sys, warnings
import numpy as np, scipy.signal, mir_eval

warnings.filterwarnings("ignore")
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
cases = []

def source(T, kind):
    t = np.arange(T) / 8000.0
    if kind == 0:
        return scipy.signal.lfilter([1], [1, -0.9], rng.standard_normal(T)) * 0.1
    if kind == 1:
        return np.sin(2 * np.pi * 220 * t) * np.exp(-t) + 0.3 * np.sin(2 * np.pi * 660 * t)
    if kind == 2:
        return rng.standard_normal(T) * (np.sin(2 * np.pi * 3 * t) > 0)
    return scipy.signal.lfilter([1, 0.5], [1], rng.laplace(size=T)) * 0.5

for name, n, T in (("two_2000", 2, 2000), ("three_8000", 3, 8000), ("four_22050", 4, 22050),
                   ("two_odd_5001", 2, 5001)):
    refs = np.stack([source(T, k % 4) for k in range(n)])
    ests = []
    for j in range(n):
        leak = sum(rng.uniform(0.02, 0.3) * refs[k] for k in range(n) if k != j)
        filt = scipy.signal.lfilter(rng.uniform(-0.3, 0.3, 5) + np.eye(1, 5)[0], [1], refs[j])
        ests.append(filt + leak + rng.uniform(0.01, 0.2) * rng.standard_normal(T) * refs[j].std())
    ests = np.stack(ests)
    sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=False)
    si = []
    for j in range(n):
        a = ests[j] @ refs[j] / (refs[j] @ refs[j])
        si.append(10 * np.log10(np.sum((a * refs[j]) ** 2) / np.sum((a * refs[j] - ests[j]) ** 2)))
    np.concatenate([refs.ravel(), ests.ravel()]).astype("<f8").tofile(os.path.join(out, name + ".f64"))
    cases.append(dict(name=name, n=n, T=T, sdr=sdr.tolist(), sir=sir.tolist(), sar=sar.tolist(),
                      si_sdr=si))
    print(name, np.round(sdr, 2), np.round(sir, 2), np.round(sar, 2))
# Framewise: 2000-sample windows and hops over 9000 samples (4 windows), the first reference
# silent in the second window (mir_eval gives NaN there, stored as null).
n, T, W = 2, 9000, 2000
refs = np.stack([source(T, 1), source(T, 3)])
refs[0, 2000:4000] = 0
ests = np.stack([refs[0] + 0.2 * refs[1] + 0.01 * rng.standard_normal(T),
                 refs[1] + 0.1 * refs[0] + 0.01 * rng.standard_normal(T)])
sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources_framewise(
    refs, ests, window=W, hop=W, compute_permutation=False)
nan = lambda a: [[None if np.isnan(x) else float(x) for x in row] for row in a]
np.concatenate([refs.ravel(), ests.ravel()]).astype("<f8").tofile(os.path.join(out, "framewise.f64"))
framewise = dict(name="framewise", n=n, T=T, window=W, hop=W, sdr=nan(sdr), sir=nan(sir), sar=nan(sar))
print("framewise", np.round(sdr, 2))

json.dump(dict(mir_eval=mir_eval.__version__, cases=cases, framewise=framewise), open(os.path.join(out, "cases.json"), "w"),
          indent=1)
