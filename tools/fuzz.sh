#!/usr/bin/env bash
# Coverage-guided fuzzing of one target of tests/fuzz/targets.rs with libFuzzer, on stable Rust.
#
#   tools/fuzz.sh TARGET [SECONDS]      e.g. tools/fuzz.sh sentencepiece 600
#   tools/fuzz.sh all [SECONDS]         every target in turn
#
# Builds fuzz/ with LLVM's sanitizer-coverage passes (stable `-C passes` / `-C llvm-args`, no
# nightly sanitizers) and runs libFuzzer from tests/fuzz/corpus/TARGET plus the fixture seeds of
# tests/fuzz/seeds_from_fixtures.txt. A panic, a run over 20 s or RSS over 2 GiB stops it and
# leaves the input in fuzz/work/TARGET/ (crash-*, timeout-*, oom-*): add it to
# tests/fuzz/corpus/TARGET/ as a regression case once fixed. The last lines of each run go to
# fuzz/work/TARGET/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: tools/fuzz.sh TARGET|all [SECONDS]}
seconds=${2:-600}
triple=x86_64-unknown-linux-gnu

# cargo-fuzz's flags without its nightly sanitizer; --target keeps them off build scripts and
# proc macros
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --release --manifest-path fuzz/Cargo.toml --target "$triple" --bin fuzz_target
binary=fuzz/target/$triple/release/fuzz_target

if [ "$target" = all ]; then
    targets=$(ls tests/fuzz/corpus)
else
    targets=$target
fi
for t in $targets; do
    [ -d "tests/fuzz/corpus/$t" ] || { echo "tools/fuzz.sh: no tests/fuzz/corpus/$t" >&2; exit 2; }
    work=fuzz/work/$t
    mkdir -p "$work/corpus"
    cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
    grep -v '^#' tests/fuzz/seeds_from_fixtures.txt | awk -v t="$t" '$1 == t {print $2}' | while read -r seed; do
        cp "tests/fixtures/$seed" "$work/corpus/fixture-$(echo "$seed" | tr / -)"
    done
    echo "== $t: $seconds s" >&2
    TRANSDUCE_FUZZ_TARGET=$t "$binary" "$work/corpus" -max_total_time="$seconds" -timeout=20 \
        -rss_limit_mb=2048 -max_len=1048576 -artifact_prefix="$work/" -print_final_stats=1 \
        2> "$work/log.txt" || { tail -40 "$work/log.txt" >&2; exit 1; }
    { echo "$t: $seconds s"; grep -E "^(stat::|#[0-9]+ +DONE)" "$work/log.txt"; } | tee "$work/summary.txt" >&2
done
