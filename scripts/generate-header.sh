#!/usr/bin/env bash
# Regenerates include/cdad.h from the Rust sources with cbindgen.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
CDAD_WRITE_HEADER=1 cargo test --release --quiet --test header_is_current
echo "include/cdad.h regenerated"
