"""Against the Python tools the API replaces, in the same process: libfmp's NMF, mir_eval's note
and separation metrics, librosa's (scikit-learn's) blind NMF."""

import numpy as np
import pytest

import scorenmf
from conftest import CHOPIN_CSV, CHOPIN_WAV, FMP_REFERENCE


def reference_matrix(name, float32=False):
    m = np.loadtxt(FMP_REFERENCE / name, delimiter=",", dtype=np.float32 if float32 else np.float64)
    return m.astype(np.float64)


def rel_max_diff(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_nmf_is_libfmps():
    libfmp_c8 = pytest.importorskip("libfmp.c8")
    V = reference_matrix("V.csv", float32=True)
    W0, H0 = reference_matrix("W0.csv"), reference_matrix("H0.csv")
    R = W0.shape[1]
    ours = scorenmf.nmf(V, R, thresh=0.001, L=100, W=W0, H=H0, norm=True)
    theirs = libfmp_c8.nmf(V, R, thresh=0.001, L=100, W=W0.copy(), H=H0.copy(), norm=True)
    assert rel_max_diff(ours[0], theirs[0]) < 1e-6
    assert rel_max_diff(ours[1], theirs[1]) < 1e-6
    assert rel_max_diff(ours[2], theirs[2]) < 1e-6
    assert abs(ours[3] - theirs[3]) < 1e-6 * theirs[3]
    # H_W_error: the changes of H and W per iteration (the threshold never stops it here).
    assert ours[4].shape == theirs[4].shape == (2, 100)
    np.testing.assert_allclose(ours[4], theirs[4], rtol=1e-5)
    # And the reference files themselves (made by libfmp once, tests/data/fmp_reference).
    assert rel_max_diff(ours[0], reference_matrix("W.csv")) < 1e-6
    assert rel_max_diff(ours[1], reference_matrix("H.csv")) < 1e-6


def test_nmf_random_start_follows_numpys_seed():
    V = np.abs(np.random.default_rng(1).standard_normal((40, 30)))
    np.random.seed(7)
    W1, H1, *_ = scorenmf.nmf(V, 3, L=50)
    np.random.seed(7)
    W2, H2, *_ = scorenmf.nmf(V, 3, L=50)
    np.testing.assert_array_equal(W1, W2)
    np.testing.assert_array_equal(H1, H2)


def chopin_intervals(table):
    onsets = table["Start"].to_numpy()
    return np.stack([onsets, onsets + table["Duration"].to_numpy()], axis=1)


def hz(pitches):
    return 440.0 * 2.0 ** ((np.asarray(pitches, dtype=np.float64) - 69.0) / 12.0)


def test_eval_notes_is_mir_evals():
    mir_eval = pytest.importorskip("mir_eval")
    import pandas as pd

    reference = pd.read_csv(CHOPIN_CSV, sep=";")
    t = scorenmf.transcribe(CHOPIN_WAV, score=CHOPIN_CSV)
    args = (chopin_intervals(reference), hz(reference["Pitch"]),
            chopin_intervals(t.notes), hz(t.notes["Pitch"]))
    for offset_ratio in (0.2, None):
        ours = scorenmf.eval.notes(*args, offset_ratio=offset_ratio)
        theirs = mir_eval.transcription.precision_recall_f1_overlap(*args, offset_ratio=offset_ratio)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert ours[2] > 0.95


def test_eval_stems_is_mir_evals_with_its_permutation():
    mir_eval = pytest.importorskip("mir_eval")
    rng = np.random.default_rng(3)
    refs = rng.standard_normal((3, 8000))
    mix = refs + 0.3 * rng.standard_normal((3, 8000))
    ests = np.stack([mix[2], mix[0] + 0.2 * mix[1], mix[1]])
    ours = scorenmf.eval.stems(refs, ests)
    theirs = mir_eval.separation.bss_eval_sources(refs, ests)
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ours[3], theirs[3])
    fixed = scorenmf.eval.stems(refs, ests, compute_permutation=False)
    np.testing.assert_array_equal(fixed[3], [0, 1, 2])


def test_decompose_is_librosas():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(5)
    S = np.abs(rng.standard_normal((64, 80))) ** 2
    for kw in (dict(), dict(beta_loss="kullback-leibler", max_iter=300), dict(init="nndsvd", sort=True)):
        ours = scorenmf.decompose(S, 4, random_state=0, **kw)
        theirs = librosa.decompose.decompose(S, n_components=4, random_state=0, solver="mu", **kw) \
            if "sort" not in kw else librosa.decompose.decompose(
                S, n_components=4, sort=True, random_state=0, solver="mu",
                **{k: v for k, v in kw.items() if k != "sort"})
        scale = np.max(np.abs(theirs[0] @ theirs[1]))
        assert np.max(np.abs(ours[0] @ ours[1] - theirs[0] @ theirs[1])) / scale < 1e-6, kw
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-8 * np.max(theirs[0]))
