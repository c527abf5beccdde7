"""Shared inputs of the Python package's tests: the repository's data and the scorenmf binary
(SCORENMF_BIN, else target/release/scorenmf, which `cargo test --release` builds)."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
CHOPIN_WAV = DATA / "FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.wav"
CHOPIN_CSV = DATA / "FMP_C8_Audio_Chopin_Op028-04_SMD_beginning.csv"
FERMATA_WAV = DATA / "alignment" / "FMP_C3S3_Beethoven_Fifth-MM1-21_Sibelius-Piano_Fermata.wav"
BEETHOVEN_XML = DATA / "alignment" / "FMP_C1_F10_Beethoven_Fifth-MM1-21_Sibelius-Piano.xml"
FMP_REFERENCE = ROOT / "tests" / "data" / "fmp_reference"


@pytest.fixture(scope="session")
def cli():
    """Runs the scorenmf binary; fails the test with its stderr when it fails."""
    binary = pathlib.Path(os.environ.get("SCORENMF_BIN", ROOT / "target" / "release" / "scorenmf"))
    if not binary.exists():
        pytest.fail(f"no scorenmf binary at {binary}: run `cargo build --release` or set SCORENMF_BIN")

    def run(*args, check=True):
        done = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
        if check and done.returncode != 0:
            pytest.fail(f"scorenmf {' '.join(map(str, args))}: {done.stderr}")
        return done

    return run
