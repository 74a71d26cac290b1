#!/usr/bin/env bash
# Fetches Multi30k task 1 (train, val, test_2016_flickr in en de fr cs, gzip) from its public
# repository into a directory, checks every file, and prints the line counts:
#
#     tools/fetch_multi30k.sh DIR [BASE_URL]
#
# BASE_URL defaults to https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw
# (Elliott et al., 2016); a mirror or a local copy (file:///path) works the same. A file that is
# not gzip, or a split whose languages have different line counts, is an error naming it;
# nothing half-written is left under its final name. Then train with
#     transduce train --src DIR/train.fr.gz --tgt DIR/train.en.gz \
#         --valid-src DIR/val.fr.gz --valid-tgt DIR/val.en.gz --out models/fren
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 DIR [BASE_URL]" >&2
    exit 2
fi
out=$1
base=${2:-https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw}
mkdir -p "$out"

for split in train val test_2016_flickr; do
    counts=""
    for lang in en de fr cs; do
        name="$split.$lang.gz"
        tmp="$out/.$name.partial"
        if ! curl --fail --silent --show-error --location --retry 3 --output "$tmp" "$base/$name"; then
            rm -f "$tmp"
            echo "error: could not fetch $base/$name" >&2
            exit 1
        fi
        if ! gzip --test "$tmp" 2>/dev/null; then
            rm -f "$tmp"
            echo "error: $base/$name is not a gzip file" >&2
            exit 1
        fi
        lines=$(gzip --decompress --stdout "$tmp" | wc -l)
        mv "$tmp" "$out/$name"
        counts="$counts $lang=$lines"
        first=${first_count:-$lines}
        first_count=$first
        if [ "$lines" != "$first" ]; then
            echo "error: $split: $name has $lines lines, the first language $first" >&2
            exit 1
        fi
    done
    unset first_count
    echo "$split:$counts"
done
echo "Multi30k task 1 is in $out"
