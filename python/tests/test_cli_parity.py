"""The Python API against the command line on the same inputs and parameters: the same notes,
notes.json, factors' shapes, stems (sample for sample) and alignment."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
import soundfile

import scorenmf
from conftest import BEETHOVEN_XML, CHOPIN_CSV, CHOPIN_WAV, FERMATA_WAV


def read_notes_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[0] == list(scorenmf.NOTE_COLUMNS)
    return [(float(a), float(b), int(c), float(d), e) for a, b, c, d, e in rows[1:]]


def rows_of(table):
    return list(table.itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def cli_run(cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    cli("run", CHOPIN_WAV, CHOPIN_CSV, "-o", out, "--by", "instrument,pitch",
        "--wav-encoding", "float32", "-q")
    return out


@pytest.fixture(scope="module")
def separated():
    return scorenmf.separate(CHOPIN_WAV, score=CHOPIN_CSV, by=["instrument", "pitch"])


def test_notes_and_notes_json_are_the_clis(cli_run, separated):
    assert rows_of(separated.notes) == read_notes_csv(cli_run / "notes.csv")
    assert separated.notes_json == json.loads((cli_run / "notes.json").read_text())
    record = json.loads((cli_run / "run.json").read_text())
    assert separated.config == record["config"]
    assert separated.iterations == record["results"]["nmf_iterations"]
    assert separated.rel_error == record["results"]["nmf_relative_error"]


def test_stems_are_the_clis_sample_for_sample(cli_run, separated):
    files = sorted(p for p in (cli_run / "stems").rglob("*.wav"))
    labels = sorted(str(p.relative_to(cli_run / "stems").with_suffix("")) for p in files)
    assert sorted(separated.stems) == labels
    for path in files:
        label = str(path.relative_to(cli_run / "stems").with_suffix(""))
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        assert rate == 22050
        np.testing.assert_array_equal(separated.stems[label], data.T, err_msg=label)


def test_transcribe_matches_separate_and_takes_arrays_and_tables():
    by_path = scorenmf.transcribe(CHOPIN_WAV, score=CHOPIN_CSV)
    # The decoder's samples (16-bit PCM / 32768), as soundfile gives them, channels × samples.
    data, rate = soundfile.read(CHOPIN_WAV, dtype="float32", always_2d=True)
    # pandas parses floats exactly only with float_precision="round_trip".
    table = pd.read_csv(CHOPIN_CSV, sep=";", float_precision="round_trip")
    by_array = scorenmf.transcribe(data.T, rate, table)
    assert rows_of(by_array.notes) == rows_of(by_path.notes)
    assert by_array.notes_json == by_path.notes_json
    # A mono 1-D array of the same samples, and the score as a list of tuples.
    rows = [tuple(r) for r in table.itertuples(index=False)]
    mono = scorenmf.transcribe(data[:, 0], rate, rows)
    assert rows_of(mono.notes) == rows_of(by_path.notes)


def test_dtypes_and_shapes(separated):
    t = separated
    k, r = t.W.shape
    assert (k, r) == (1025, 16) and t.W.dtype == np.float64
    assert t.H.shape == (r, t.H0.shape[1]) and t.W0.shape == t.W.shape
    assert len(t.components) == r and t.components[0].endswith(" on")
    assert list(t.notes.columns) == list(scorenmf.NOTE_COLUMNS)
    assert str(t.notes["Pitch"].dtype) == "int64" and str(t.notes["Start"].dtype) == "float64"
    assert len(t.events) + len(t.not_played) == len(t.score) == 54
    samples = soundfile.info(str(CHOPIN_WAV)).frames
    for label, stem in t.stems.items():
        assert stem.dtype == np.float32 and stem.shape == (1, samples), label
    assert abs(t.frame_time - 512 / 22050) < 1e-15


def test_parameters_and_presets_reach_the_analysis(cli, tmp_path):
    out = tmp_path / "fmp"
    cli("transcribe", CHOPIN_WAV, CHOPIN_CSV, "-o", out, "--preset", "fmp", "--iterations", "40",
        "--no-refine-onsets", "-q")
    t = scorenmf.transcribe(CHOPIN_WAV, score=CHOPIN_CSV, preset="fmp", iterations=40,
                            refine_onsets=False)
    assert rows_of(t.notes) == read_notes_csv(out / "notes.csv")
    assert t.config["nmf"]["iterations"] == 40 and t.config["transcribe"]["onset"]["refine"] is None
    assert t.H.shape[1] == 230  # hop 1024
    assert "iterations" in scorenmf.parameters()


def test_align_matches_the_cli(cli, tmp_path):
    out = tmp_path / "align"
    cli("align", FERMATA_WAV, BEETHOVEN_XML, "-o", out, "-q")
    a = scorenmf.align(FERMATA_WAV, score=BEETHOVEN_XML)
    path = np.loadtxt(out / "alignment.csv", delimiter=",", skiprows=1)
    # alignment.csv prints 6 decimals.
    np.testing.assert_allclose(a.path, path, atol=5e-7)
    assert rows_of(a.score) == read_notes_csv(out / "aligned_score.csv")
    record = json.loads((out / "alignment.json").read_text())
    assert a.confidence == record["confidence"] and a.shift == record["shift"]
    # And transcription from the aligned score, as `run --align`.
    t = scorenmf.transcribe(FERMATA_WAV, score=BEETHOVEN_XML, align=True)
    assert t.alignment is not None and rows_of(t.score) == rows_of(a.score)
