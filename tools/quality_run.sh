#!/usr/bin/env bash
# One quality-per-hour run on Multi30k (issue 19's figures): trains from scratch with the given
# flags, wall time measured around the whole `transduce train` (tokenizer training and
# validation included), then picks the beam-5 length penalty α on `val` and reports
# test_2016_flickr cased BLEU, `-lc` BLEU and chrF with it.
#
#   tools/quality_run.sh [--members N] OUT SRC_LANG TGT_LANG [transduce train flags...]
#   e.g. tools/quality_run.sh models/fren-23m fr en --max-time 23m
#   tools/quality_run.sh --rescore [--members N] OUT SRC_LANG TGT_LANG
#
# --rescore trains nothing: it scores the model(s) already in OUT again (the α sweep on `val`,
# then test with the α chosen) into OUT/rescore.txt, leaving the run's quality.txt as it was.
# The α values tried are $ALPHAS (default "0.6 1.0 1.5").
#
# --members N trains N models at once (seeds 1..N, into OUT/member-K, the cores shared out
# through RAYON_NUM_THREADS, the same flags and so the same vocabulary) and scores them as one
# ensemble (`transduce translate -m OUT/member-1 -m OUT/member-2 ...`); the wall time is that
# of all N trainings together. How the ensemble combines them (linear or log-linear) is chosen
# on `val` with α, unless $ENSEMBLE_MODE names one.
#
# The summary goes to OUT/quality.txt (and standard output); the data is read from
# $TRANSDUCE_DATA (default ../shared/data/multi30k), never copied.
set -euo pipefail
members=1 rescore=no
if [ "${1:-}" = "--rescore" ]; then
    rescore=yes
    shift
fi
if [ "${1:-}" = "--members" ]; then
    members=$2
    shift 2
fi
out=$1 src=$2 tgt=$3
shift 3
if [ "$rescore" = yes ] && [ $# -gt 0 ]; then
    echo "quality_run.sh: --rescore trains nothing, so it takes no training flags (got: $*)" >&2
    exit 2
fi
alphas=${ALPHAS:-0.6 1.0 1.5}
for alpha in $alphas; do
    if ! [[ $alpha =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
        echo "quality_run.sh: ALPHAS: '$alpha' is not a length penalty α (a number such as 1.5)" >&2
        exit 2
    fi
done
dirs=("$out")
if [ "$members" -gt 1 ]; then
    dirs=()
    for k in $(seq 1 "$members"); do dirs+=("$out/member-$k"); done
fi
if [ "$rescore" = yes ] && [ ! -f "${dirs[0]}/metrics.jsonl" ]; then
    echo "quality_run.sh: --rescore: ${dirs[0]} holds no trained model (no metrics.jsonl)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
data=${TRANSDUCE_DATA:-$root/../shared/data/multi30k}
bin=${TRANSDUCE_BIN:-$root/target/release/transduce}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
train() { # train MODEL_DIR LOG [extra flags...]
    local dir=$1 log=$2
    shift 2
    "$bin" train --src "$data/train.$src.gz" --tgt "$data/train.$tgt.gz" \
        --valid-src "$data/val.$src.gz" --valid-tgt "$data/val.$tgt.gz" --out "$dir" "$@" 2> "$log" || {
        echo "quality_run.sh: transduce train failed for $dir; the end of its log:" >&2
        tail -n 20 "$log" >&2
        return 1
    }
}
started=$(date +%s)
if [ "$rescore" = yes ]; then
    :
elif [ "$members" -eq 1 ]; then
    train "$out" "$work/train.log" "$@"
else
    threads=$(( $(nproc) / members ))
    [ "$threads" -ge 1 ] || threads=1
    pids=()
    for k in $(seq 1 "$members"); do
        RAYON_NUM_THREADS=$threads train "$out/member-$k" "$work/train-$k.log" "$@" --seed "$k" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    cat "$work"/train-*.log > "$work/train.log"
fi
wall=$(( $(date +%s) - started ))
summary="$out/quality.txt"
[ "$rescore" = no ] || summary="$out/rescore.txt"
{
    if [ "$rescore" = no ]; then
        echo "command: transduce train --src train.$src --tgt train.$tgt (val) --out $out $* (members: $members)"
        echo "wall time of transduce train: $wall s"
        grep -E "^(stopped|last validation)" "$work/train.log" || true
    else
        echo "rescored: $out (members: $members), no training"
    fi
    for dir in "${dirs[@]}"; do
        echo "validation of $dir (greedy BLEU by update):"
        grep '"kind":"valid"' "$dir/metrics.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print("  update %d: BLEU %.2f chrF %.2f loss %.3f at %.0f s" % (r["update"], r["bleu"], r["chrf"], r["loss"], r["elapsed_s"]))'
    done
    zcat "$data/val.$src.gz" > "$work/val.$src"
    zcat "$data/val.$tgt.gz" > "$work/val.$tgt"
    translate=("$bin" translate --beam 5 -m "${dirs[@]}")
    modes=(none)
    [ "$members" -eq 1 ] || read -r -a modes <<< "${ENSEMBLE_MODE:-linear log-linear}"
    best_alpha="" best_mode="" best_bleu=-1
    for mode in "${modes[@]}"; do
        how=()
        [ "$mode" = none ] || how=(--ensemble-mode "$mode")
        for alpha in $alphas; do
            "${translate[@]}" "${how[@]}" --input "$work/val.$src" --output "$work/val.hyp" --alpha "$alpha" 2>/dev/null
            bleu=$("$bin" score --ref "$work/val.$tgt" --hyp "$work/val.hyp" -m bleu --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bleu"])')
            echo "val beam 5 alpha $alpha${how[*]:+ ${how[*]}}: cased BLEU $bleu"
            if python3 -c "import sys; sys.exit(0 if $bleu > $best_bleu else 1)"; then best_alpha=$alpha best_mode=$mode best_bleu=$bleu; fi
        done
    done
    [ "$best_mode" = none ] || translate+=(--ensemble-mode "$best_mode")
    zcat "$data/test_2016_flickr.$src.gz" > "$work/test.$src"
    zcat "$data/test_2016_flickr.$tgt.gz" > "$work/test.$tgt"
    "${translate[@]}" --input "$work/test.$src" --output "$out/test_2016_flickr.hyp.$tgt" --alpha "$best_alpha" 2>/dev/null
    echo "test_2016_flickr, beam 5, alpha $best_alpha$([ "$best_mode" = none ] || echo ", ensemble mode $best_mode") (chosen on val):"
    "$bin" score --ref "$work/test.$tgt" --hyp "$out/test_2016_flickr.hyp.$tgt"
    "$bin" score --ref "$work/test.$tgt" --hyp "$out/test_2016_flickr.hyp.$tgt" -lc -m bleu
} | tee "$summary"
