"""transduce.score.bleu / chrf equal sacrebleu's corpus_bleu / corpus_chrf."""

import random

import pytest
import sacrebleu

import transduce
from transduce import score

WORDS = "the a cat dog sat on mat , . ! running runs ran Über naïve 42 3.5 don't co-operate (yes) «quoted»".split()


def corpus(seed, n=60):
    rng = random.Random(seed)
    line = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 18)))
    return [line() for _ in range(n)], [[line() for _ in range(n)] for _ in range(2)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("lowercase", [False, True])
def test_bleu_equals_sacrebleu(seed, lowercase):
    hyps, refs = corpus(seed)
    for streams in (refs[:1], refs):
        ours = score.bleu(hyps, streams, lowercase=lowercase)
        theirs = sacrebleu.corpus_bleu(hyps, streams, lowercase=lowercase)
        assert ours.score == pytest.approx(theirs.score, abs=1e-9)
        assert ours.counts == theirs.counts and ours.totals == theirs.totals
        assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
        assert ours.bp == pytest.approx(theirs.bp, abs=1e-12)
        assert ours.precisions == pytest.approx(theirs.precisions, abs=1e-9)
        assert str(ours) == theirs.format()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chrf_equals_sacrebleu(seed):
    hyps, refs = corpus(seed)
    for streams in (refs[:1], refs):
        ours = score.chrf(hyps, streams)
        theirs = sacrebleu.corpus_chrf(hyps, streams)
        assert ours.score == pytest.approx(theirs.score, abs=1e-9)
        assert str(ours) == theirs.format()


def test_one_stream_and_errors():
    assert transduce.bleu(["a cat sat on the mat"], ["a cat sat on the mat"]).score == pytest.approx(100.0)
    assert float(transduce.chrf(["abc"], [["abc"]])) == pytest.approx(100.0)
    with pytest.raises(transduce.InputError, match="reference stream 0 has 1 lines but there are 2 hypotheses"):
        transduce.bleu(["a", "b"], [["a"]])
    with pytest.raises(TypeError, match="reference streams"):
        transduce.bleu(["a"], 3)
