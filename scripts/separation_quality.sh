#!/usr/bin/env bash
# Reproduces the separation-quality table of the README (needs apt and PyPI access).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v fluidsynth >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq fluidsynth fluid-soundfont-gm
fi
python3 -m venv target/venv
target/venv/bin/pip install -q librosa==0.11.0 mir_eval==0.8.2 mido soundfile numpy
cargo build --release
target/venv/bin/python scripts/separation_quality.py
