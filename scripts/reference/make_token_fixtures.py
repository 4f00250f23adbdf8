#!/usr/bin/env python3
"""Reference token ids for caption cleaning: OpenAI CLIP's tokenizer run on captions web data really has.

Writes test/fixtures/reference/captions.json = { generator, ftfyVersion, clipCommit, ftfyCommit, cases }
with one { label, text, cleaned, ids } per case, where

  cleaned = clip/simple_tokenizer.py's basic_clean(text)
            (ftfy.fix_text with ftfy's defaults, then html.unescape twice, then strip)
  ids     = clip.tokenize(text, truncate=True)[0]: <|startoftext|> + BPE + <|endoftext|>, cut to 77
            keeping <|endoftext|> last, zero-padded to 77

The cases are the curated captions in CAPTIONS below plus every `original` in ftfy's own test cases
(tests/test-cases/*.json of the ftfy checkout, known failures included: we record what ftfy *does*).
test/embed/textClean.test.ts checks src/embed/textClean.ts and ClipTokenizer against this file.

Run it from the repository root, with checkouts of openai/CLIP and rspeer/python-ftfy (no pip, no
torch: clip/__init__.py imports torch, so the clip/ folder itself goes on PYTHONPATH and we import
simple_tokenizer directly; clip.tokenize's padding/truncation is re-stated below):

    apt-get install -y python3-regex python3-wcwidth
    git clone https://github.com/openai/CLIP /tmp/ref/clip
    git -C /tmp/ref/clip checkout d05afc436d78f1c48dc0dbf8e5980a9d471f35f6
    git clone https://github.com/rspeer/python-ftfy /tmp/ref/ftfy
    git -C /tmp/ref/ftfy checkout 74dd0452b48286a3770013b3a02755313bd5575e     # ftfy 6.3.1
    CLIP_COMMIT=d05afc436d78f1c48dc0dbf8e5980a9d471f35f6 FTFY_COMMIT=74dd0452b48286a3770013b3a02755313bd5575e \
      PYTHONPATH=/tmp/ref/ftfy:/tmp/ref/clip/clip /usr/bin/python3 scripts/reference/make_token_fixtures.py

Use the system /usr/bin/python3 (3.11 here; its unicodedata is Unicode 14.0), not a pyenv shim.
clip/bpe_simple_vocab_16e6.txt.gz is in the CLIP checkout and is used as is.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import ftfy
import simple_tokenizer  # <CLIP checkout>/clip/simple_tokenizer.py

CONTEXT_LENGTH = 77
REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "test" / "fixtures" / "reference" / "captions.json"

LONG = (
    "A wide angle photograph of a busy farmers market on a sunny Saturday morning, with wooden stalls "
    "full of red tomatoes, green peppers, golden corn, fresh bread, jars of honey and bunches of "
    "flowers, shoppers carrying woven baskets, a street musician playing the accordion near the "
    "fountain, children eating ice cream, dogs on leashes, and colourful bunting strung between the "
    "old stone buildings of the town square in the background"
)

# (label, text). Keep labels stable: the test reports failures by label.
CAPTIONS: list[tuple[str, str]] = [
    ("clean: short", "a photo of a cat"),
    ("clean: sentence", "A Golden Retriever puppy playing in the snow, 4K wallpaper"),
    ("clean: punctuation and digits", "Stock photo - Portrait of a smiling woman (2019), 1920x1080px!"),
    ("clean: contractions", "it's what we've been waiting for, isn't it? they'll say I'm right"),
    ("quotes: curly double", "\u201cThe Starry Night\u201d by Vincent van Gogh"),
    ("quotes: curly single", "Don\u2019t miss the \u2018best\u2019 deals of the year"),
    ("quotes: low-9 and primes", "\u201eBitte\u201c sagte er \u201aleise\u2018 \u02bcokina"),
    ("html: &amp;", "Salt &amp; Pepper Shakers"),
    ("html: &amp;amp; (double escaped)", "Tom &amp;amp; Jerry poster"),
    ("html: triple escaped", "Fish &amp;amp;amp; Chips"),
    ("html: &lt;b&gt;", "&lt;b&gt;Bold&lt;/b&gt; text on a sign"),
    ("html: &quot;", "He said &quot;cheese&quot; for the camera"),
    ("html: &#39;", "It&#39;s a beautiful day in the neighborhood"),
    ("html: &nbsp;", "New&nbsp;York&nbsp;City skyline at night"),
    ("html: no semicolon &amp", "Fish &amp chips on a plate"),
    ("html: no semicolon &copy", "&copy 2019 Getty Images"),
    ("html: &eacute;", "Caf&eacute; de Flore, Paris"),
    ("html: upper-case entity", "P&EACUTE;REZ family portrait, BUNDESSTRA&SZLIG;E"),
    ("html: numeric curly quotes", "&#8220;Quoted&#8221; text &#x2014; with a dash"),
    ("html: numeric &#x80; and &#128", "price: 5 &#x80; or 6&#128"),
    ("html: numeric invalid &#0; &#xD800; &#1", "null &#0; surrogate &#xD800; control &#1 end"),
    ("html: numeric emoji", "pizza &#127829; party"),
    ("html: &not in prose", "this&not that, AT&T and R&D"),
    ("html: literal < disables ftfy's unescape", "<3 Fish &amp;amp;amp; Chips &hellip;"),
    ("html: < on an earlier line", "a <b> tag\nTom &amp;amp;amp; Jerry &eacute;"),
    ("width: full-width letters and digits", "\uff21\uff22\uff23\uff11\uff12\uff13 \uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48"),
    ("width: ideographic space", "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33"),
    ("width: half-width katakana", "\uff73\uff99\uff84\uff97\uff8f\uff9d \uff35\uff80\uff70\uff9d"),
    ("ligatures", "\ufb01sh and \ufb02owers at the o\ufb03ce, \ufb00 \ufb04 \ufb06"),
    ("mojibake: caf\u00c3\u00a9", "caf\u00c3\u00a9 au lait"),
    ("mojibake: don\u00e2\u20ac\u2122t", "don\u00e2\u20ac\u2122t stop believing"),
    ("mojibake: two layers", "It\u00c3\u00a2\u00e2\u201a\u00ac\u00e2\u201e\u00a2s a trap"),
    ("mojibake: en dash", "The Mona Lisa \u00e2\u20ac\u201c Leonardo da Vinci"),
    ("mojibake: curly quotes with C1", "\u00e2\u20ac\u0153Hello World\u00e2\u20ac\x9d"),
    ("mojibake: lossy", "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd"),
    ("mojibake: sch\u00c3\u00b6n", "sch\u00c3\u00b6n und gr\u00c3\u00bcn"),
    ("mojibake: lost no-break space", "voil\u00c3 le travail"),
    ("mojibake: latin-1 heart", "He's Justin\u00e2\x9d\u00a4"),
    ("mojibake: check mark", "\u00e2\u0153\u201d No problems"),
    ("mojibake: inside html", "&macr;\\_(\u00e3\x83\x84)_/&macr;"),
    ("mojibake: emoji via utf-8", "Hi guys \u00f0\u0178\u02dc\u008d"),
    ("mojibake: CJK", "\u00e6\u2014\u00a5\u00e6\u0153\u00ac\u00e8\u00aa\u017e \u00e7\u00ae\u20ac\u00e4\u00bd\u201c"),
    ("c1: windows-1252 quotes as C1", "\x93quoted\x94 and an ellipsis\x85"),
    ("legit: \u00c3 as a letter", "There are a lot of \u00c3\u2019s in mojibake text"),
    ("legit: Portuguese", "C O N C L U S \u00c3 O"),
    ("legit: Greek diaeresis", "\u0397 \u00a8\u03b1\u03bd\u03b1\u03c4\u03c1\u03bf\u03c6\u03ae\u00a8 \u03b4\u03c5\u03c3\u03c4\u03c5\u03c7\u03ce\u03c2"),
    ("legit: multiplication sign", "higher values (\u201c+\u201d and \u201c\u00d7\u201d curves) in the region"),
    ("legit: Swedish", "Bremer/Mccoy \u2013 Dr\u00c3\u00a5ber"),
    ("legit: caps with ellipsis", "RETWEET SE VOC\u00ca\u2026"),
    ("emoji", "I \u2764\ufe0f NY \U0001f5fd\U0001f355 so much \U0001f602\U0001f602"),
    ("emoji: ZWJ family and flag", "family \U0001f469\u200d\U0001f469\u200d\U0001f467 in \U0001f1ef\U0001f1f5"),
    ("CJK", "\u6771\u4eac\u30bf\u30ef\u30fc\u306e\u591c\u666f \u548c \u670d\u52a1\u5668"),
    ("Korean", "\uc11c\uc6b8\uc758 \uc57c\uacbd"),
    ("Cyrillic and Greek", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440 \u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1"),
    ("accented Latin", "Cr\u00e8me br\u00fbl\u00e9e \u00e0 la fran\u00e7aise, S\u00e3o Paulo, Z\u00fcrich, \u0141\u00f3d\u017a"),
    ("combining characters (NFC)", "Cafe\u0301 con n\u0303 and A\u030a"),
    ("control characters", "caption\x00with\x07some\x1fcontrol\x7fchars"),
    ("tabs and newlines", "line one\nline two\r\nline three\r\tcol\u2028sep\u2029para"),
    ("terminal escapes", "\x1b[36;44mI'm blue, da ba dee\x1b[0m"),
    ("byte order mark", "\ufeffcaption with a BOM"),
    ("lone surrogate", "broken \ud83d emoji"),
    ("zero-width and no-break spaces", "zero\u200bwidth\u00a0no-break\u2009thin"),
    ("long (> 77 tokens)", LONG),
    ("long with mojibake and entities", LONG.replace("fresh", "fr\u00c3\u00aache &amp;") + " \u00e2\u20ac\u201c " + LONG),
    ("empty", ""),
    ("whitespace only", "   \t\n  \u3000 "),
    ("punctuation only", "!!! ??? ..."),
]


def ftfy_test_cases() -> list[tuple[str, str]]:
    """Every `original` in ftfy's tests/test-cases, labelled `ftfy:<file>:<index>: <label>`."""
    folder = Path(ftfy.__file__).resolve().parents[1] / "tests" / "test-cases"
    if not folder.is_dir():
        sys.exit(f"{folder} not found: put a git checkout of rspeer/python-ftfy (not a pip install) on PYTHONPATH")
    cases = []
    for file in sorted(folder.glob("*.json")):
        for i, case in enumerate(json.loads(file.read_text(encoding="utf-8"))):
            cases.append((f"ftfy:{file.stem}:{i}: {case['label']}", case["original"]))
    return cases


