#!/usr/bin/env bash
# Exports a transduce model (trained with --arch marian) to Hugging Face Marian and translates
# Multi30k test_2016_flickr with transduce, transformers and CTranslate2 (greedy, and beam 4 with
# each system's own beam rule, which transduce reproduces with --beam-rule): BLEU of each and how
# many lines equal transduce's.
# Usage: tools/export_check_multi30k.sh MODEL_DIR SRC_LANG TGT_LANG
# Needs a Python with tools/requirements-hf.txt (TRANSDUCE_PYTHON, default .venv-hf/bin/python).
set -euo pipefail
model=$1 src=$2 tgt=$3
root=$(cd "$(dirname "$0")/.." && pwd)
data=${TRANSDUCE_DATA:-$root/../shared/data/multi30k}
bin=${TRANSDUCE_BIN:-$root/target/release/transduce}
python=${TRANSDUCE_PYTHON:-$root/.venv-hf/bin/python}
out=$(mktemp -d)
zcat "$data/test_2016_flickr.$src.gz" > "$out/test.$src"
zcat "$data/test_2016_flickr.$tgt.gz" > "$out/ref.$tgt"
"$bin" export hf-marian -m "$model" --out "$out/hf"
# the same length limit everywhere: 64 new tokens, EOS included
common=(--max-len 63 --max-len-ratio 0)
"$bin" translate -m "$model" --input "$out/test.$src" --output "$out/transduce.greedy" --search greedy "${common[@]}"
"$bin" translate -m "$model" --input "$out/test.$src" --output "$out/transduce.beam" --beam 4 \
    --length-penalty power --alpha 1 --beam-rule hugging-face "${common[@]}"
"$bin" translate -m "$model" --input "$out/test.$src" --output "$out/transduce.beam-exact" --beam 4 \
    --length-penalty power --alpha 1 --beam-rule exact "${common[@]}"
# CTranslate2's max_decoding_length counts no EOS, its min_decoding_length is 1
ct2=(--max-len 64 --max-len-ratio 0 --min-len 1)
"$bin" translate -m "$model" --input "$out/test.$src" --output "$out/transduce.greedy-ct2" --search greedy "${ct2[@]}"
"$bin" translate -m "$model" --input "$out/test.$src" --output "$out/transduce.beam-ct2" --beam 4 \
    --length-penalty power --alpha 1 --beam-rule ctranslate2 "${ct2[@]}"
"$bin" translate -m "$out/hf" --input "$out/test.$src" --output "$out/transduce-from-export.beam" --beam 4 \
    --length-penalty power --alpha 1 --beam-rule hugging-face "${common[@]}"
/usr/bin/time -f "peers: %e s wall, %M KB peak" "$python" "$root/tools/hf_parity.py" --model "$out/hf" \
    --input "$out/test.$src" --out "$out/peers.json" --beam 4 --max-new-tokens 64
"$python" - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
peers = json.load(open(f"{out}/peers.json"))
for system in peers:
    for search, lines in peers[system].items():
        open(f"{out}/{system}.{search}", "w").write("\n".join(lines) + "\n")
EOF
printf "%-28s %8s %8s %8s  %s\n" system "BLEU" "BLEU-lc" "chrF" "lines equal to transduce"
for f in transduce.greedy hf.greedy transduce.greedy-ct2 ct2.greedy transduce.beam transduce-from-export.beam hf.beam \
    transduce.beam-exact transduce.beam-ct2 ct2.beam; do
    case $f in
        ct2.greedy) ref_sys=transduce.greedy-ct2 ;;
        *greedy*) ref_sys=transduce.greedy ;;
        ct2.beam) ref_sys=transduce.beam-ct2 ;;
        *) ref_sys=transduce.beam ;;
    esac
    bleu=$("$bin" score --ref "$out/ref.$tgt" --hyp "$out/$f" --metrics bleu | awk '{print $3}')
    lc=$("$bin" score --ref "$out/ref.$tgt" --hyp "$out/$f" --metrics bleu -lc | awk '{print $3}')
    chrf=$("$bin" score --ref "$out/ref.$tgt" --hyp "$out/$f" --metrics chrf | awk '{print $3}')
    same=$(paste -d '\t' "$out/$f" "$out/$ref_sys" | awk -F '\t' '$1 == $2' | wc -l)
    printf "%-28s %8s %8s %8s  %s/%s (vs %s)\n" "$f" "$bleu" "$lc" "$chrf" "$same" "$(wc -l < "$out/$f")" "$ref_sys"
done
echo "outputs in $out"
