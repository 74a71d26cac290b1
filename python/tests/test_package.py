"""The package's surface: the stubs name exactly what the native module exports, and every
public class and function has a docstring."""

import ast
from pathlib import Path

import transduce
import transduce._native as native

STUBS = Path(__file__).resolve().parents[1] / "transduce" / "_native.pyi"


def test_stubs_cover_the_native_module():
    tree = ast.parse(STUBS.read_text(encoding="utf-8"))
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    exported = {name for name in dir(native) if not name.startswith("_")} | {"__version__"}
    # SearchOptions types the search keywords (**options) and exists only in the stubs
    assert exported == {n for n in stubbed if not n.startswith("_") or n == "__version__"} - {"SearchOptions"}
    assert set(transduce.__all__) == exported | {"score"}


def test_everything_public_has_a_docstring():
    for name in transduce.__all__:
        obj = getattr(transduce, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
    for method in ("translate", "translate_file", "to_dict"):
        owner = transduce.Translation if method == "to_dict" else transduce.Translator
        assert getattr(owner, method).__doc__, method
    assert "Search keywords" in transduce.Translator.translate.__doc__
    assert transduce.Translator.__text_signature__ == (
        '(path, quantization=None, threads=None, workers=1, ensemble=None, ensemble_mode="linear")'
    )
