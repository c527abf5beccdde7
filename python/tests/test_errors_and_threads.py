"""Bad input raises ScorenmfError with the command line's message; the work runs without the
GIL."""

import threading
import time

import numpy as np
import pytest
import soundfile

import scorenmf
from conftest import CHOPIN_CSV, CHOPIN_WAV


def test_a_missing_file_raises_the_clis_message(cli, tmp_path):
    missing = tmp_path / "missing.wav"
    done = cli("transcribe", missing, CHOPIN_CSV, "-o", tmp_path / "out", check=False)
    assert done.returncode == 2
    with pytest.raises(scorenmf.ScorenmfError) as e:
        scorenmf.transcribe(missing, score=CHOPIN_CSV)
    assert done.stderr.strip() == f"error: {e.value}"
    assert isinstance(e.value, ValueError)


def test_a_bad_score_row_names_its_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('"Start";"Duration";"Pitch";"Velocity";"Instrument"\n0.5;1.0;200;0.5;"rh"\n')
    with pytest.raises(scorenmf.ScorenmfError, match=r"bad\.csv.*line 2"):
        scorenmf.transcribe(CHOPIN_WAV, score=bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(nfft=1024), "unknown parameter 'nfft'"),
        (dict(n_fft="big"), "parameters"),
        (dict(preset="fast"), "preset 'fast'"),
        (dict(by=["hand"]), "by 'hand'"),
        (dict(repeats="twice"), "repeats 'twice'"),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(scorenmf.ScorenmfError, match=message):
        scorenmf.separate(CHOPIN_WAV, score=CHOPIN_CSV, **kwargs)


def test_bad_arrays_are_refused():
    data, rate = soundfile.read(CHOPIN_WAV, dtype="float32", always_2d=True)
    with pytest.raises(scorenmf.ScorenmfError, match="pass data.T"):
        scorenmf.transcribe(data, rate, CHOPIN_CSV)  # samples × channels
    with pytest.raises(scorenmf.ScorenmfError, match="dtype int16"):
        scorenmf.transcribe((data.T * 32767).astype(np.int16), rate, CHOPIN_CSV)
    with pytest.raises(TypeError, match="needs sr"):
        scorenmf.transcribe(data.T, score=CHOPIN_CSV)
    nan = data.T.copy()
    nan[0, 100] = np.nan
    with pytest.raises(scorenmf.ScorenmfError, match="NaN"):
        scorenmf.transcribe(nan, rate, CHOPIN_CSV)
    with pytest.raises(scorenmf.ScorenmfError, match="pitch 300"):
        scorenmf.transcribe(data.T, rate, [(0.5, 1.0, 300, 0.5, "rh")])
    with pytest.raises(scorenmf.ScorenmfError, match="non-negative|negative"):
        scorenmf.nmf(-np.ones((4, 5)), 2, W=np.ones((4, 2)), H=np.ones((2, 5)))


def test_the_gil_is_released_while_it_works():
    # A Python thread counts while another runs the analysis: with the GIL held for the whole
    # call it could not count during it.
    counted = []
    stop = threading.Event()

    def count():
        n = 0
        while not stop.is_set():
            n += 1
            if n % 1000 == 0:
                counted.append(time.perf_counter())

    def work():
        spans.append(time.perf_counter())
        scorenmf.separate(CHOPIN_WAV, score=CHOPIN_CSV, by=["instrument", "pitch", "note"])
        spans.append(time.perf_counter())

    spans = []
    counter = threading.Thread(target=count)
    counter.start()
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    stop.set()
    counter.join()
    start, end = spans
    during = [t for t in counted if start < t < end]
    assert len(during) > 100, f"{len(during)} counts in {end - start:.2f} s of work"


def test_every_parameter_sets_its_field():
    import json

    from scorenmf import _native

    for preset in ("default", "fmp"):
        base = json.loads(_native.config(preset))
        for name, path in _native.parameter_names():
            value = base
            for part in path.split("."):
                value = value[part]
            if name == "refine_onsets":
                value = value is not None
            elif name == "stop_threshold" and value is None:
                value = 0
            # Its own value: the configuration does not change; another value lands at the path.
            assert json.loads(_native.config(preset, json.dumps({name: value}))) == base, name
    c = json.loads(_native.config("default", json.dumps({"n_fft": 4096, "stop_threshold": 0,
                                                         "refine_onsets": False, "mask_model": "shared"})))
    assert c["stft"]["n_fft"] == 4096 and c["nmf"]["stop_threshold"] is None
    assert c["transcribe"]["onset"]["refine"] is None and c["separate"]["model"] == "shared"


def test_a_missing_score_is_a_type_error():
    with pytest.raises(TypeError, match="score is required"):
        scorenmf.transcribe(CHOPIN_WAV)
