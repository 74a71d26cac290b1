"""Talks to a running `transduce serve` with the published Python clients (libretranslatepy and
deepl with server_url) and prints what they got as one JSON object; tests/serve_clients.rs
starts the server, runs this, and checks the answers against the library's translations.

    clients.py --url http://127.0.0.1:PORT --key KEY --lines LINES.json
"""

import argparse
import json
import sys

import deepl
from libretranslatepy import LibreTranslateAPI


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--lines", required=True, help="a JSON list of French sentences")
    args = parser.parse_args()
    with open(args.lines, encoding="utf-8") as f:
        lines = json.load(f)
    out = {}

    lt = LibreTranslateAPI(args.url + "/", api_key=args.key)
    out["libre_translate"] = [lt.translate(line, "fr", "en") for line in lines]
    out["libre_detect"] = lt.detect(lines[0])
    out["libre_languages"] = lt.languages()
    try:
        LibreTranslateAPI(args.url + "/", api_key="wrong").translate(lines[0], "fr", "en")
        out["libre_bad_key"] = "accepted"
    except Exception as e:  # urllib raises HTTPError 403
        out["libre_bad_key"] = getattr(e, "code", repr(e))

    translator = deepl.Translator(args.key, server_url=args.url)
    results = translator.translate_text(lines, source_lang="FR", target_lang="EN-US")
    out["deepl_translate"] = [r.text for r in results]
    out["deepl_detected"] = [r.detected_source_lang for r in results]
    auto = translator.translate_text(lines[0], target_lang="EN-GB")
    out["deepl_auto"] = [auto.text, auto.detected_source_lang]
    html = translator.translate_text("<p>" + lines[0] + "</p>", target_lang="EN-US", tag_handling="html")
    out["deepl_html"] = html.text
    out["deepl_source_languages"] = [(l.code, l.name) for l in translator.get_source_languages()]
    out["deepl_target_languages"] = [l.code for l in translator.get_target_languages()]
    usage = translator.get_usage()
    out["deepl_usage"] = [usage.character.count, usage.character.limit]
    try:
        deepl.Translator("wrong", server_url=args.url).translate_text(lines[0], target_lang="EN-US")
        out["deepl_bad_key"] = "accepted"
    except deepl.AuthorizationException as e:
        out["deepl_bad_key"] = "AuthorizationException"
    except deepl.DeepLException as e:
        out["deepl_bad_key"] = repr(e)
    try:
        translator.translate_text(lines[0], target_lang="XX")
        out["deepl_bad_target"] = "accepted"
    except deepl.DeepLException as e:
        out["deepl_bad_target"] = str(e)

    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
