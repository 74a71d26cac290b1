"""Bad options and input raise ValueError / OSError subclasses with the library's message,
naming the option, file or line; wrong types and unknown keywords raise TypeError."""

import pytest

import transduce
from conftest import write_lines


@pytest.fixture(scope="module")
def translator(tiny):
    return transduce.Translator(tiny, threads=1)


@pytest.mark.parametrize(
    "options,option,message",
    [
        (dict(beam=2, n_best=3), "n_best", "3 is not in 1..=2 (the beam)"),
        (dict(beam=0), "beam", "must be at least 1"),
        (dict(search="sample", top_p=2.0), "top_p", "2 is not in (0, 1]"),
        (dict(search="sample", temperature=0.0), "temperature", "not a positive number"),
        (dict(max_len=0), "max_len", "must be at least 1"),
        (dict(min_len=9, max_len=3), "min_len", "above max_len 3"),
        (dict(search="bem"), "search", "unknown search `bem`: expected one of beam, greedy, sample"),
        (dict(length_penalty="gnm"), "length_penalty", "expected one of gnmt, average, power, none"),
        (dict(max_tokens=0), "max_tokens", "must be at least 1"),
        (dict(length_penalty=1.0, alpha=0.6), "length_penalty", "give `alpha` with a penalty's name"),
    ],
)
def test_options_are_checked_by_the_library(translator, options, option, message):
    with pytest.raises(transduce.OptionError) as e:
        translator.translate(["Une femme."], **options)
    assert isinstance(e.value, ValueError)
    assert e.value.option == option
    assert message in str(e.value) and f"option `{option}`" in str(e.value)


def test_alignment_layer_out_of_range(translator):
    with pytest.raises(ValueError, match="layer"):
        translator.translate(["Une femme."], return_alignments=True, alignment_layer=99)


def test_types_and_unknown_keywords(translator):
    with pytest.raises(TypeError, match="unexpected keyword argument 'bem'"):
        translator.translate(["x"], bem=2)
    with pytest.raises(TypeError, match="option `beam`: expected an int"):
        translator.translate(["x"], beam="4")
    with pytest.raises(TypeError):
        translator.translate("a sentence, not a list")
    with pytest.raises(TypeError, match="prefix"):
        translator.translate(["x"], prefix=3)


def test_missing_and_broken_models(tmp_path):
    with pytest.raises(transduce.FileError) as e:
        transduce.Translator(tmp_path / "absent")
    assert isinstance(e.value, OSError) and e.value.errno == 2
    assert e.value.filename.endswith("absent") and "not a model directory" in str(e.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(transduce.ModelError, match="config.json: invalid JSON"):
        transduce.Translator(broken)
    with pytest.raises(transduce.OptionError, match="quantization"):
        transduce.Translator(tmp_path, quantization="int4")
    with pytest.raises(transduce.OptionError, match="threads"):
        transduce.Translator(tmp_path, threads=0)


def test_file_errors_name_the_file_and_line(translator, tmp_path):
    with pytest.raises(transduce.FileError) as e:
        translator.translate_file(tmp_path / "nope.txt", tmp_path / "out.txt")
    assert e.value.errno == 2 and "nope.txt" in str(e.value)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\nbad \xff here\n")
    with pytest.raises(transduce.InputError, match=r"bad.txt: line 2: invalid UTF-8"):
        translator.translate_file(bad, tmp_path / "out.txt")
    source = write_lines(tmp_path / "in.txt", ["a", "b", "c"])
    prefixes = write_lines(tmp_path / "p.txt", ["a"])
    with pytest.raises(transduce.InputError, match="p.txt: fewer lines than"):
        translator.translate_file(source, tmp_path / "out.txt", prefix_file=prefixes)
    with pytest.raises(transduce.OptionError, match="unknown output format `xml`"):
        translator.translate_file(source, tmp_path / "out.txt", format="xml")
    with pytest.raises(transduce.OptionError, match="window"):
        translator.translate_file(source, tmp_path / "out.txt", window=0)
    with pytest.raises(transduce.FileError):
        translator.translate_file(source, tmp_path / "no" / "such" / "dir" / "out.txt")
