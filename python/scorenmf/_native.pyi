# The compiled module's signatures (python/src/*.rs); the documented API is scorenmf's.
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__version__: str

class ScorenmfError(ValueError): ...

def transcribe(
    audio: Union[str, np.ndarray],
    score: Union[str, List[Tuple[float, float, int, float, str]]],
    sr: Optional[int] = ...,
    preset: str = ...,
    params: str = ...,
    align: bool = ...,
    force: bool = ...,
    transposition: bool = ...,
    repeats: str = ...,
) -> Dict[str, Any]: ...
def separate(
    audio: Union[str, np.ndarray],
    score: Union[str, List[Tuple[float, float, int, float, str]]],
    sr: Optional[int] = ...,
    by: Sequence[str] = ...,
    full_length: bool = ...,
    preset: str = ...,
    params: str = ...,
    align: bool = ...,
    force: bool = ...,
    transposition: bool = ...,
    repeats: str = ...,
) -> Dict[str, Any]: ...
def align(
    audio: Union[str, np.ndarray],
    score: Union[str, List[Tuple[float, float, int, float, str]]],
    sr: Optional[int] = ...,
    force: bool = ...,
    transposition: bool = ...,
    repeats: str = ...,
) -> Dict[str, Any]: ...
def parameter_names() -> List[Tuple[str, str]]: ...
def config(preset: str = ..., params: str = ...) -> str: ...
def nmf(
    v: np.ndarray,
    w0: np.ndarray,
    h0: np.ndarray,
    iterations: int = ...,
    stop_threshold: Optional[float] = ...,
    normalize: bool = ...,
    precision: str = ...,
    divergence: str = ...,
    eps: float = ...,
    fixed_w: bool = ...,
    tile: int = ...,
) -> Tuple[np.ndarray, np.ndarray, int, np.ndarray, float]: ...
def decompose(
    s: np.ndarray,
    n_components: Optional[int] = ...,
    beta: float = ...,
    init: str = ...,
    seed: int = ...,
    max_iter: int = ...,
    tol: float = ...,
    alpha_w: float = ...,
    alpha_h: float = ...,
    l1_ratio: float = ...,
    sort: bool = ...,
    w: Optional[np.ndarray] = ...,
    fixed_w: bool = ...,
    precision: str = ...,
) -> Tuple[np.ndarray, np.ndarray, int, bool, float]: ...
def eval_notes(
    ref_intervals: np.ndarray,
    ref_pitches: np.ndarray,
    est_intervals: np.ndarray,
    est_pitches: np.ndarray,
    onset_tolerance: float = ...,
    pitch_tolerance: float = ...,
    offset_ratio: Optional[float] = ...,
    offset_min_tolerance: float = ...,
    strict: bool = ...,
) -> Tuple[float, float, float, float]: ...
def eval_stems(
    reference_sources: np.ndarray, estimated_sources: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
