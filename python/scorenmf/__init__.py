"""scorenmf: score-informed music transcription and source separation, numpy in and out.

The same analysis as the ``scorenmf`` command line (constrained NMF after FMP's notebook C8S3
and Ewert & Müller, ICASSP 2012), called from Python: the same inputs and parameters give the
same numbers as the command line, bit for bit.

* :func:`transcribe` - which score notes were played, when, how long and how loudly;
* :func:`separate` - the same, and the stems (per instrument, pitch or note, and the residual);
* :func:`align` - a notation score aligned to the recording (chroma and onset features,
  multiresolution DTW);
* :func:`nmf` - the constrained NMF alone, called as ``libfmp.c8.nmf`` is;
* :func:`decompose` - blind NMF of a spectrogram, called as ``librosa.decompose.decompose`` is;
* :mod:`scorenmf.eval` - ``mir_eval``'s note and separation metrics.

The work runs in Rust with the GIL released; errors raise :class:`ScorenmfError` (a
``ValueError``) with the command line's message.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import ScorenmfError, __version__

__all__ = [
    "Alignment",
    "ScorenmfError",
    "Separation",
    "Transcription",
    "align",
    "decompose",
    "eval",
    "nmf",
    "parameters",
    "separate",
    "transcribe",
]

#: The columns of notes.csv (FMP's note list), and of every notes table here.
NOTE_COLUMNS = ("Start", "Duration", "Pitch", "Velocity", "Instrument")

Audio = Union[str, "os.PathLike[str]", np.ndarray]
ScoreLike = Union[str, "os.PathLike[str]", Any, Sequence[Sequence[Any]]]


def parameters() -> List[str]:
    """The keyword parameters :func:`transcribe` and :func:`separate` take.

    They are the command line's options in snake case (``n_fft`` for ``--n-fft``); an option
    that is a flag there is a bool here (``fixed_w=True``, ``refine_onsets=False``,
    ``normalize=False`` for ``--no-normalize``). Unset ones take the preset's value.
    """
    return [name for name, _ in _native.parameter_names()]


def _audio_arg(audio: Audio) -> Union[str, np.ndarray]:
    """A path as a string, or samples as a C-ordered float32 array of channels × samples."""
    if isinstance(audio, (str, os.PathLike)):
        return os.fspath(audio)
    a = np.asarray(audio)
    if a.dtype.kind not in "f":
        raise ScorenmfError(
            f"audio array of dtype {a.dtype}: pass floating-point samples in [-1, 1]"
        )
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ScorenmfError(f"audio array of shape {a.shape}: need samples or channels × samples")
    if a.shape[0] > 64 and a.shape[1] <= 64:
        raise ScorenmfError(
            f"audio array of shape {a.shape}: need channels × samples "
            "(soundfile.read gives samples × channels: pass data.T)"
        )
    return np.ascontiguousarray(a, dtype=np.float32)


def _score_arg(score: ScoreLike) -> Union[str, List[Tuple[float, float, int, float, str]]]:
    """A path as a string, or the notes as (start, duration, pitch, velocity, instrument)."""
    if isinstance(score, (str, os.PathLike)):
        return os.fspath(score)
    if score is None:
        raise TypeError("score is required: a path, a DataFrame or a list of notes")
    columns = getattr(score, "columns", None)
    if columns is not None:  # a pandas DataFrame
        by_name = {str(c).lower(): c for c in columns}
        missing = [c for c in ("start", "duration", "pitch") if c not in by_name]
        if missing:
            raise ScorenmfError(
                f"score DataFrame without the column(s) {', '.join(missing)} "
                f"(it has {', '.join(map(str, columns))})"
            )
        n = len(score)
        col = lambda name, default: (  # noqa: E731
            score[by_name[name]].tolist() if name in by_name else [default] * n
        )
        rows = zip(col("start", 0.0), col("duration", 0.0), col("pitch", 0),
                   col("velocity", 1.0), col("instrument", ""))
    else:
        rows = score
    out = []
    for row in rows:
        row = tuple(row)
        if len(row) < 3:
            raise ScorenmfError(f"score row {row!r}: need (start, duration, pitch[, velocity[, instrument]])")
        start, duration, pitch = row[:3]
        velocity = row[3] if len(row) > 3 else 1.0
        instrument = row[4] if len(row) > 4 else ""
        out.append((float(start), float(duration), int(pitch), float(velocity), str(instrument)))
    return out


def _table(rows: List[Tuple[Any, ...]]) -> Any:
    """Note rows as a pandas DataFrame with :data:`NOTE_COLUMNS` (a dict of numpy arrays when
    pandas is not installed)."""
    columns = list(zip(*rows)) if rows else [[] for _ in NOTE_COLUMNS]
    data = {
        "Start": np.asarray(columns[0], dtype=np.float64),
        "Duration": np.asarray(columns[1], dtype=np.float64),
        "Pitch": np.asarray(columns[2], dtype=np.int64),
        "Velocity": np.asarray(columns[3], dtype=np.float64),
        "Instrument": np.asarray(columns[4], dtype=object),
    }
    try:
        import pandas as pd
    except ImportError:
        return data
    return pd.DataFrame(data, columns=list(NOTE_COLUMNS))


def _warn(messages: Sequence[str]) -> None:
    for m in messages:
        warnings.warn(m, stacklevel=3)


@dataclass
class Alignment:
    """A notation score aligned to a recording (what ``scorenmf align`` writes)."""

    #: The warping path: (score time, recording time) pairs in seconds, both strictly increasing
    #: (alignment.csv).
    path: np.ndarray
    #: The score's notes moved onto the recording (aligned_score.csv).
    score: Any
    #: 1 - path cost / baseline cost: near 0 for an unrelated score, towards 1 for a close fit.
    confidence: float
    path_cost: float
    baseline_cost: float
    #: Semitones the recording sounds above the score.
    shift: int
    #: The recording's A4 in Hz.
    a4: float
    #: Score notes outside the part of the score the recording holds (left out).
    outside: int

    @classmethod
    def _of(cls, d: Dict[str, Any]) -> "Alignment":
        return cls(
            path=d["path"], score=_table(d["score"]), confidence=d["confidence"],
            path_cost=d["path_cost"], baseline_cost=d["baseline_cost"], shift=d["shift"],
            a4=d["a4"], outside=d["outside"],
        )


@dataclass
class Transcription:
    """What ``scorenmf transcribe`` writes, in memory."""

    #: The played notes as notes.csv holds them (columns :data:`NOTE_COLUMNS`, in time order).
    notes: Any
    #: notes.json: ``events`` (each played note's onset, offset, shift, gain, velocity,
    #: confidence and evidence), ``not_played``, ``score_offset``, ``summary``.
    notes_json: Dict[str, Any]
    #: The score the transcription followed (aligned, with ``align=True``).
    score: Any
    #: The factorization V ≈ WH: templates W (bins × components), activations H (components ×
    #: frames), and where they started (W0 from the score's pitches, H0 from its notes).
    W: np.ndarray
    H: np.ndarray
    W0: np.ndarray
    H0: np.ndarray
    #: One label per component (column of W, row of H): pitch, ``on`` or ``harm``.
    components: List[str]
    iterations: int
    #: ||V - WH||_F / ||V||_F at the end.
    rel_error: float
    #: Seconds between frames of H.
    frame_time: float
    #: Every parameter, as run.json records it.
    config: Dict[str, Any]
    #: With ``align=True``, the alignment.
    alignment: Optional[Alignment] = None

    @property
    def events(self) -> List[Dict[str, Any]]:
        """The played notes with their figures (notes.json's ``events``)."""
        return self.notes_json["events"]

    @property
    def not_played(self) -> List[Dict[str, Any]]:
        """The score notes judged not played (notes.json's ``not_played``)."""
        return self.notes_json["not_played"]

    @classmethod
    def _fields(cls, d: Dict[str, Any]) -> Dict[str, Any]:
        return dict(
            notes=_table(d["notes"]), notes_json=json.loads(d["notes_json"]),
            score=_table(d["score"]), W=d["W"], H=d["H"], W0=d["W0"], H0=d["H0"],
            components=list(d["components"]), iterations=d["iterations"],
            rel_error=d["rel_error"], frame_time=d["frame_time"],
            config=json.loads(d["config"]),
            alignment=Alignment._of(d["alignment"]) if d["alignment"] is not None else None,
        )


@dataclass
class Separation(Transcription):
    """What ``scorenmf run`` writes, in memory: the transcription and the stems."""

    #: Each stem as channels × samples float32 at the recording's rate, keyed by its path under
    #: stems/ without ``.wav``: ``instrument/rh``, ``pitch/64_E4``, ``note/…``, ``residual``.
    stems: Dict[str, np.ndarray] = field(default_factory=dict)


def transcribe(
    audio: Audio,
    sr: Optional[int] = None,
    score: ScoreLike = None,
    *,
    preset: str = "default",
    align: bool = False,
    force: bool = False,
    transposition: bool = True,
    repeats: str = "written",
    **params: Any,
) -> Transcription:
    """Which notes of ``score`` were played in ``audio``, when, how long and how loudly.

    Args:
        audio: a path (WAV, FLAC, MP3, Ogg Vorbis) or float samples: a 1-D array (mono) or
            channels × samples (librosa's layout).
        sr: the samples' rate in Hz (with an array; ignored for a path).
        score: a path (CSV note list, MIDI, MusicXML), a DataFrame with columns start,
            duration, pitch[, velocity, instrument] (any case), or a list of such tuples;
            seconds, aligned to the recording unless ``align``.
        preset: ``"default"`` or ``"fmp"`` (FMP's notebook C8S3 exactly).
        align: align the score to the recording first (a notation score at its nominal tempo).
        force: with ``align``, go on when the score does not seem to fit the recording.
        transposition: with ``align``, try transposed scores too.
        repeats: how a MusicXML score's repeats are read: ``"written"`` or ``"none"``.
        **params: the command line's options (see :func:`parameters`).

    Returns:
        a :class:`Transcription`; the same notes as ``scorenmf transcribe`` with the same
        options writes.
    """
    d = _native.transcribe(
        _audio_arg(audio), _score_arg(score), sr=sr, preset=preset,
        params=json.dumps(params), align=align, force=force,
        transposition=transposition, repeats=repeats,
    )
    _warn(d["warnings"])
    return Transcription(**Transcription._fields(d))


def separate(
    audio: Audio,
    sr: Optional[int] = None,
    score: ScoreLike = None,
    *,
    by: Sequence[str] = ("instrument",),
    full_length: bool = False,
    preset: str = "default",
    align: bool = False,
    force: bool = False,
    transposition: bool = True,
    repeats: str = "written",
    **params: Any,
) -> Separation:
    """:func:`transcribe`, then the stems of each grouping in ``by`` (``"instrument"``,
    ``"pitch"``, ``"note"``) and the residual, as ``scorenmf run --by …`` makes them (with
    ``--wav-encoding float32``: the same samples). Per-note stems are cropped to their note
    unless ``full_length``. Takes the same arguments as :func:`transcribe`.
    """
    d = _native.separate(
        _audio_arg(audio), _score_arg(score), sr=sr, by=list(by), full_length=full_length,
        preset=preset, params=json.dumps(params), align=align, force=force,
        transposition=transposition, repeats=repeats,
    )
    _warn(d["warnings"])
    return Separation(stems=dict(d["stems"]), **Transcription._fields(d))


def align(
    audio: Audio,
    sr: Optional[int] = None,
    score: ScoreLike = None,
    *,
    force: bool = False,
    transposition: bool = True,
    repeats: str = "written",
) -> Alignment:
    """Aligns a notation score (at its nominal tempo, from 0 s) to the recording, as
    ``scorenmf align`` does: the warping path and the score moved onto the recording. A score
    that does not fit the recording raises :class:`ScorenmfError` unless ``force``."""
    d = _native.align(
        _audio_arg(audio), _score_arg(score), sr=sr, force=force,
        transposition=transposition, repeats=repeats,
    )
    _warn(d["warnings"])
    return Alignment._of(d)


def nmf(
    V: np.ndarray,
    R: int,
    thresh: float = 0.001,
    L: int = 1000,
    W: Optional[np.ndarray] = None,
    H: Optional[np.ndarray] = None,
    norm: bool = False,
    report: bool = False,
    *,
    divergence: str = "euclidean",
    precision: str = "double",
    fixed_W: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """NMF by multiplicative updates, called as ``libfmp.c8.nmf`` is (same arguments, same
    results to about 1e-6 of the largest entry; zeros of W and H stay zero, so W = W0, H = H0
    from a score make it the constrained NMF of FMP's notebook C8S3).

    Args:
        V: the K × N non-negative matrix (held as float32, as an STFT's magnitude is).
        R: the rank.
        thresh: stop when the spectral norms of the changes of H and of W both fall under it.
        L: the most iterations.
        W, H: the K × R and R × N starts (``np.random.rand`` when None, as libfmp does).
        norm: max-normalize W's columns at the end (H scaled to keep WH).
        report: print each iteration's changes, as libfmp does.
        divergence: ``"euclidean"`` (libfmp's) or ``"kl"``.
        precision: ``"double"`` or ``"single"`` arithmetic for W and H.
        fixed_W: keep W; update H only.

    Returns:
        (W, H, V_approx = W @ H, ||V - V_approx||_2, H_W_error: the changes of H and W per
        iteration, 2 × iterations).
    """
    V = np.asarray(V, dtype=np.float64)
    K, N = V.shape
    W = np.random.rand(K, R) if W is None else np.asarray(W, dtype=np.float64)
    H = np.random.rand(R, N) if H is None else np.asarray(H, dtype=np.float64)
    W_out, H_out, _, changes, _ = _native.nmf(
        V, W, H, iterations=L, stop_threshold=thresh, normalize=norm,
        precision=precision, divergence=divergence, fixed_w=fixed_W,
    )
    if report:
        for ell, (h_err, w_err) in enumerate(changes.T, start=1):
            print("Iteration: ", ell, ", H_error: ", h_err, ", W_error: ", w_err)
    V_approx = W_out.dot(H_out)
    return W_out, H_out, V_approx, float(np.linalg.norm(V - V_approx, ord=2)), changes


_BETA = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}


def decompose(
    S: np.ndarray,
    n_components: Optional[int] = None,
    *,
    sort: bool = False,
    beta_loss: Union[str, float] = "frobenius",
    init: Optional[str] = None,
    random_state: Optional[int] = None,
    max_iter: int = 200,
    tol: float = 1e-4,
    alpha_W: float = 0.0,
    alpha_H: Union[float, str] = "same",
    l1_ratio: float = 0.0,
    W: Optional[np.ndarray] = None,
    fixed_W: bool = False,
    precision: str = "double",
) -> Tuple[np.ndarray, np.ndarray]:
    """Blind NMF of a spectrogram, called as ``librosa.decompose.decompose(S, n_components,
    sort=…, beta_loss=…, …)`` with scikit-learn's ``NMF(solver="mu")`` keywords, which it
    reproduces (``scorenmf decompose``'s engine).

    ``alpha_W`` and ``alpha_H`` are scikit-learn's as librosa passes them (librosa factorizes
    Sᵀ, so scikit-learn's W is the activations here). ``init=None`` is scikit-learn's default
    (``"nndsvda"`` when ``n_components`` ≤ min(S.shape), else ``"random"``); ``random_state``
    None is seed 0. With ``W`` (K × R templates) H starts at √(mean(S)/R), and ``fixed_W``
    keeps W (scikit-learn's ``transform``).

    Returns:
        (components: K × R templates, activations: R × N), as librosa returns them.
    """
    S = np.asarray(S, dtype=np.float64)
    beta = _BETA[beta_loss] if isinstance(beta_loss, str) else float(beta_loss)
    r = n_components if n_components is not None else min(S.shape)
    if init is None:
        init = "nndsvda" if r <= min(S.shape) else "random"
    alpha_h_sklearn = alpha_W if alpha_H == "same" else float(alpha_H)
    components, activations, _, _, _ = _native.decompose(
        S, n_components=r, beta=beta, init=init,
        seed=0 if random_state is None else int(random_state), max_iter=max_iter, tol=tol,
        alpha_w=alpha_h_sklearn, alpha_h=alpha_W, l1_ratio=l1_ratio, sort=sort,
        w=None if W is None else np.asarray(W, dtype=np.float64), fixed_w=fixed_W,
        precision=precision,
    )
    return components, activations


from . import eval  # noqa: E402  (after the names it uses)