def clip_tokenize(tokenizer: simple_tokenizer.SimpleTokenizer, text: str) -> list[int]:
    """clip.tokenize(text, context_length=77, truncate=True)[0] as a list, without torch."""
    sot = tokenizer.encoder["<|startoftext|>"]
    eot = tokenizer.encoder["<|endoftext|>"]
    tokens = [sot] + tokenizer.encode(text) + [eot]
    if len(tokens) > CONTEXT_LENGTH:
        tokens = tokens[:CONTEXT_LENGTH]
        tokens[-1] = eot
    return tokens + [0] * (CONTEXT_LENGTH - len(tokens))


def main() -> None:
    tokenizer = simple_tokenizer.SimpleTokenizer()
    cases = []
    labels = set()
    for label, text in CAPTIONS + ftfy_test_cases():
        assert label not in labels, f"duplicate label {label}"
        labels.add(label)
        cases.append(
            {
                "label": label,
                "text": text,
                "cleaned": simple_tokenizer.basic_clean(text),
                "ids": clip_tokenize(tokenizer, text),
            }
        )
    fixture = {
        "generator": "scripts/reference/make_token_fixtures.py: openai/CLIP clip/simple_tokenizer.py "
        "(basic_clean, SimpleTokenizer.encode) + clip.tokenize(truncate=True) semantics",
        "ftfyVersion": ftfy.__version__,
        "clipCommit": os.environ.get("CLIP_COMMIT", "unknown"),
        "ftfyCommit": os.environ.get("FTFY_COMMIT", "unknown"),
        "python": sys.version.split()[0],
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One case per line keeps diffs readable; ASCII escapes keep control characters and lone
    # surrogates intact through editors and git.
    lines = [json.dumps(case, ensure_ascii=True, separators=(", ", ": ")) for case in cases]
    head = json.dumps({k: v for k, v in fixture.items() if k != "cases"}, ensure_ascii=True, indent=2)
    body = head[:-2] + ',\n  "cases": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"
    assert json.loads(body) == fixture
    OUT.write_text(body, encoding="ascii")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(REPO)} (ftfy {ftfy.__version__})")


if __name__ == "__main__":
    main()
