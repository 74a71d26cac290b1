"""Translator.translate and translate_file give what `transduce translate` gives, with typed
results: text, tokens, score, token scores, alignment, n-best."""

import json

import pytest

import transduce
from conftest import SENTENCES, run_cli, write_lines


@pytest.fixture(scope="module")
def translator(tiny):
    return transduce.Translator(tiny, threads=2)


def cli_jsonl(cli, model, lines, *flags):
    out = run_cli(cli, "translate", "-m", str(model), "--format", "jsonl", *flags, stdin="".join(l + "\n" for l in lines))
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize(
    "options,flags",
    [
        (dict(beam=4), ["--beam", "4"]),
        (dict(search="greedy"), ["--search", "greedy"]),
        (dict(beam=3, length_penalty="power", alpha=1.0, beam_rule="hugging-face"),
         ["--beam", "3", "--length-penalty", "power", "--alpha", "1", "--beam-rule", "hugging-face"]),
        (dict(beam=3, length_penalty=1.0, beam_rule="ctranslate2"),
         ["--beam", "3", "--length-penalty", "power", "--alpha", "1", "--beam-rule", "ctranslate2"]),
        (dict(search="sample", seed=7, top_k=5), ["--search", "sample", "--seed", "7", "--top-k", "5"]),
        (dict(beam=4, max_len=5, no_repeat_ngram=2), ["--beam", "4", "--max-len", "5", "--no-repeat-ngram", "2"]),
    ],
)
def test_translate_equals_the_command_line(translator, cli, tiny, options, flags):
    results = translator.translate(SENTENCES, return_scores=True, **options)
    expected = cli_jsonl(cli, tiny, SENTENCES, "--token-scores", *flags)
    assert [r.text for r in results] == [e["text"] for e in expected]
    assert [r.tokens for r in results] == [e["tokens"] for e in expected]
    for r, e in zip(results, expected):
        assert r.score == pytest.approx(e["score"], abs=1e-5)
        assert r.token_scores == pytest.approx(e["token_scores"], abs=1e-5)


def test_results_are_typed(translator, tiny, cli):
    results = translator.translate(SENTENCES[:2], beam=4, n_best=3, return_alignments=True)
    assert all(isinstance(r, transduce.Translation) for r in results)
    first = results[0]
    assert len(first.n_best) == 3 and all(isinstance(o, transduce.Output) for o in first.n_best)
    assert first.text == first.n_best[0].text == str(first)
    assert first.n_best[0].score >= first.n_best[1].score >= first.n_best[2].score
    assert first.token_scores is None, "token scores only when asked for"
    assert first.alignment and all(isinstance(link, tuple) and len(link) == 2 for link in first.alignment)
    assert not first.truncated
    d = first.to_dict()
    assert d["text"] == first.text and len(d["n_best"]) == 3 and d["alignment"] == first.alignment
    expected = cli_jsonl(cli, tiny, SENTENCES[:2], "--beam", "4", "--n-best", "3", "--alignments")
    assert [[o.text for o in r.n_best] for r in results] == [[o["text"] for o in e["n_best"]] for e in expected]
    assert [r.alignment for r in results] == [[tuple(map(int, l.split("-"))) for l in e["alignment"].split()] for e in expected]


def test_scores_omitted(translator, cli, tiny, tmp_path):
    # greedy search then picks each token without normalising over the vocabulary: the same tokens
    for options in (dict(search="greedy"), dict(beam=4)):
        scored = translator.translate(SENTENCES, **options)
        unscored = translator.translate(SENTENCES, scores="omit", **options)
        assert [r.tokens for r in unscored] == [r.tokens for r in scored]
        assert all(isinstance(r.score, float) for r in scored)
        assert all(r.score is None and "score" not in r.to_dict() for r in unscored)
    assert "score=None" in repr(unscored[0]) and "score=None" in repr(unscored[0].n_best[0])
    with pytest.raises(transduce.OptionError, match="per-token scores need the scores") as e:
        translator.translate(SENTENCES, scores="omit", return_scores=True)
    assert e.value.option == "scores"
    with pytest.raises(transduce.OptionError) as e:
        translator.translate(SENTENCES, scores="none")
    assert e.value.option == "scores"

    source = write_lines(tmp_path / "in.txt", SENTENCES)
    target = tmp_path / "out.jsonl"
    translator.translate_file(source, target, format="jsonl", scores="omit", search="greedy")
    flags = ["--format", "jsonl", "--scores", "omit", "--search", "greedy"]
    assert target.read_text(encoding="utf-8") == run_cli(cli, "translate", "-m", str(tiny), "--input", str(source), *flags)
    with pytest.raises(transduce.OptionError, match="an n-best list writes scores"):
        translator.translate_file(source, tmp_path / "out.nbest", format="nbest", scores="omit")


