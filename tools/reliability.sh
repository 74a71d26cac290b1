#!/usr/bin/env bash
# The reliability figures of README.md's "Reliability" section, each scenario at full size:
#
#   tools/reliability.sh              everything but the long fuzzing (about 45 minutes)
#   tools/reliability.sh --fuzz 600   and before it libFuzzer on every target, 600 s each
#
# CI runs the same tests at their short sizes (.ci/run). Each prints its figures to stderr;
# the lines are collected in target/reliability.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=0
if [ "${1:-}" = --fuzz ]; then fuzz_seconds=${2:-600}; fi
out=target/reliability.txt
mkdir -p target
: > "$out"
run() {
    echo "== $*" | tee -a "$out"
    env "$@" 2>&1 | grep -v -E '^(running|test result|\s*$|     Running|    Finished|   Compiling)' | tee -a "$out"
}
if [ "$fuzz_seconds" -gt 0 ]; then
    tools/fuzz.sh all "$fuzz_seconds"
    cat fuzz/work/*/summary.txt | tee -a "$out"
fi
run TRANSDUCE_FUZZ_SECONDS=60 cargo test --release --test fuzz -- --nocapture
run cargo test --release --test cli_train the_same_seed -- --nocapture
run TRANSDUCE_SOAK_KILLS=20 TRANSDUCE_SOAK_SEED=7 cargo test --release --test kill_soak -- --nocapture
run cargo test --release --test full_disk -- --nocapture
run cargo test --release --test hostile_model_dir -- --nocapture
run TRANSDUCE_BAD_CORPUS_MB=1024 cargo test --release --test bad_corpus -- --nocapture
run TRANSDUCE_ABUSE_SCALE=4 cargo test --release --test serve_abuse -- --nocapture
echo "figures in $out"
