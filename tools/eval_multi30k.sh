#!/usr/bin/env bash
# Evaluates a model directory on Multi30k test_2016_flickr: beam-5 translation, BLEU/chrF from
# `transduce score` and (when installed: pip install -r tools/requirements.txt) from sacrebleu on
# the same files, and decoding speed at batch 1 and at the default token budget.
# Usage: tools/eval_multi30k.sh MODEL_DIR SRC_LANG TGT_LANG [extra translate options]
set -euo pipefail
model=$1 src=$2 tgt=$3
shift 3
data=${TRANSDUCE_DATA:-$(dirname "$0")/../../shared/data/multi30k}
bin=${TRANSDUCE_BIN:-$(dirname "$0")/../target/release/transduce}
out=$(mktemp -d)
zcat "$data/test_2016_flickr.$src.gz" > "$out/test.$src"
zcat "$data/test_2016_flickr.$tgt.gz" > "$out/ref.$tgt"
echo "== beam 5, default token budget"
"$bin" translate -m "$model" --input "$out/test.$src" --output "$out/hyp.$tgt" --beam 5 "$@"
echo "== batch 1"
"$bin" translate -m "$model" --input "$out/test.$src" --output "$out/hyp1.$tgt" --beam 5 --max-tokens 1 "$@"
cmp -s "$out/hyp.$tgt" "$out/hyp1.$tgt" && echo "batch 1 output identical to batched output" || echo "batch 1 output DIFFERS"
echo "== transduce score (cased, then -lc)"
"$bin" score --ref "$out/ref.$tgt" --hyp "$out/hyp.$tgt"
"$bin" score --ref "$out/ref.$tgt" --hyp "$out/hyp.$tgt" -lc
if command -v sacrebleu >/dev/null 2>&1; then
    echo "== sacrebleu (cased, then -lc)"
    sacrebleu "$out/ref.$tgt" -i "$out/hyp.$tgt" -m bleu chrf -b -w 2
    sacrebleu "$out/ref.$tgt" -i "$out/hyp.$tgt" -m bleu -lc -b -w 2
fi
echo "outputs in $out"
