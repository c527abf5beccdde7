"""scorenmf.nmf against libfmp.c8.nmf on the same arrays, in one Python process: what a notebook
that swaps the call sees.

    python bench/python_nmf.py [--repeat N]

needs the scorenmf wheel and libfmp in the running Python (python/tests/requirements.txt). The
inputs are the Chopin excerpt's V, W0, H0 of the FMP notebook C8S3 (tests/data/fmp_reference:
1025 × 230, R 16), and the same tiled 10 times along time (1025 × 2300; H0 tiled with it), 100
iterations each, as the notebook runs it. libfmp's first call (numba's compilation) is timed
apart. Prints one row per input: libfmp's time, scorenmf.nmf's (a drop-in: it also returns
V_approx = WH and its spectral-norm error, which libfmp computes too and which costs an SVD of
V - WH), the factors alone (scorenmf._native.nmf: W and H only), the ratios, and the largest
difference of W.
"""

import argparse
import pathlib
import time

import numpy as np

import libfmp.c8
import scorenmf

REF = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "fmp_reference"


def load(name, float32=False):
    m = np.loadtxt(REF / name, delimiter=",", dtype=np.float32 if float32 else np.float64)
    return m.astype(np.float64)


def best_of(n, f):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    V, W0, H0 = load("V.csv", True), load("W0.csv"), load("H0.csv")
    R = W0.shape[1]
    t = time.perf_counter()
    libfmp.c8.nmf(V[:, :10], R, L=1, W=W0.copy(), H=H0[:, :10].copy())
    print(f"libfmp.c8.nmf first call (numba compiles): {time.perf_counter() - t:.2f} s")
    print(f"{'input':<22} {'libfmp':>9} {'scorenmf':>9} {'ratio':>6} {'factors':>9} {'ratio':>6} {'max |ΔW|/max W':>15}")
    for tiles in (1, 10):
        v, h0 = np.tile(V, (1, tiles)), np.tile(H0, (1, tiles))
        kw = dict(thresh=0.001, L=100, norm=True)
        t_ref, ref = best_of(args.repeat, lambda: libfmp.c8.nmf(v, R, W=W0.copy(), H=h0.copy(), **kw))
        t_our, our = best_of(args.repeat, lambda: scorenmf.nmf(v, R, W=W0, H=h0, **kw))
        t_fac, _ = best_of(args.repeat, lambda: scorenmf._native.nmf(
            v, W0, h0, iterations=100, stop_threshold=0.001, normalize=True))
        diff = np.max(np.abs(our[0] - ref[0])) / np.max(ref[0])
        name = f"{v.shape[0]} × {v.shape[1]}, R {R}"
        print(f"{name:<22} {t_ref:>8.3f}s {t_our:>8.3f}s {t_ref / t_our:>5.1f}× "
              f"{t_fac:>8.3f}s {t_ref / t_fac:>5.1f}× {diff:>15.1e}")


if __name__ == "__main__":
    main()
