"""Multilingual models (M2M-100, NLLB-200, MADLAD-400): translate and translate_file take
source_lang and target_lang in the family's codes (MADLAD: target_lang alone) and give what
`transduce translate --source-lang/--target-lang` gives; missing or unknown codes are
OptionErrors naming the keyword."""

import pytest

import transduce
from conftest import REPO, run_cli, write_lines

FIXTURES = REPO / "tests" / "fixtures" / "hf_m2m100"
LINES = ["Un homme regarde le chat noir.", "", "Où est la gare ?", "Deux enfants jouent dans le parc avec un chien."]


@pytest.mark.parametrize("family,source,target,count", [("nllb", "fra_Latn", "deu_Latn", 202), ("m2m100", "fr", "en", 100)])
def test_translate_equals_the_command_line(cli, tmp_path, family, source, target, count):
    model = FIXTURES / family
    translator = transduce.Translator(model, threads=2)
    assert len(translator.language_codes) == count and source in translator.language_codes
    results = translator.translate(LINES, source_lang=source, target_lang=target, beam=4)
    expected = run_cli(cli, "translate", "-m", str(model), "--source-lang", source, "--target-lang", target,
                       "--beam", "4", stdin="".join(l + "\n" for l in LINES)).splitlines()
    assert [r.text for r in results] == expected
    assert results[1].text == ""
    src = write_lines(tmp_path / "in.txt", LINES)
    translator.translate_file(src, tmp_path / "out.txt", source_lang=source, target_lang=target, beam=4)
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines() == expected


def test_languages_are_required_and_named():
    translator = transduce.Translator(FIXTURES / "nllb")
    with pytest.raises(transduce.OptionError) as e:
        translator.translate(["Bonjour"])
    assert e.value.option == "target_lang"
    with pytest.raises(transduce.OptionError) as e:
        translator.translate(["Bonjour"], source_lang="fra_Latn", target_lang="klingon")
    assert e.value.option == "target_lang" and "klingon" in str(e.value)
    with pytest.raises(transduce.OptionError) as e:
        translator.translate(["Bonjour"], source_lang="fra_Latn")
    assert e.value.option == "target_lang"
    with pytest.raises(transduce.OptionError) as e:
        translator.translate(["Bonjour"], target_lang="deu_Latn")
    assert e.value.option == "source_lang"
    marian = transduce.Translator(REPO / "tests" / "fixtures" / "hf_marian" / "tiny")
    assert marian.language_codes is None


def test_madlad_takes_the_target_language_alone(cli):
    model = REPO / "tests" / "fixtures" / "hf_t5" / "madlad"
    translator = transduce.Translator(model, threads=2)
    assert translator.language_codes == ["en", "de", "fr"]
    results = translator.translate(LINES, target_lang="de", beam=4)
    expected = run_cli(cli, "translate", "-m", str(model), "--target-lang", "de", "--beam", "4",
                       stdin="".join(l + "\n" for l in LINES)).splitlines()
    assert [r.text for r in results] == expected
