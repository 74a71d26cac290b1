"""Corpus BLEU and chrF2, identical to sacrebleu 2.x (``corpus_bleu`` / ``corpus_chrf`` with
their defaults), computed in Rust.

    >>> from transduce import score
    >>> score.bleu(["The cat sat on the mat."], [["The cat sat on the mat."]]).score
    100.0

``references`` is a list of reference streams, each as long as the hypotheses (sacrebleu's
shape); one list of str is one stream.
"""

from ._native import BleuScore, ChrfScore, bleu, chrf

__all__ = ["BleuScore", "ChrfScore", "bleu", "chrf"]
