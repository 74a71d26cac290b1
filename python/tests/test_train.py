"""transduce.train with TrainConfig (the command line's options), progress through logging and
a callback, Ctrl-C that saves and returns, resume; import_hf / export_hf / quantize."""

import json
import logging
import random
import signal
import subprocess
import sys
import textwrap

import pytest

import transduce
from conftest import SENTENCES, run_cli, write_lines

SRC = "le chat chien mange voit une pomme maison grand petit rouge".split()
TGT = "the cat dog eats sees an apple house big small red".split()


def word_for_word(tmp_path, n=200, seed=1):
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        idx = [rng.randrange(len(SRC)) for _ in range(rng.randint(2, 6))]
        pairs.append((" ".join(SRC[i] for i in idx), " ".join(TGT[i] for i in idx)))
    src = write_lines(tmp_path / "train.fr", [s for s, _ in pairs])
    tgt = write_lines(tmp_path / "train.en", [t for _, t in pairs])
    return src, tgt


def small(tmp_path, **options):
    src, tgt = word_for_word(tmp_path)
    defaults = dict(preset="tiny", vocab_size=30, max_tokens=100, warmup=2, log_every=1, valid_every=4)
    return transduce.TrainConfig(tmp_path / "model", (src, tgt), (src, tgt), **{**defaults, **options})


def test_train_config_mirrors_the_command_line(tmp_path):
    cfg = small(tmp_path, layers=2, d_model=32, norm="post", max_len=40, max_time="1h30m", src_lang="fr",
                tgt_lang="en", vocab_sharing="per-side", adam={"beta2": 0.98}, max_updates=3)
    d = cfg.to_dict()
    assert d["model"]["encoder_layers"] == d["model"]["decoder_layers"] == 2
    assert d["model"]["d_model"] == 32 and d["model"]["norm_placement"] == "post"
    assert d["filter"]["max_len"] == 40 and d["max_time_s"] == 5400
    assert d["languages"] == {"source": "fr", "target": "en"} and d["vocab_sharing"] == "per_side"
    assert d["adam"]["beta2"] == 0.98 and d["max_updates"] == 3
    assert str(cfg.out).endswith("model")
    toml = tmp_path / "train.toml"
    toml.write_text("lr = 0.002\n[model]\nheads = 2\n")
    from_file = transduce.TrainConfig(tmp_path / "m", tmp_path / "corpus.tsv", config=toml, lr=0.001)
    assert from_file.to_dict()["lr"] == 0.001, "keywords win over the file"
    assert from_file.to_dict()["model"]["heads"] == 2 and from_file.to_dict()["train"] == {"tsv": str(tmp_path / "corpus.tsv")}


def test_train_chooses_the_dropout_by_the_passes_its_budget_allows(tmp_path):
    cfg = small(tmp_path, preset="small", d_model=16, layers=1, max_updates=2, valid_every=0)
    p = transduce.train(cfg)["projection"]
    assert p["dropout"] == pytest.approx(0.1) and p["updates"] == 2 and p["epochs"] <= 1.0, p
    assert p["batches_per_epoch"]["whole_corpus"] is False, "two updates need only a few batches counted"


def test_train_config_errors(tmp_path):
    with pytest.raises(transduce.InputError, match="unknown field `max_updatez`"):
        transduce.TrainConfig(tmp_path / "m", tmp_path / "c.tsv", max_updatez=3)
    with pytest.raises(transduce.OptionError) as e:
        transduce.TrainConfig(tmp_path / "m", tmp_path / "c.tsv", update_freq=0)
    assert e.value.option == "update_freq"
    with pytest.raises(transduce.InputError, match="duration"):
        transduce.TrainConfig(tmp_path / "m", tmp_path / "c.tsv", max_time="2 weeks")
    with pytest.raises(TypeError, match="train"):
        transduce.TrainConfig(tmp_path / "m", 42)


