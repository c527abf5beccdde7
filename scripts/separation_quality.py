#!/usr/bin/env python3
"""Separation quality on renders with exact stems: the table in the README.

    scripts/separation_quality.sh        # installs what it needs, then runs this

Three mixtures are made with fluidsynth and the FluidR3 GM piano (Debian's fluid-soundfont-gm),
each part rendered alone and the parts summed, so the true stems are exact:
  * chopin_hands: the Chopin excerpt's score (data/), lh and rh, velocities varied (seeded);
  * four_voices: a seeded four-voice piece (soprano, alto, tenor, bass), 40 s;
  * piano_hands: a seeded 3-minute two-hand piece (the generator of the transcription accuracy
    table, `scorenmf::synth::random_piece(180, 1)`, written by the `accuracy` example), lh and rh.
Each mixture is separated by `scorenmf separate --by instrument` with the default parameters
(masks from a linear-magnitude KL factorization of the score's notes at their detected onsets,
20 iterations, p = 2, hop 512), with p = 1, with 10 and 40 mask iterations, with the
transcription's own log-magnitude factorization for the masks (`--mask-model shared`), and with
--preset fmp (the FMP notebook's method: log-magnitude NMF, hop 1024, mask p = 1). The oracle is
the ideal Wiener mask |S_j|² / Σ|S_k|² of the true stems at the default STFT settings (n_fft 2048,
hop 512 at 22050 Hz). Scores: mir_eval.separation.bss_eval_sources
(BSS Eval v3, 512-tap distortion filters, no permutation), SDR/SIR/SAR in dB.
"""
import json, os, subprocess, sys, warnings
import numpy as np, soundfile as sf, librosa, mido, mir_eval

warnings.filterwarnings("ignore", category=FutureWarning)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "separation")
SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
BIN = os.path.join(ROOT, "target", "release", "scorenmf")
SR = 22050
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(7)

def write_midi(notes, path):
    mid = mido.MidiFile(ticks_per_beat=960)
    tr = mido.MidiTrack(); mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000))
    ev = []
    for on, dur, p, v in notes:
        ev.append((round(on * 1920), 1, p, max(1, min(127, round(v * 127)))))
        ev.append((round((on + dur) * 1920), 0, p, 0))
    ev.sort()
    t = 0
    for tick, kind, p, v in ev:
        tr.append(mido.Message("note_on" if kind else "note_off", note=p, velocity=v, time=tick - t))
        t = tick
    mid.save(path)

def render(notes, name):
    mid, wav = os.path.join(OUT, name + ".mid"), os.path.join(OUT, name + ".wav")
    write_midi(notes, mid)
    subprocess.run(["fluidsynth", "-ni", "-g", "0.5", "-r", str(SR), "-F", wav, SF2, mid],
                   check=True, capture_output=True)
    x, sr = sf.read(wav, dtype="float32")
    assert sr == SR
    return x.mean(axis=1) if x.ndim == 2 else x

def make_mixture(name, parts):
    """parts: {label: [(onset, dur, pitch, vel)]} → mixture wav, score csv, true stems."""
    stems = {k: render(v, f"{name}_{k}") for k, v in parts.items()}
    n = max(len(s) for s in stems.values())
    stems = {k: np.pad(s, (0, n - len(s))) for k, s in stems.items()}
    mix = sum(stems.values())
    sf.write(os.path.join(OUT, name + ".wav"), mix, SR, subtype="FLOAT")
    with open(os.path.join(OUT, name + ".csv"), "w") as f:
        f.write('"Start";"Duration";"Pitch";"Velocity";"Instrument"\n')
        for k, notes in parts.items():
            for on, dur, p, v in notes:
                f.write(f'{on};{dur};{p};{v:.3f};"{k}"\n')
    return mix, stems

def by_pitch(parts):
    """The same notes regrouped by pitch (the label is the stem's file name)."""
    out = {}
    for notes in parts.values():
        for n in notes:
            out.setdefault(pitch_file(n[2]), []).append(n)
    return out

def chopin_parts():
    rows = [l.strip().split(";") for l in open(os.path.join(ROOT, "data",
            "FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv")) if l.strip()][1:]
    parts = {"lh": [], "rh": []}
    for r in rows:
        parts[r[4].strip('"')].append((float(r[0]), float(r[1]), int(float(r[2])),
                                        float(rng.uniform(0.45, 1.0))))
    return parts

def four_voice_parts(seconds=40.0):
    ranges = {"soprano": (67, 79), "alto": (60, 72), "tenor": (52, 64), "bass": (40, 55)}
    scale = [0, 2, 4, 5, 7, 9, 11]
    parts = {}
    for v, (lo, hi) in ranges.items():
        notes, t, p = [], 0.3, (lo + hi) // 2
        while t < seconds - 1:
            dur = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5]))
            p = int(np.clip(p + rng.integers(-3, 4), lo, hi))
            while p % 12 not in scale:
                p += 1
            notes.append((t, dur * 0.95, p, float(rng.uniform(0.5, 1.0))))
            t += dur
        parts[v] = notes
    return parts

