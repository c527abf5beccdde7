#!/usr/bin/env python3
"""Make the mir_eval agreement fixtures for tests/eval_notes.rs.

    venv/bin/pip install mir_eval==0.8.2 numpy
    venv/bin/python scripts/make_eval_fixtures.py tests/data/eval/notes.json

Each case holds reference and estimated notes as [onset, offset, pitch in Hz, MIDI velocity]
and what mir_eval.transcription / transcription_velocity compute for them: precision, recall,
F-measure, average overlap ratio, onset-only (offset_ratio=None), with offsets (0.2, 50 ms),
and with velocities (tolerance 0.1). Edge cases sit exactly at and just past the tolerances.
"""
import json, sys
import numpy as np
import mir_eval

rng = np.random.default_rng(2026)
hz = lambda m: 440.0 * 2 ** ((np.asarray(m, float) - 69) / 12)
cases = []

def add(name, ref, est, **kw):
    ref = np.array(ref, float).reshape(-1, 4)
    est = np.array(est, float).reshape(-1, 4)
    out = {}
    for key, ratio in (("onset_only", None), ("with_offset", 0.2)):
        out[key] = list(mir_eval.transcription.precision_recall_f1_overlap(
            ref[:, :2], ref[:, 2], est[:, :2], est[:, 2], offset_ratio=ratio, **kw))
    out["velocity"] = list(mir_eval.transcription_velocity.precision_recall_f1_overlap(
        ref[:, :2], ref[:, 2], ref[:, 3], est[:, :2], est[:, 2], est[:, 3], **kw))
    cases.append(dict(name=name, ref=ref.tolist(), est=est.tolist(), params=kw,
                      expected={k: [float(x) for x in v] for k, v in out.items()}))

def notes(onsets, durs, midis, vels):
    return np.stack([onsets, np.asarray(onsets) + durs, hz(midis), vels], 1)

# Near-misses at the tolerance edges.
on = np.arange(12) * 0.5
ref = notes(on, np.full(12, 0.4), np.full(12, 60), np.full(12, 80))
est = ref.copy()
est[0, 0] += 0.05;  est[1, 0] += 0.0501; est[2, 0] -= 0.05; est[3, 0] -= 0.04999
est[4, 1] += 0.08;  est[5, 1] += 0.0801          # offset tolerance max(0.2·0.4, 0.05) = 0.08
est[6, 2] = hz(60.5); est[7, 2] = hz(60.49); est[8, 2] = hz(60.51)   # 50, 49, 51 cents
est[9, 0] += 0.05; est[9, 1] += 0.05
add("tolerance_edges", ref, est)
add("tolerance_edges_strict", ref, est, strict=True)
add("tolerance_edges_wide", ref, est, onset_tolerance=0.1, pitch_tolerance=100.0,
    offset_min_tolerance=0.1)

# Duplicates and unisons.
ref = notes([0, 0, 1, 2], [1, 1, 0.5, 0.5], [60, 60, 64, 67], [70, 70, 90, 100])
est = notes([0.01, 0.02, 0.02, 1.0, 1.0, 2.03], [1, 1, 1, 0.5, 0.5, 0.4], [60, 60, 60, 64, 64, 67],
            [60, 65, 70, 90, 30, 110])
add("duplicates_and_unisons", ref, est)

# Empty sides.
add("empty_estimate", notes([0, 1], [1, 1], [60, 62], [80, 80]), np.zeros((0, 4)))
add("empty_reference", np.zeros((0, 4)), notes([0, 1], [1, 1], [60, 62], [80, 80]))

# Dense random pieces: many ambiguous candidates, so the matching's traversal order matters.
for seed, n in ((1, 60), (2, 200), (3, 400)):
    r = np.random.default_rng(seed)
    on = np.sort(r.uniform(0, n * 0.1, n))
    ref = notes(on, r.uniform(0.05, 1.0, n), r.integers(55, 67, n), r.integers(20, 127, n))
    keep = r.random(n) > 0.1
    est = ref[keep].copy()
    est[:, 0] += r.normal(0, 0.03, len(est))
    est[:, 1] = np.maximum(est[:, 0] + 0.01, est[:, 1] + r.normal(0, 0.05, len(est)))
    est[:, 3] = np.clip(est[:, 3] * 0.5 + r.normal(0, 8, len(est)) + 20, 1, 127)
    extra = notes(r.uniform(0, n * 0.1, n // 10), r.uniform(0.05, 1, n // 10),
                  r.integers(55, 67, n // 10), r.integers(20, 127, n // 10))
    est = np.concatenate([est, extra])
    est = est[r.permutation(len(est))]
    add(f"random_{n}", ref, est)

# Constant estimated velocities (the least-squares fit is rank one).
ref = notes([0, 1, 2, 3], [0.5] * 4, [60, 62, 64, 65], [40, 60, 80, 100])
est = notes([0, 1, 2, 3], [0.5] * 4, [60, 62, 64, 65], [64] * 4)
add("constant_velocity", ref, est)

json.dump(dict(mir_eval=mir_eval.__version__, cases=cases), open(sys.argv[1], "w"))
print(len(cases), "cases", "mir_eval", mir_eval.__version__)
