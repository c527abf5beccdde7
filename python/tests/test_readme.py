"""The README's notebook cell, run as a reader would (from the repository's folder), gives the
notes and stems `scorenmf run` writes, and its `fmp` transcription has libfmp's factors."""

import csv
import re

import numpy as np
import soundfile

from conftest import FMP_REFERENCE, ROOT


def readme_cell():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- notebook-cell:[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert m, "no notebook cell in README.md"
    return m.group(1)


def test_the_readme_cell_reproduces_the_cli(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    cli("run", "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav",
        "data/FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv", "-o", out, "--wav-encoding", "float32", "-q")
    cell = {}
    exec(readme_cell(), cell)
    sep = cell["sep"]
    with open(out / "notes.csv", newline="") as f:
        rows = [(float(a), float(b), int(c), float(d), e) for a, b, c, d, e in list(csv.reader(f, delimiter=";"))[1:]]
    assert list(sep.notes.itertuples(index=False, name=None)) == rows
    for label in ("instrument/rh", "instrument/lh", "residual"):
        data, _ = soundfile.read(out / "stems" / f"{label}.wav", dtype="float32", always_2d=True)
        np.testing.assert_array_equal(sep.stems[label], data.T, err_msg=label)
    assert cell["rh"] is sep.stems["instrument/rh"]
    # The fmp preset's factors are libfmp's (tests/data/fmp_reference), as the README says.
    fmp = cell["fmp"]
    for name, ours in (("W.csv", fmp.W), ("H.csv", fmp.H), ("W0.csv", fmp.W0), ("H0.csv", fmp.H0)):
        ref = np.loadtxt(FMP_REFERENCE / name, delimiter=",")
        assert ours.shape == ref.shape, name
        assert np.max(np.abs(ours - ref)) / np.max(ref) < 1e-6, name
