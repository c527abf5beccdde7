#!/usr/bin/env bash
# Alignment quality on material with exact ground truth, scorenmf and synctoolbox in one run
# (see scripts/alignment_quality.py). Installs fluidsynth and the FluidR3 GM soundfont (Debian)
# and a venv with synctoolbox, music21, mir_eval (PyPI) under target/alignment-venv.
# Usage: scripts/alignment_quality.sh [OUT]   (default target/alignment-quality)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/alignment-quality}
if ! command -v fluidsynth >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then
  apt-get update -q && apt-get install -y -q fluidsynth fluid-soundfont-gm
fi
VENV=target/alignment-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q synctoolbox==1.4.2 music21==9.9.2 mir_eval==0.8.2 pretty_midi soundfile
fi
cargo build --release --locked
"$VENV/bin/python" scripts/alignment_quality.py "$PWD/target/release/scorenmf" "$OUT"
