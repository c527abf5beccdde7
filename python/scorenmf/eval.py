"""mir_eval's metrics as ``scorenmf eval`` computes them, in mir_eval's argument order.

* :func:`notes` - ``mir_eval.transcription.precision_recall_f1_overlap``;
* :func:`stems` - ``mir_eval.separation.bss_eval_sources`` (BSS Eval v3).
"""

from __future__ import annotations

import itertools
from typing import Optional, Tuple

import numpy as np

from . import _native
from ._native import ScorenmfError

__all__ = ["notes", "stems"]


def notes(
    ref_intervals: np.ndarray,
    ref_pitches: np.ndarray,
    est_intervals: np.ndarray,
    est_pitches: np.ndarray,
    onset_tolerance: float = 0.05,
    pitch_tolerance: float = 50.0,
    offset_ratio: Optional[float] = 0.2,
    offset_min_tolerance: float = 0.05,
    strict: bool = False,
) -> Tuple[float, float, float, float]:
    """Precision, recall, F-measure and average overlap ratio of the estimated notes against the
    reference, as ``mir_eval.transcription.precision_recall_f1_overlap`` computes them.

    Intervals are N × 2 (onset, offset) in seconds, pitches in Hz; ``offset_ratio=None``
    matches onsets (and pitches) only.
    """
    as2 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1, 2))  # noqa: E731
    as1 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1))  # noqa: E731
    return _native.eval_notes(
        as2(ref_intervals), as1(ref_pitches), as2(est_intervals), as1(est_pitches),
        onset_tolerance=onset_tolerance, pitch_tolerance=pitch_tolerance,
        offset_ratio=offset_ratio, offset_min_tolerance=offset_min_tolerance, strict=strict,
    )


#: The most sources :func:`stems` searches every permutation of (5! = 120 evaluations).
MAX_PERMUTED = 5


def stems(
    reference_sources: np.ndarray,
    estimated_sources: np.ndarray,
    compute_permutation: bool = True,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR, SAR (dB) and the permutation, as ``mir_eval.separation.bss_eval_sources``
    computes them (BSS Eval v3, 512-tap distortion filters).

    Sources are rows (sources × samples; a 1-D array is one source). With
    ``compute_permutation`` the estimates are matched to the references by the permutation of
    highest mean SIR, as mir_eval matches them (for at most :data:`MAX_PERMUTED` sources);
    without it, estimate j is scored against reference j. ``perm[j]`` is the estimate matched
    with reference j.
    """
    ref = np.atleast_2d(np.asarray(reference_sources, dtype=np.float64))
    est = np.atleast_2d(np.asarray(estimated_sources, dtype=np.float64))
    if ref.shape != est.shape:
        raise ScorenmfError(
            f"reference sources {ref.shape} and estimated {est.shape}: need the same shape"
        )
    n = ref.shape[0]
    if not compute_permutation or n == 1:
        sdr, sir, sar = _native.eval_stems(np.ascontiguousarray(ref), np.ascontiguousarray(est))
        return sdr, sir, sar, np.arange(n)
    if n > MAX_PERMUTED:
        raise ScorenmfError(
            f"{n} sources: the permutation search takes at most {MAX_PERMUTED}; "
            "order the estimates and pass compute_permutation=False"
        )
    best = None
    for perm in itertools.permutations(range(n)):
        p = np.asarray(perm)
        sdr, sir, sar = _native.eval_stems(
            np.ascontiguousarray(ref), np.ascontiguousarray(est[p])
        )
        if best is None or np.mean(sir) > np.mean(best[1]):
            best = (sdr, sir, sar, p)
    return best
