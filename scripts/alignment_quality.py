#!/usr/bin/env python3
"""Score-to-audio alignment on material with exact ground truth: scorenmf against synctoolbox
in the same run.

Material (built under OUT/material, reused when present):
  * the shared Beethoven Fifth renderings (plain and with the fermatas held) against the
    MusicXML notation score; truth: the MIDI each rendering was made from;
  * the Chopin SMD recording against a notation version of its annotation (onsets and ends
    quantized to 32nds of a one-tempo eighth-note grid taken from the left hand's chords);
    truth: the annotation;
  * music21 corpus scores rendered with fluidsynth (FluidR3 GM piano) after a performance
    model: a tempo curve of ±30 % (slow random curve, phrase ritardandi, a final
    ritardando), two fermatas, chord asynchrony of ±20 ms, dynamics and sustain pedal;
    truth: the performed notes;
  * robustness variants of one corpus piece (Mozart): 10 s of silence at both ends, and a
    score of only the first half of the piece against the whole recording.

For every piece, scorenmf (`align`, then `transcribe --align`) and synctoolbox (its notebook
sync_audio_score_full: tuning, pitch/chroma/DLNCO features at 50 Hz, chroma shift, MrMsDTW with
step weights [1.5, 1.5, 2], strictly monotonic path) align the same notation score; we print the
share of score notes within 25/50/100 ms of their true onset, the onset F-measure (50 ms) of the
aligned score and of the transcription made from it (scorenmf transcribe), the transcription's F
from the exactly aligned score, and the wall time.

Usage: alignment_quality.py BIN OUT   (run by scripts/alignment_quality.sh)
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

from material import SR, read_csv, read_midi, render, write_csv, write_midi

BIN, OUT = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
ALIGN = os.path.join(DATA, "alignment")
MAT = os.path.join(OUT, "material")
os.makedirs(MAT, exist_ok=True)


# ---------------------------------------------------------------- performance model

def perform(score, seed, fermatas=2):
    """Notation notes (seconds at the nominal tempo) → performed notes and pedal."""
    rng = np.random.default_rng(seed)
    end = max(s + d for s, d, *_ in score)
    grid = np.linspace(0, end + 1, int((end + 1) * 100) + 2)
    phases = rng.uniform(0, 2 * np.pi, 3)
    # Local duration factor: slow curve within ±30 %, a ritardando before each 8-second phrase
    # end and over the last 4 s.
    f = np.exp(0.16 * np.sin(2 * np.pi * grid / 11 + phases[0])
               + 0.08 * np.sin(2 * np.pi * grid / 4.3 + phases[1]))
    phrase = (grid % 8.0) / 8.0
    f *= 1 + 0.25 * np.clip((phrase - 0.85) / 0.15, 0, 1)
    f *= 1 + 0.5 * np.clip((grid - (end - 4)) / 4, 0, 1)
    f = np.clip(f, 0.7, 1.6) * rng.uniform(0.85, 1.2)
    warp = np.concatenate([[0], np.cumsum(f[:-1] * np.diff(grid))])
    onsets = sorted({round(s, 4) for s, *_ in score})
    holds = {}
    if fermatas and len(onsets) > 10:
        for q in rng.choice(onsets[len(onsets) // 5: -3], size=fermatas, replace=False):
            holds[q] = rng.uniform(1.0, 2.0)

    def t_of(s):
        return float(np.interp(s, grid, warp)) + sum(h for q, h in holds.items() if q < s - 1e-6)

    out = []
    dyn_phase = rng.uniform(0, 2 * np.pi)
    for s, d, p, v, inst in score:
        on = t_of(s) + float(np.clip(rng.normal(0, 0.01), -0.02, 0.02))
        off = t_of(s + d) + holds.get(round(s, 4), 0.0)
        vel = np.clip(0.55 + 0.2 * np.sin(2 * np.pi * s / 9 + dyn_phase) + rng.normal(0, 0.05), 0.2, 1.0)
        out.append((max(on, 0.0) + 0.5, max(off - on, 0.05), p, float(vel), inst))
    # Sustain pedal: down just after each 2-second span starts, up just before it ends.
    pedal = []
    for k in range(int(t_of(end) / 2) + 1):
        t0 = t_of(2.0 * k) + 0.5
        pedal += [(t0 + 0.05, 127), (t_of(2.0 * k + 2) + 0.45, 0)]
    return sorted(out, key=lambda n: (n[0], n[2])), pedal


def corpus_piece(name, measures, qpm):
    """A music21 corpus score, measures 1..N, written as MusicXML; returns its path."""
    xml = os.path.join(MAT, f"{name}.musicxml")
    if not os.path.exists(xml):
        import music21
        s = music21.corpus.parse(CORPUS[name]).measures(1, measures)
        for mm in s.recurse().getElementsByClass(music21.tempo.MetronomeMark):
            mm.activeSite.remove(mm)
        s.parts[0].measure(1).insert(0, music21.tempo.MetronomeMark(number=qpm))
        s.write("musicxml", fp=xml)
    return xml


CORPUS = {
    "bach_bwv66.6": "bach/bwv66.6",
    "bach_bwv269": "bach/bwv269",
    "joplin_maple_leaf": "joplin/maple_leaf_rag",
    "mozart_k458_1": "mozart/k458/movement1",
    "haydn_op74no1_1": "haydn/opus74no1/movement1",
}


def scorenmf_notes(path):
    """A score as scorenmf reads it (MusicXML included), through `scorenmf convert`."""
    out = os.path.join(MAT, os.path.basename(path) + ".dump")
    os.makedirs(out, exist_ok=True)
    subprocess.run([BIN, "-q", "convert", path, "-o", os.path.join(out, "score.csv")], check=True)
    return read_csv(os.path.join(out, "score.csv"))


def build_material():
    pieces = []
    # Shared Beethoven renderings.
    bx = os.path.join(ALIGN, "FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml")
    pieces.append(dict(name="beethoven_sibelius", score=bx,
                       audio=os.path.join(ALIGN, "FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.wav"),
                       truth=read_midi(os.path.join(ALIGN, "FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.mid"))))
    pieces.append(dict(name="beethoven_fermata", score=bx,
                       audio=os.path.join(ALIGN, "FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.wav"),
                       truth=read_midi(os.path.join(ALIGN, "FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.mid"))))
    # Chopin, its annotation made a notation score.
    truth = read_csv(os.path.join(DATA, "FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv"))
    notation = os.path.join(MAT, "chopin_notation.csv")
    write_csv(notation, quantize_chopin(truth))
    pieces.append(dict(name="chopin_smd", score=notation,
                       audio=os.path.join(DATA, "FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav"),
                       truth=truth))
    # Rendered corpus pieces.
    for k, (name, measures, qpm) in enumerate([("bach_bwv66.6", 10, 80), ("bach_bwv269", 12, 76),
                                                ("joplin_maple_leaf", 24, 90),
                                                ("mozart_k458_1", 40, 120),
                                                ("haydn_op74no1_1", 30, 110)]):
        xml = corpus_piece(name, measures, qpm)
        pieces.append(rendered(name, xml, seed=k))
    # Robustness: silence at both ends; a score of half the recording (a piece whose excerpt
    # has no repeat, so that its first half occurs once in the recording).
    base = next(p for p in pieces if p["name"] == "mozart_k458_1")
    pieces.append(rendered("mozart_silence", base["score"], seed=3, pad=10.0))
    half = os.path.join(MAT, "mozart_first_half.csv")
    notes = scorenmf_notes(base["score"])
    end = max(s + d for s, d, *_ in notes)
    first = [n for n in notes if n[0] < end / 2]
    write_csv(half, first)
    perf = base["truth_all"]
    pieces.append(dict(name="mozart_half_score", score=half, audio=base["audio"],
                       truth=[perf[i] for i, n in enumerate(base["notation"]) if n[0] < end / 2],
                       notation=first))
    return pieces


def rendered(name, xml, seed, pad=0.0):
    notation = scorenmf_notes(xml)
    perf, pedal = perform(notation, seed)
    mid = os.path.join(MAT, f"{name}.performed.mid")
    wav = os.path.join(MAT, f"{name}.wav")
    if not os.path.exists(wav):
        write_midi(mid, perf, pedal)
        render(mid, wav, pad)
    truth = [(s + pad, d, p, v, i) for s, d, p, v, i in perf]
    order = sorted(range(len(notation)), key=lambda i: (truth[i][0], truth[i][2]))
    return dict(name=name, score=xml, audio=wav, truth=[truth[i] for i in order],
                truth_all=truth, notation=notation)


def quantize_chopin(truth):
    lh = sorted({round(s, 3) for s, d, p, v, i in truth if i == "lh"})
    chords = [lh[0]]
    for t in lh[1:]:
        if t - chords[-1] > 0.05:
            chords.append(t)
    grid = np.array(chords)
    eighth = float(np.median(np.diff(grid)))
    idx = np.arange(len(grid), dtype=float)

    def q(t):
        if t <= grid[-1]:
            k = np.interp(t, grid, idx, left=(t - grid[0]) / eighth)
        else:
            k = idx[-1] + (t - grid[-1]) / eighth
        return round(k * 8) / 8 * eighth

    out = []
    first = q(min(s for s, *_ in truth))
    for s, d, p, v, i in truth:
        on = q(s) - first
        out.append((on, max(q(s + d) - first - on, eighth / 8), p, 0.7, i))
    return sorted(out, key=lambda n: (n[0], n[2]))


# ---------------------------------------------------------------- measures

def match(est, truth):
    """Score note k ↔ truth note k by (pitch, occurrence): the two lists hold the same notes."""
    by = {}
    for s, d, p, *_ in sorted(truth):
        by.setdefault(p, []).append(s)
    seen = {}
    errs = []
    for s, d, p, *_ in sorted(est):
        k = seen.get(p, 0)
        seen[p] = k + 1
        if p in by and k < len(by[p]):
            errs.append(abs(s - by[p][k]))
    return np.array(errs)


def onset_f(est, truth):
    import mir_eval
    if not est:
        return 0.0
    def arr(n):
        iv = np.array([[s, s + max(d, 0.01)] for s, d, *_ in n])
        hz = np.array([440.0 * 2 ** ((p - 69) / 12) for _, _, p, *_ in n])
        return iv, hz
    (ri, rp), (ei, ep) = arr(truth), arr(est)
    return mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05,
                                                              offset_ratio=None)[2]


def shares(errs, n):
    return [float((errs <= t).sum()) / max(n, 1) for t in (0.025, 0.05, 0.1)]


def run_scorenmf(piece):
    out = os.path.join(OUT, "scorenmf", piece["name"])
    t0 = time.perf_counter()
    subprocess.run([BIN, "-q", "align", piece["audio"], piece["score"], "-o", out], check=True)
    wall = time.perf_counter() - t0
    aligned = read_csv(os.path.join(out, "aligned_score.csv"))
    subprocess.run([BIN, "-q", "transcribe", "--align", piece["audio"], piece["score"], "-o", out],
                   check=True)
    notes = read_csv(os.path.join(out, "notes.csv"))
    return aligned, notes, wall


def run_synctoolbox(piece, notation):
    import librosa
    import pandas as pd
    from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
    from synctoolbox.dtw.utils import (compute_optimal_chroma_shift, make_path_strictly_monotonic,
                                       shift_chroma_vectors)
    from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma, quantized_chroma_to_CENS
    from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
    from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
    from synctoolbox.feature.pitch import audio_to_pitch_features
    from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    from synctoolbox.feature.utils import estimate_tuning
    fr = 50
    t0 = time.perf_counter()
    y, _ = librosa.load(piece["audio"], sr=SR)
    tuning = estimate_tuning(y, SR)
    f_pitch = audio_to_pitch_features(f_audio=y, Fs=SR, tuning_offset=tuning, feature_rate=fr, verbose=False)
    f_chroma = quantize_chroma(pitch_to_chroma(f_pitch=f_pitch))
    f_onset = audio_to_pitch_onset_features(f_audio=y, Fs=SR, tuning_offset=tuning, verbose=False)
    f_dlnco = pitch_onset_features_to_DLNCO(f_peaks=f_onset, feature_rate=fr,
                                            feature_sequence_length=f_chroma.shape[1], visualize=False)
    df = pd.DataFrame([dict(start=s, duration=d, pitch=p, velocity=v, instrument=i or "piano")
                       for s, d, p, v, i in notation])
    a_pitch = df_to_pitch_features(df, feature_rate=fr)
    a_chroma = quantize_chroma(pitch_to_chroma(f_pitch=a_pitch))
    a_dlnco = pitch_onset_features_to_DLNCO(f_peaks=df_to_pitch_onset_features(df), feature_rate=fr,
                                            feature_sequence_length=a_chroma.shape[1], visualize=False)
    shift = compute_optimal_chroma_shift(quantized_chroma_to_CENS(a_chroma, 201, 50, fr)[0],
                                         quantized_chroma_to_CENS(f_chroma, 201, 50, fr)[0])
    f_chroma = shift_chroma_vectors(f_chroma, shift)
    f_dlnco = shift_chroma_vectors(f_dlnco, shift)
    wp = sync_via_mrmsdtw(f_chroma1=a_chroma, f_onset1=a_dlnco, f_chroma2=f_chroma, f_onset2=f_dlnco,
                          input_feature_rate=fr, step_weights=np.array([1.5, 1.5, 2.0]),
                          threshold_rec=10 ** 6, verbose=False)
    wp = make_path_strictly_monotonic(wp)
    wall = time.perf_counter() - t0
    warp = lambda t: np.interp(t, wp[0] / fr, wp[1] / fr)
    aligned = [(float(warp(s)), float(warp(s + d) - warp(s)), p, v, i) for s, d, p, v, i in notation]
    aligned_csv = os.path.join(OUT, "synctoolbox", piece["name"] + ".csv")
    os.makedirs(os.path.dirname(aligned_csv), exist_ok=True)
    write_csv(aligned_csv, aligned)
    out = os.path.join(OUT, "synctoolbox", piece["name"])
    subprocess.run([BIN, "-q", "transcribe", piece["audio"], aligned_csv, "-o", out], check=True)
    return aligned, read_csv(os.path.join(out, "notes.csv")), wall


def exact_transcription(piece):
    truth_csv = os.path.join(OUT, "truth", piece["name"] + ".csv")
    os.makedirs(os.path.dirname(truth_csv), exist_ok=True)
    write_csv(truth_csv, piece["truth"])
    out = os.path.join(OUT, "truth", piece["name"])
    subprocess.run([BIN, "-q", "transcribe", piece["audio"], truth_csv, "-o", out], check=True)
    return onset_f(read_csv(os.path.join(out, "notes.csv")), piece["truth"])


def main():
    pieces = build_material()
    rows = []
    print("| piece | tool | ≤25 ms | ≤50 ms | ≤100 ms | F aligned | F transcribed | F from truth | time s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for piece in pieces:
        notation = piece.get("notation") or scorenmf_notes(piece["score"])
        truth = piece["truth"]
        f_truth = exact_transcription(piece)
        for tool in ("synctoolbox", "scorenmf"):
            if tool == "scorenmf":
                aligned, notes, wall = run_scorenmf(piece)
            else:
                aligned, notes, wall = run_synctoolbox(piece, notation)
            s = shares(match(aligned, truth), len(truth))
            row = dict(piece=piece["name"], tool=tool, within=s, f_aligned=onset_f(aligned, truth),
                       f_transcribed=onset_f(notes, truth), f_truth=f_truth, seconds=wall)
            rows.append(row)
            print(f"| {piece['name']} | {tool} | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} | "
                  f"{row['f_aligned']:.3f} | {row['f_transcribed']:.3f} | {f_truth:.3f} | {wall:.2f} |",
                  flush=True)
    with open(os.path.join(OUT, "alignment_quality.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
