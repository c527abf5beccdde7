#!/usr/bin/env bash
# The NMF's NEON kernels, tested on an x86-64 machine: the library's model tests (the kernels
# against naive products on every edge shape, every path against faer's GEMM inside the NMF,
# threads that change no bit) cross-compiled for AArch64 and run under qemu-user.
#
# Needs: rustup's aarch64-unknown-linux-gnu standard library, and Debian's qemu-user,
# gcc-aarch64-linux-gnu and libc6-dev-arm64-cross. Usage: scripts/neon_tests.sh [test filter]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu
fi
for tool in qemu-aarch64 aarch64-linux-gnu-gcc; do
    command -v "$tool" >/dev/null || {
        echo "neon_tests: $tool is missing (apt-get install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)" >&2
        exit 2
    }
done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
cargo test --release --target aarch64-unknown-linux-gnu --target-dir target/aarch64 \
    --lib "${1:-model::}"
