"""The FMP reference pipeline, timed stage by stage, for the benchmark's side-by-side figures.

    python3 bench/reference.py AUDIO SCORE.csv OUTDIR

Runs what `scorenmf run --preset fmp` runs, the way the FMP notebooks C8S3 do it: librosa.load at
22050 Hz, librosa.stft (n_fft 2048, hop 1024, Hann, centered), V = log(1 + |X|), libfmp's
pitch/onset templates and score-informed activations (tol_pitch 0.05, tol_note [0.1, 0.5],
tol_onset [0.2, 0.1]), libfmp.c8.nmf (100 iterations, thresh 0.001, norm=True; numba-compiled),
then one soft mask per instrument label (W·H_label / (W·H + eps), H_label = H where that label's
notes allow it), librosa.istft to the input's length, and the stems as 16-bit WAV.

On first use it makes its own virtual environment (target/bench/venv-reference, pinned librosa
0.11.0 and libfmp 1.3.0 from PyPI) and re-runs itself there. Prints one JSON line: wall seconds
per stage (imports and JIT included), NMF seconds and iterations, peak RSS in bytes.
"""
import os
import sys
import time

T0 = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, "..", "target", "bench", "venv-reference")
PINS = ["librosa==0.11.0", "libfmp==1.3.0", "soundfile", "numpy<2.3"]


def bootstrap():
    """Re-executes this script in its own venv, making the venv first if needed."""
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        return
    if not os.path.exists(py):
        import subprocess
        print("making the reference venv (librosa, libfmp) in", VENV, file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q", *PINS])
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:]])


def main():
    audio, score, outdir = sys.argv[1:4]
    stages = {}
    t = time.perf_counter()
    import csv
    import json
    import resource
    import numpy as np
    import librosa
    import soundfile as sf
    import libfmp.c8
    stages["imports"] = time.perf_counter() - t

    Fs, N_fft, H_fft = 22050, 2048, 1024
    t = time.perf_counter()
    x, Fs = librosa.load(audio, sr=Fs)
    stages["decode and resample"] = time.perf_counter() - t

    t = time.perf_counter()
    X = librosa.stft(x, n_fft=N_fft, hop_length=H_fft)
    V = np.log(1 + np.abs(X))
    stages["stft"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = [r for r in list(csv.reader(open(score), delimiter=";"))[1:] if r]
    ann = [[float(r[0]), float(r[1]), int(float(r[2])), float(r[3]), r[4]] for r in rows]
    K, N = V.shape
    pitch_set = libfmp.c8.pitch_from_annotation(ann)
    W0 = libfmp.c8.init_nmf_template_pitch_onset(K, pitch_set, Fs / N_fft, tol_pitch=0.05)
    kw = dict(tol_note=[0.1, 0.5], tol_onset=[0.2, 0.1], pitch_set=pitch_set)
    H0, _, _ = libfmp.c8.init_nmf_activation_score_onset(N, ann, H_fft / Fs, **kw)
    labels = sorted({a[4] for a in ann})
    H0_label = {
        lab: libfmp.c8.init_nmf_activation_score_onset(
            N, [a for a in ann if a[4] == lab], H_fft / Fs, **kw)[0]
        for lab in labels
    }
    stages["templates and activations"] = time.perf_counter() - t

    t = time.perf_counter()
    W, H, V_approx, _, H_W_error = libfmp.c8.nmf(V, W0.shape[1], W=W0, H=H0, L=100, norm=True)
    nmf_seconds = time.perf_counter() - t
    stages["nmf (incl. numba JIT)"] = nmf_seconds
    iterations = int(H_W_error.shape[1])

    t = time.perf_counter()
    eps = np.finfo(np.float32).eps
    V_all = W @ H
    stems = {}
    for lab in labels:
        mask = (W @ (H * (H0_label[lab] > 0))) / (V_all + eps)
        stems[lab] = librosa.istft(X * mask, hop_length=H_fft, n_fft=N_fft, length=len(x))
    stems["residual"] = x - sum(stems[lab] for lab in labels)
    stages["masks and istft"] = time.perf_counter() - t

    t = time.perf_counter()
    os.makedirs(outdir, exist_ok=True)
    for name, y in stems.items():
        sf.write(os.path.join(outdir, name + ".wav"), y, Fs, subtype="PCM_16")
    stages["writing"] = time.perf_counter() - t

    print(json.dumps(dict(
        stages=stages,
        total=time.perf_counter() - T0,
        nmf_seconds=nmf_seconds,
        nmf_iterations=iterations,
        K=int(K), R=int(W0.shape[1]), N=int(N),
        peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    )))


if __name__ == "__main__":
    bootstrap()
    main()
