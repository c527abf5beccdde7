#!/usr/bin/env bash
# Reproduces the transcription-accuracy tables of the README (needs apt access for fluidsynth).
#   scripts/accuracy.sh              the degraded-score table (Chopin, synthetic, fluidsynth pieces)
#   scripts/accuracy.sh --quick      the same, Chopin and one short synthetic piece
#   scripts/accuracy.sh --realistic  the realistic pieces of scripts/realistic_material.py, by piece
#                                    (also needs a Python venv with numpy, pretty_midi, soundfile and
#                                    music21; made under target/material-venv when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v fluidsynth >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq fluidsynth fluid-soundfont-gm
fi
if [ "${1:-}" = "--realistic" ]; then
  OUT=${2:-target/realistic}
  VENV=target/material-venv
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q numpy pretty_midi soundfile music21==9.9.2
  fi
  "$VENV/bin/python" scripts/realistic_material.py "$OUT"
  cargo run --release --example accuracy -- --realistic "$OUT"
  exit
fi
cargo run --release --example accuracy -- "$@"
