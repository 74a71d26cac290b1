"""transduce: encoder-decoder Transformers in native Rust, from Python.

    >>> import transduce
    >>> t = transduce.Translator("models/fr-en", threads=2)
    >>> [r.text for r in t.translate(["Une femme aime le chien."], beam=4)]

Every call runs in the Rust library with the GIL released: threads may share one
``Translator`` and translate at once. Errors carry the library's message: a bad option or
input raises a ``ValueError`` subclass (``OptionError`` names the option), a file that cannot
be read or written an ``OSError`` subclass (``FileError``).

``transduce.ray`` translates corpora on a Ray cluster (``pip install transduce[ray]``).
"""

from . import score
from ._native import (
    BleuScore,
    ChrfScore,
    FileError,
    InputError,
    ModelError,
    OptionError,
    Output,
    TensorError,
    TrainConfig,
    Translation,
    Translator,
    __version__,
    bleu,
    chrf,
    explain,
    explain_page,
    export_hf,
    import_hf,
    quantize,
    train,
)

__all__ = [
    "BleuScore",
    "ChrfScore",
    "FileError",
    "InputError",
    "ModelError",
    "OptionError",
    "Output",
    "TensorError",
    "TrainConfig",
    "Translation",
    "Translator",
    "__version__",
    "bleu",
    "chrf",
    "explain",
    "explain_page",
    "export_hf",
    "import_hf",
    "quantize",
    "score",
    "train",
]