def test_blank_and_empty_inputs(translator):
    assert translator.translate([]) == []
    (blank,) = translator.translate(["   "])
    assert blank.text == "" and blank.tokens == []


def test_prefixes(translator):
    results = translator.translate(SENTENCES[:2], prefix="Une")
    assert all(r.text.startswith("Une") for r in results)
    mixed = translator.translate(SENTENCES[:2], prefix=["Deux", None])
    assert mixed[0].text.startswith("Deux")
    assert mixed[1].text == translator.translate(SENTENCES[1:2])[0].text
    with pytest.raises(transduce.OptionError, match="2 prefixes for 3 inputs") as e:
        translator.translate(SENTENCES[:3], prefix=["a", "b"])
    assert e.value.option == "prefix"


def test_int8_is_close(tiny):
    f32 = transduce.Translator(tiny, threads=1)
    int8 = transduce.Translator(tiny, quantization="int8", threads=1)
    a, b = f32.translate(SENTENCES, search="greedy"), int8.translate(SENTENCES, search="greedy")
    assert sum(x.text == y.text for x, y in zip(a, b)) >= len(SENTENCES) - 2


def test_translator_properties(translator, tiny):
    assert str(translator.path) == str(tiny)
    assert translator.languages == ("fr", "en")
    assert translator.config["d_model"] > 0
    assert "Translator(" in repr(translator)


@pytest.mark.parametrize("fmt,flags", [("text", []), ("jsonl", ["--token-scores"]), ("nbest", ["--n-best", "2"]), ("pharaoh", [])])
def test_translate_file_equals_the_command_line(translator, cli, tiny, tmp_path, fmt, flags):
    source = write_lines(tmp_path / "in.txt", SENTENCES * 3)
    target = tmp_path / f"out.{fmt}"
    options = dict(n_best=2) if fmt == "nbest" else {}
    seen = []
    report = translator.translate_file(
        source, target, format=fmt, return_scores=fmt == "jsonl", window=4, progress=seen.append, **options
    )
    expected = run_cli(cli, "translate", "-m", str(tiny), "--input", str(source), "--format", fmt, "--beam", "4", *flags)
    assert target.read_text(encoding="utf-8") == expected
    assert report["lines"] == len(SENTENCES) * 3 and report["truncated"] == []
    assert seen == [4, 8, 12, 16, 18], "progress after each window"


def test_translate_file_gzip_and_prefix_file(translator, cli, tiny, tmp_path):
    import gzip

    source = tmp_path / "in.txt.gz"
    source.write_bytes(gzip.compress("".join(s + "\n" for s in SENTENCES).encode()))
    prefixes = write_lines(tmp_path / "prefixes.txt", ["Une", "", "", "Le", "", "Des"])
    target = tmp_path / "out.txt"
    translator.translate_file(source, target, prefix_file=prefixes)
    expected = run_cli(cli, "translate", "-m", str(tiny), "--input", str(source), "--prefix-file", str(prefixes), "--beam", "4")
    assert target.read_text(encoding="utf-8") == expected


def test_a_progress_exception_stops_the_file(translator, tmp_path):
    source = write_lines(tmp_path / "in.txt", SENTENCES * 4)

    def stop(done):
        raise RuntimeError(f"enough at {done}")

    with pytest.raises(RuntimeError, match="enough at 5"):
        translator.translate_file(source, tmp_path / "out.txt", window=5, progress=stop)
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 5


def test_an_ensemble_equals_the_command_line(cli, tiny):
    ensemble = transduce.Translator(tiny, threads=2, ensemble=[tiny], ensemble_mode="log-linear")
    results = ensemble.translate(SENTENCES, return_scores=True, beam=4)
    expected = cli_jsonl(cli, tiny, SENTENCES, "-m", str(tiny), "--ensemble-mode", "log-linear", "--beam", "4")
    assert [r.text for r in results] == [e["text"] for e in expected]
    assert [r.tokens for r in results] == [e["tokens"] for e in expected]
    for r, e in zip(results, expected):
        assert r.score == pytest.approx(e["score"], abs=1e-4)
    # a model beside itself is that model
    alone = transduce.Translator(tiny, threads=2).translate(SENTENCES, return_scores=True, beam=4)
    assert [r.text for r in alone] == [r.text for r in results]
    for a, r in zip(alone, results):
        assert a.score == pytest.approx(r.score, abs=1e-4)


def test_an_ensemble_refuses_another_vocabulary_and_an_unknown_mode(tiny):
    other = tiny.parents[1] / "hf_m2m100" / "m2m100"
    with pytest.raises(transduce.InputError, match="cannot decode in an ensemble"):
        transduce.Translator(tiny, ensemble=[other])
    with pytest.raises(transduce.OptionError, match="ensemble_mode"):
        transduce.Translator(tiny, ensemble=[tiny], ensemble_mode="average")
