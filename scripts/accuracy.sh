#!/usr/bin/env bash
# Reproduces the transcription-accuracy table of the README (needs apt access for fluidsynth).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v fluidsynth >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq fluidsynth fluid-soundfont-gm
fi
cargo run --release --example accuracy -- "$@"
