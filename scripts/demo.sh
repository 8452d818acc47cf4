#!/usr/bin/env bash
# The continual demo: setting 3x5 (five tasks of three classes) on the built-in
# benchmark with the compact preset, through the C API (examples_c/continual_demo.c).
# Writes the benchmark (first run only), the report, overlays and the model to out/demo.
#   scripts/demo.sh [setting] [preset]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
cargo build --release --locked --lib
make -C examples_c --no-print-directory "$root/target/examples_c/continual_demo_shared" >/dev/null
mkdir -p out
exec target/examples_c/continual_demo_shared "${2:-compact}" "${1:-3x5}" out/demo
