#!/usr/bin/env bash
# Runs every test of cdad from nothing: set-up, Rust unit and integration tests (the
# header check among them), the C programs linked against the shared and the static
# library, and one C program under valgrind (no memory error, no leak).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh

# Tests run two at a time; one libtorch thread each keeps the two cores from being
# oversubscribed (OpenMP threads spinning against each other slow training ~10x).
export OMP_NUM_THREADS=1

echo "== Rust tests (release)"
cargo test --release --locked

# The native libraries a program needs when it links libcdad.a, as rustc reports them
# (this compiles the library once more as a static library only, then restores the
# normal build).
libs_file="target/release/native-static-libs.txt"
cargo rustc --release --locked --lib --crate-type staticlib -- --print native-static-libs 2>&1 \
    | sed -n 's/.*native-static-libs: //p' | tail -n 1 > "$libs_file"
cargo build --release --locked --lib

echo "== C programs (shared and static library)"
make -C examples_c --no-print-directory STATIC_LIBS="$(cat "$libs_file")" >/dev/null
# The continual demo runs a tiny two-task protocol here (the README's demo command runs
# the full 3x5 setting with the compact preset).
run_example() {
    case "$1" in
        *continual_demo_*) "$1" tiny 2x2 "target/examples_work/$(basename "$1")" 10 32 ;;
        *) "$1" ;;
    esac
}
mkdir -p target/examples_work
c_failed=0
for program in target/examples_c/*_shared target/examples_c/*_static; do
    echo "-- $program"
    run_example "$program" || c_failed=$((c_failed + 1))
done

echo "== valgrind (memory errors and leaks)"
for program in target/examples_c/contract_shared target/examples_c/task_data_shared; do
    log="target/examples_c/$(basename "$program").valgrind.log"
    if valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect "$program" >"$log" 2>&1; then
        echo "-- $program: clean"
    else
        echo "-- $program: valgrind reported errors:"; cat "$log"; c_failed=$((c_failed + 1))
    fi
done

if [ "$c_failed" -ne 0 ]; then
    echo "C programs: $c_failed run(s) failed"
    exit 1
fi
echo "all tests passed"
