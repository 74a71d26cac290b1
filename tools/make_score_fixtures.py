#!/usr/bin/env python3
"""Writes tests/fixtures/score/: hypotheses, two reference streams, and what sacrebleu 2.x says
about them (13a tokenization per line, per-segment statistics, corpus BLEU/chrF cased and
lowercased, with one and two references). tests/score.rs asserts transduce gives the same.

    python3 -m venv .venv-tools && .venv-tools/bin/pip install -r tools/requirements.txt
    .venv-tools/bin/python tools/make_score_fixtures.py
"""
import json
import random
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "score"

HAND = [
    # (hypothesis, reference 1, reference 2)
    ("The cat sat on the mat.", "The cat sat on the mat.", "A cat was sitting on the mat."),
    ("a dog runs in the park", "A dog is running in the park .", "The dog runs through the park."),
    ("", "An empty hypothesis still has a reference.", "Another reference."),
    ("Only hypothesis words here", "", "Second reference exists."),
    ("It costs $3.50, or 1,000-2,000 yen (approx.).", "It costs $3.50 (about 1,000–2,000 yen).", "Price: 3.50 dollars."),
    ("„Guten Tag“, sagte er — «bonjour» … ‘hi’!", "“Guten Tag”, sagte er – «bonjour»… 'hi'!", "Guten Tag, sagte er."),
    ("Tom &amp; Jerry &lt;3 &quot;cartoons&quot; &gt; all", "Tom & Jerry <3 \"cartoons\" > all", "Tom and Jerry"),
    ("Ein Mann fährt Fahrrad auf der Straße.", "Ein Mann fährt auf der Straße Fahrrad.", "Ein Radfahrer auf der Straße."),
    ("Un homme en T-shirt bleu joue au football.", "Un homme en t-shirt bleu joue au foot.", "Un homme joue au football."),
    ("2 children, 3 dogs and 10.5 kg of apples", "Two children, three dogs and 10.5kg of apples", "2 kids, 3 dogs, 10.5 kg apples"),
    ("Trailing spaces   ", "Trailing spaces", "trailing   spaces"),
    ("UPPER lower MiXeD Case", "upper LOWER mixed case", "Upper Lower Mixed Case"),
    ("Ελληνικά ΚΕΦΑΛΑΙΑ και σίγμα ΟΔΟΣ", "ελληνικά κεφαλαία και σίγμα οδός", "Ελληνικά"),
    ("x", "x", "y"),
    ("a b c d e f g h", "a b c d e f g h", "h g f e d c b a"),
    ("e-mail: someone@example.com / http://x.org?a=1&b=2", "email: someone@example.com / http://x.org", "mail"),
    ("Zwei Männer , die an einem Stand arbeiten .", "Zwei Männer arbeiten an einem Stand.", "Zwei Männer an einem Stand ."),
]

ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(".,.,--!?;:'\"()[]{}<>/\\$%&*+=@#^_`|~")
    + list("äöüßéèêçñøåÄÖÜÉ—–…„“”«»‘’·•€£¥°§¶")
    + ["&amp;", "&lt;", "&gt;", "&quot;", "<skipped>", "1,000", "3.5", "10-20", " ", " ", " ", "  ", "\t", "\u00a0", "\u2009"]
)


def random_line(rng):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))


def perturb(rng, words):
    words = list(words)
    for _ in range(rng.randint(0, 3)):
        op = rng.random()
        if op < 0.3 and words:
            words.pop(rng.randrange(len(words)))
        elif op < 0.6 and len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        else:
            words.insert(rng.randint(0, len(words)), rng.choice(["the", "a", ",", ".", "und", "le", "Kind"]))
    return " ".join(words)


def main():
    rng = random.Random(2026)
    hyps, refs1, refs2 = [list(x) for x in zip(*HAND)]
    for _ in range(150):
        ref = random_line(rng)
        hyps.append(perturb(rng, ref.split()) if rng.random() < 0.7 else random_line(rng))
        refs1.append(ref)
        refs2.append(perturb(rng, ref.split()))
    # sacrebleu's command line strips each line's trailing whitespace
    hyps, refs1, refs2 = ([l.rstrip() for l in s] for s in (hyps, refs1, refs2))
    OUT.mkdir(parents=True, exist_ok=True)
    for name, lines in (("hyp.txt", hyps), ("ref1.txt", refs1), ("ref2.txt", refs2)):
        (OUT / name).write_text("".join(l + "\n" for l in lines), encoding="utf-8")

    tok = Tokenizer13a()
    expected = {
        "sacrebleu": sacrebleu.__version__,
        "tokenized_13a": [tok(l) for l in hyps + refs1],
        "corpus": {},
        "segments": [],
    }
    for lc in (False, True):
        for nrefs in (1, 2):
            streams = [refs1, refs2][:nrefs]
            bleu = BLEU(lowercase=lc).corpus_score(hyps, streams)
            chrf = CHRF(lowercase=lc).corpus_score(hyps, streams)
            key = f"{'lc' if lc else 'cased'}_{nrefs}ref"
            expected["corpus"][key] = {
                "bleu": f"{bleu.score:.2f}",
                "bleu_line": str(bleu).split(" (BP")[0].split(" = ", 1)[1],
                "bp": f"{bleu.bp:.3f}",
                "sys_len": bleu.sys_len,
                "ref_len": bleu.ref_len,
                "chrf": f"{chrf.score:.2f}",
            }
    bleu, chrf = BLEU(), CHRF()
    for h, r1, r2 in zip(hyps, refs1, refs2):
        b = bleu._extract_corpus_statistics([h], [[r1], [r2]])[0]
        c = chrf._extract_corpus_statistics([h], [[r1], [r2]])[0]
        expected["segments"].append({"bleu": [int(x) for x in b], "chrf": [int(x) for x in c]})
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(hyps)} segments to {OUT}")


if __name__ == "__main__":
    main()