def test_train_logs_calls_back_resumes_and_translates(tmp_path, caplog, cli):
    cfg = small(tmp_path, max_updates=6)
    seen = []
    with caplog.at_level(logging.INFO, logger="transduce.train"):
        summary = transduce.train(cfg, callback=seen.append)
    assert summary["stop"] == "max_updates" and summary["state"]["updates"] == 6
    assert [s["update"] for s in seen] == [1, 2, 3, 4, 5, 6]
    assert all(s["loss"] > 0 and s["tokens"] > 0 and s["lr"] > 0 for s in seen)
    assert summary["losses"][-1][1] < summary["losses"][0][1] * 1.5
    assert any("update 6" in r.getMessage() for r in caplog.records)
    assert summary["last_validation"] is not None
    assert summary["projection"] is None, "the tiny preset has no dropout to choose"
    more = transduce.train(small(tmp_path, max_updates=8), resume=True)
    assert more["state"]["updates"] == 8
    # the model it wrote translates like the command line
    model = tmp_path / "model"
    t = transduce.Translator(model, threads=1)
    expected = run_cli(cli, "translate", "-m", str(model), "--beam", "4", stdin="le chat mange une pomme\n")
    assert t.translate(["le chat mange une pomme"])[0].text + "\n" == expected


def test_a_callback_exception_stops_with_a_checkpoint(tmp_path):
    cfg = small(tmp_path, max_updates=50)

    def stop(progress):
        if progress["update"] == 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        transduce.train(cfg, callback=stop)
    checkpoints = sorted((tmp_path / "model" / "checkpoints").iterdir())
    assert checkpoints and checkpoints[-1].name == "update-000000003"


def test_ctrl_c_saves_and_returns(tmp_path):
    src, tgt = word_for_word(tmp_path)
    script = textwrap.dedent(f"""
        import json, os, signal, transduce
        # Python's own Ctrl-C handler even where the parent ignores SIGINT (a background job's child)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cfg = transduce.TrainConfig({str(tmp_path / 'model')!r}, ({str(src)!r}, {str(tgt)!r}), preset="tiny",
                                    vocab_size=30, max_tokens=100, warmup=2, max_updates=100000)
        def progress(p):
            if p["update"] == 2:
                os.kill(os.getpid(), signal.SIGINT)
        summary = transduce.train(cfg, callback=progress)
        print(json.dumps(summary))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["stop"] == "signal" and summary["state"]["updates"] <= 3
    assert "interrupted: checkpoint saved" in done.stderr
    assert list((tmp_path / "model" / "checkpoints").iterdir())


def test_import_export_quantize(tiny, tmp_path, cli):
    imported = transduce.import_hf(tiny, tmp_path / "native")
    assert imported["parameters"] > 0 and "source.spm" in imported["files"]
    hf = transduce.Translator(tiny, threads=1).translate(SENTENCES)
    native = transduce.Translator(tmp_path / "native", threads=1).translate(SENTENCES)
    assert [r.text for r in native] == [r.text for r in hf]
    exported = transduce.export_hf(tmp_path / "native", tmp_path / "hf")
    assert isinstance(exported["notes"], list)
    again = transduce.Translator(tmp_path / "hf", threads=1).translate(SENTENCES)
    assert [r.text for r in again] == [r.text for r in hf]
    q = transduce.quantize(tmp_path / "native", tmp_path / "int8")
    assert q["quantized"] > 0 and q["bytes_after"] < q["bytes_before"]
    int8 = transduce.Translator(tmp_path / "int8", threads=1).translate(SENTENCES)
    expected = run_cli(cli, "translate", "-m", str(tmp_path / "int8"), "--beam", "4", stdin="".join(s + "\n" for s in SENTENCES))
    assert "".join(r.text + "\n" for r in int8) == expected
    with pytest.raises(transduce.FileError):
        transduce.import_hf(tmp_path / "absent", tmp_path / "x")