def oracle(mix, stems, n_fft=2048, hop=512):
    X = librosa.stft(mix, n_fft=n_fft, hop_length=hop)
    P = {k: np.abs(librosa.stft(s, n_fft=n_fft, hop_length=hop)) ** 2 for k, s in stems.items()}
    tot = sum(P.values()) + 1e-20
    return {k: librosa.istft(X * P[k] / tot, hop_length=hop, length=len(mix)) for k in stems}

def run_scorenmf(name, tag, extra, by="instrument"):
    out = os.path.join(OUT, f"{name}_{tag}")
    subprocess.run([BIN, "-q", "separate", os.path.join(OUT, name + ".wav"),
                    os.path.join(OUT, name + ".csv"), "-o", out, "--by", by,
                    "--wav-encoding", "float32"] + extra, check=True)
    return lambda k: sf.read(os.path.join(out, "stems", by, k + ".wav"), dtype="float32")[0]

NAMES = ["C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B"]
def pitch_file(p):
    return f"{p}_{NAMES[p % 12]}{p // 12 - 1}"

def bss(stems, est):
    keys = list(stems)
    ref = np.stack([stems[k] for k in keys])
    e = np.stack([est[k] for k in keys])
    sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(ref, e, compute_permutation=False)
    return {k: (sdr[i], sir[i], sar[i]) for i, k in enumerate(keys)}

def piano_parts(seconds=180, seed=21):
    csv = os.path.join(OUT, "piano_hands_score.csv")
    subprocess.run(["cargo", "run", "-q", "--release", "--example", "random_piece", "--",
                    str(seconds), str(seed), csv], check=True, cwd=ROOT)
    rows = [l.strip().split(";") for l in open(csv) if l.strip()][1:]
    parts = {"lh": [], "rh": []}
    for r in rows:
        parts[r[4].strip('"')].append((float(r[0]), float(r[1]), int(float(r[2])), float(r[3])))
    return parts

rows = []
for name, parts in (("chopin_hands", chopin_parts()), ("four_voices", four_voice_parts()),
                    ("piano_hands", piano_parts())):
    mix, stems = make_mixture(name, parts)
    methods = {"oracle (Wiener)": oracle(mix, stems)}
    variants = (("default", "scorenmf (default: linear-KL mask model, 20 iterations, p = 2)", []),
                ("p1", "scorenmf, p = 1", ["--mask-power", "1"]),
                ("it10", "scorenmf, 10 mask iterations", ["--mask-iterations", "10"]),
                ("it40", "scorenmf, 40 mask iterations", ["--mask-iterations", "40"]),
                ("shared", "scorenmf, masks from the transcription's log-magnitude NMF (p = 2)",
                 ["--mask-model", "shared"]),
                ("fmp", "FMP notebook method (--preset fmp)", ["--preset", "fmp"]))
    for tag, label, extra in variants:
        get = run_scorenmf(name, tag, extra)
        methods[label] = {k: get(k) for k in stems}
    for method, est in methods.items():
        res = bss(stems, est)
        mean = np.mean([v[0] for v in res.values()])
        per = ", ".join(f"{k} {v[0]:.1f}/{v[1]:.1f}/{v[2]:.1f}" for k, v in res.items())
        rows.append((name, method, mean, per))
        print(f"| {name} | {method} | {mean:.1f} | {per} |", flush=True)
# Per-pitch stems of the Chopin excerpt against per-pitch renders of the same notes.
parts = by_pitch(chopin_parts())
mix, stems = make_mixture("chopin_pitches", parts)
# The score keeps the hands as instruments; the stems are grouped by pitch.
with open(os.path.join(OUT, "chopin_pitches.csv"), "w") as f:
    f.write('"Start";"Duration";"Pitch";"Velocity";"Instrument"\n')
    for notes in parts.values():
        for on, dur, p, v in notes:
            f.write(f'{on};{dur};{p};{v:.3f};"piano"\n')
methods = {"oracle (Wiener)": oracle(mix, stems)}
get = run_scorenmf("chopin_pitches", "default", [], by="pitch")
methods["scorenmf (default)"] = {k: get(k) for k in stems}
get = run_scorenmf("chopin_pitches", "fmp", ["--preset", "fmp"], by="pitch")
methods["FMP notebook method (--preset fmp)"] = {k: get(k) for k in stems}
for method, est in methods.items():
    res = bss(stems, est)
    mean = np.mean([v[0] for v in res.values()])
    per = ", ".join(f"{k} {v[0]:.1f}" for k, v in res.items())
    rows.append(("chopin_pitches", method, mean, per))
    print(f"| chopin_pitches (8 pitch stems) | {method} | {mean:.1f} | {per} |", flush=True)
json.dump(rows, open(os.path.join(OUT, "table.json"), "w"), indent=1)
