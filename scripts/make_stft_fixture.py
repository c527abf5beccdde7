#!/usr/bin/env python3
"""Make the librosa STFT fixtures that tests/stft_librosa.rs compares against.

    python3 -m venv venv && venv/bin/pip install librosa==0.11.0 numpy
    venv/bin/python scripts/make_stft_fixture.py data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav tests/data/stft

For each STFT geometry below it writes `<name>.f32`, the magnitudes |librosa.stft(x)| as
little-endian float32 in librosa's (bins, frames) order, row by row, and `fixtures.json` with
the shapes, parameters and library versions. x is `librosa.load(wav, sr=None)` (float32; the
file is 16-bit PCM, scaled by 1/32768), optionally cut to its first `seconds`.
"""
import json, os, sys
import numpy as np, librosa

wav, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
x, sr = librosa.load(wav, sr=None, mono=True)
cases = [
    # the FMP notebook's geometry on the whole excerpt
    dict(name="chopin_2048_1024", n_fft=2048, hop=1024, seconds=None),
    # the fine-hop geometry the transcription uses
    dict(name="chopin_2048_256_3s", n_fft=2048, hop=256, seconds=3.0),
    # sizes that are not powers of two, odd signal length
    dict(name="chopin_1000_250_2s", n_fft=1000, hop=250, seconds=2.0001),
]
meta = dict(source=os.path.basename(wav), sample_rate=int(sr), samples=int(len(x)),
            versions=dict(librosa=librosa.__version__, numpy=np.__version__), cases=[])
for c in cases:
    xs = x if c["seconds"] is None else x[: int(round(c["seconds"] * sr))]
    X = librosa.stft(xs, n_fft=c["n_fft"], hop_length=c["hop"])  # Hann, centered, zero padding
    M = np.abs(X).astype("<f4")
    M.tofile(os.path.join(out, c["name"] + ".f32"))
    meta["cases"].append(dict(c, samples=int(len(xs)), bins=M.shape[0], frames=M.shape[1]))
    print(c["name"], M.shape)
json.dump(meta, open(os.path.join(out, "fixtures.json"), "w"), indent=1)
