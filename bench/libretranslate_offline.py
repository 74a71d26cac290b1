#!/usr/bin/env python3
"""Starts LibreTranslate (the PyPI package, bench/requirements-libretranslate.txt) offline, for
bench/compare_serve.py: its Flask app, waitress threads and argos-translate request path as they
are, with one stand-in. argos-translate splits sentences with MiniSBD, whose ONNX model is
downloaded from GitHub at first use; this machine reaches no GitHub, so the splitter is replaced
by one that returns the text as one sentence. The benchmark sends one sentence per request, so
the text reaching CTranslate2's translate_batch (argos' settings: beam_size max(n, 4),
length_penalty 0.2, batch_type tokens, max_batch_size 32) is the same.

    libretranslate_offline.py --packages DIR -- [libretranslate arguments]
"""
import os
import sys


def main():
    if "--packages" not in sys.argv or "--" not in sys.argv:
        sys.exit(__doc__)
    packages = sys.argv[sys.argv.index("--packages") + 1]
    rest = sys.argv[sys.argv.index("--") + 1:]
    os.environ["ARGOS_PACKAGES_DIR"] = packages
    # no package index or update checks from here
    os.environ["ARGOS_PACKAGE_INDEX"] = "http://127.0.0.1:9/"
    from argostranslate import sbd

    def one_sentence(self, text):
        return [text]

    sbd.MiniSBDSentencizer.split_sentences = one_sentence
    import libretranslate.init
    # offline: nothing to install or download
    libretranslate.init.check_and_install_models = lambda *a, **k: None
    from libretranslate.main import main as libretranslate_main

    sys.argv = ["libretranslate"] + rest
    libretranslate_main()


if __name__ == "__main__":
    main()
