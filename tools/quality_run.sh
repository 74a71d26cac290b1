#!/usr/bin/env bash
# One quality-per-hour run on Multi30k (issue 19's figures): trains from scratch with the given
# flags, wall time measured around the whole `transduce train` (tokenizer training and
# validation included), then picks the beam-5 length penalty α on `val` and reports
# test_2016_flickr cased BLEU, `-lc` BLEU and chrF with it.
#
#   tools/quality_run.sh OUT SRC_LANG TGT_LANG [transduce train flags...]
#   e.g. tools/quality_run.sh models/fren-23m fr en --max-time 23m
#
# The summary goes to OUT/quality.txt (and standard output); the data is read from
# $TRANSDUCE_DATA (default ../shared/data/multi30k), never copied.
set -euo pipefail
out=$1 src=$2 tgt=$3
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
data=${TRANSDUCE_DATA:-$root/../shared/data/multi30k}
bin=${TRANSDUCE_BIN:-$root/target/release/transduce}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
"$bin" train --src "$data/train.$src.gz" --tgt "$data/train.$tgt.gz" \
    --valid-src "$data/val.$src.gz" --valid-tgt "$data/val.$tgt.gz" --out "$out" "$@" 2> "$work/train.log"
wall=$(( $(date +%s) - started ))
summary="$out/quality.txt"
{
    echo "command: transduce train --src train.$src --tgt train.$tgt (val) --out $out $*"
    echo "wall time of transduce train: $wall s"
    grep -E "^(stopped|last validation)" "$work/train.log" || true
    echo "validation (greedy BLEU by update):"
    grep '"kind":"valid"' "$out/metrics.jsonl" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print("  update %d: BLEU %.2f chrF %.2f loss %.3f at %.0f s" % (r["update"], r["bleu"], r["chrf"], r["loss"], r["elapsed_s"]))'
    zcat "$data/val.$src.gz" > "$work/val.$src"
    zcat "$data/val.$tgt.gz" > "$work/val.$tgt"
    best_alpha="" best_bleu=-1
    for alpha in 0.6 1.0 1.5; do
        "$bin" translate -m "$out" --input "$work/val.$src" --output "$work/val.hyp" --beam 5 --alpha "$alpha" 2>/dev/null
        bleu=$("$bin" score --ref "$work/val.$tgt" --hyp "$work/val.hyp" -m bleu --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bleu"])')
        echo "val beam 5 alpha $alpha: cased BLEU $bleu"
        if python3 -c "import sys; sys.exit(0 if $bleu > $best_bleu else 1)"; then best_alpha=$alpha best_bleu=$bleu; fi
    done
    zcat "$data/test_2016_flickr.$src.gz" > "$work/test.$src"
    zcat "$data/test_2016_flickr.$tgt.gz" > "$work/test.$tgt"
    "$bin" translate -m "$out" --input "$work/test.$src" --output "$out/test_2016_flickr.hyp.$tgt" --beam 5 --alpha "$best_alpha" 2>/dev/null
    echo "test_2016_flickr, beam 5, alpha $best_alpha (chosen on val):"
    "$bin" score --ref "$work/test.$tgt" --hyp "$out/test_2016_flickr.hyp.$tgt"
    "$bin" score --ref "$work/test.$tgt" --hyp "$out/test_2016_flickr.hyp.$tgt" -lc -m bleu
} | tee "$summary"
