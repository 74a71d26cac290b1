"""transduce.ray on a local Ray (2 CPUs): two actors translate a file in input order and write
exactly what `transduce translate` writes."""

import gzip
import json

import pytest

import ray  # required: python/requirements-test.txt installs it

import transduce
import transduce.ray as transduce_ray
from conftest import SENTENCES, run_cli, shared, write_lines


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_two_actors_equal_the_command_line(local_ray, tiny, cli, tmp_path):
    # empty lines, a carriage return and a form feed (str.splitlines would split there) stay lines
    lines = [s for s in SENTENCES] * 30 + ["deux\fhommes", "fin\r"]
    source = tmp_path / "in.txt.gz"
    source.write_bytes(gzip.compress("".join(l + "\n" for l in lines).encode()))
    target = tmp_path / "out.txt"
    report = transduce_ray.translate_file(source, target, tiny, actors=2, batch_size=16, beam=4)
    expected = run_cli(cli, "translate", "-m", str(tiny), "--input", str(source), "--beam", "4")
    assert report == {"lines": len(lines)}
    assert target.read_text(encoding="utf-8") == expected

    jsonl = tmp_path / "out.jsonl"
    transduce_ray.translate_file(source, jsonl, tiny, actors=2, batch_size=16, format="jsonl", beam=4)
    rows = [json.loads(l) for l in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == list(range(len(lines)))
    assert [r["source"] for r in rows] == [l.rstrip("\r") for l in lines]
    assert [r["text"] + "\n" for r in rows] == expected.splitlines(keepends=True)
    assert all(isinstance(r["score"], float) for r in rows)

    # text output asks for no scores (greedy search need not normalise); jsonl drops them when told
    transduce_ray.translate_file(source, target, tiny, actors=2, batch_size=16, search="greedy")
    greedy = run_cli(cli, "translate", "-m", str(tiny), "--input", str(source), "--search", "greedy")
    assert target.read_text(encoding="utf-8") == greedy
    transduce_ray.translate_file(source, jsonl, tiny, actors=2, batch_size=16, format="jsonl", search="greedy", scores="omit")
    rows = [json.loads(l) for l in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] + "\n" for r in rows] == greedy.splitlines(keepends=True)
    assert not any("score" in r for r in rows)


def test_dataset_pipeline(local_ray, tiny):
    import ray.data

    ds = ray.data.from_items([{"text": s, "n": i} for i, s in enumerate(SENTENCES)])
    out = transduce_ray.translate_dataset(ds, tiny, actors=1, batch_size=4, search="greedy").take_all()
    alone = transduce.Translator(tiny, threads=1).translate(SENTENCES, search="greedy")
    assert sorted((r["n"], r["translation"]) for r in out) == [(i, r.text) for i, r in enumerate(alone)]


def test_errors(local_ray, tiny, tmp_path):
    with pytest.raises(ValueError, match="unknown output format"):
        transduce_ray.translate_file(tmp_path / "x", tmp_path / "y", tiny, format="xml")


def test_multi30k_test_set(local_ray, cli, tmp_path):
    model = shared("models/marian-fren-s")
    source = shared("data/multi30k/test_2016_flickr.fr.gz")
    target = tmp_path / "test.en"
    transduce_ray.translate_file(source, target, model, actors=2, batch_size=32, beam=4)
    expected = run_cli(cli, "translate", "-m", str(model), "--input", str(source), "--beam", "4")
    assert target.read_text(encoding="utf-8") == expected

