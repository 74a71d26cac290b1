"""transduce.explain gives the explainer's data as a dict, explain_page its HTML page."""

import transduce


def test_explain_dict(tiny):
    t = transduce.Translator(tiny, threads=1)
    e = transduce.explain(t, "Une femme aime le chien.", top_k=3)
    greedy = t.translate(["Une femme aime le chien."], search="greedy")[0].text
    assert e["source"] == "Une femme aime le chien." and e["translation"] == greedy
    config = t.config
    layers, heads = config["encoder_layers"], config["heads"]
    s, n = len(e["source_tokens"]), len(e["target_tokens"])
    assert e["source_tokens"][-1] == "</s>" and e["target_tokens"][-1] == "</s>"
    assert len(e["encoder_attention"]) == layers and len(e["encoder_attention"][0]) == heads
    assert len(e["encoder_attention"][0][0]) == s and len(e["encoder_attention"][0][0][0]) == s
    assert len(e["cross_attention"][-1][0]) == n and len(e["cross_attention"][-1][0][0]) == s
    masked = e["decoder_self_attention"][0][0]
    assert all(masked[q][k] == 0 for q in range(n) for k in range(q + 1, n)), "masked: no step sees ahead"
    assert len(e["context_map"]) == s and all(len(p) == 2 for p in e["context_map"])
    assert len(e["steps"]) == n and all(len(step["candidates"]) == 3 for step in e["steps"])
    assert [step["chosen"] for step in e["steps"]] == e["target_tokens"]
    beam = transduce.explain(t, "Une femme aime le chien.", search="beam", beam=4)
    assert beam["translation"] == t.translate(["Une femme aime le chien."], beam=4)[0].text


def test_explain_page(tiny, tmp_path):
    t = transduce.Translator(tiny, threads=1)
    page = transduce.explain_page(t, ["Une femme aime le chien.", "Je t'aime ."], path=tmp_path / "x.html")
    assert page.startswith("<!DOCTYPE html>") and "Je t&#39;aime" in page or "Je t'aime" in page
    assert (tmp_path / "x.html").read_text(encoding="utf-8") == page
    assert (tmp_path / "x-2-context.svg").exists() and (tmp_path / "x-2-alignment.svg").exists()
