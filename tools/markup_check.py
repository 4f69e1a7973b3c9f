"""What a reader must never see: TeX that was not typeset and Markdown that did not render.

One list of defects, two ways to look for them:

* :func:`text_defects` reads *rendered* text, the words a reader sees on a page
  outside code blocks and typeset math (``tools.chromium.Page.prose_blocks``
  collects them from the browser). Any ``$``, TeX command, table separator or
  control character left there is source that did not render.
* :func:`markdown_defects` reads a Markdown *source* (a notebook's Markdown cell,
  a Markdown table printed by a code cell), parses it the way MyST does
  (markdown-it with tables and dollar math) and applies the same check to the
  text the parser would render, plus what only the source shows: control
  characters inside math, a ``|`` inside math in a table row (the table parser
  splits the cell there, or eats the backslash of ``\\|``) and a script that is a
  bare minus sign (``e^-6`` typesets as e⁻6).

The exercise notebooks are checked statically (they are read in Jupyter, not in
this book); the book's pages are checked in the browser, and statically too.
"""
from __future__ import annotations

import functools
import re
import unicodedata

# (pattern, what it means); every match in rendered text is a defect.
TEXT_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"\$"), "a `$`: math that was not typeset"),
    (re.compile(r"\\[A-Za-z]+|\\[()\[\]{}|]"), "a TeX command or delimiter outside typeset math"),
    (re.compile(r"[\^_]\{"), "a TeX sub- or superscript outside typeset math"),
    (re.compile(r"\|"), "a `|`: a Markdown table row that did not render, or a cell split by a `|`"),
    (re.compile(r"\*\*|(?<![`\w])`{1,3}(?![`\w])|\]\(|^#{1,6} ", re.M),
     "Markdown syntax that did not render (`**`, a backtick, `](`, a `#` heading)"),
    (re.compile(r"\{(?:glue(?::\w+)?|ref|numref|cite(?::\w+)?|eq|doc)\}"), "a MyST role that did not render"),
)

#: Whitespace control characters are part of ordinary text.
_ALLOWED_CONTROL = {"\t", "\n", "\r"}


def control_characters(text: str) -> list[str]:
    """Control characters (Unicode category Cc, apart from tab and newlines), as ``U+XXXX``."""
    return sorted({f"U+{ord(c):04X}" for c in text
                   if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROL})


def _snippet(text: str, start: int, end: int, width: int = 40) -> str:
    left, right = max(0, start - width), min(len(text), end + width)
    return ("…" if left else "") + text[left:right].replace("\n", " ") + ("…" if right < len(text) else "")


def text_defects(text: str) -> list[str]:
    """Defects in rendered text (what the reader sees outside code and typeset math)."""
    found = [f"control character {c}: {text[:80]!r}" for c in control_characters(text)]
    for pattern, meaning in TEXT_PATTERNS:
        for match in pattern.finditer(text):
            found.append(f"{meaning}: {_snippet(text, match.start(), match.end())!r}")
    return list(dict.fromkeys(found))


@functools.lru_cache(maxsize=1)
def _parser():
    """markdown-it configured like MyST's block and inline rules that matter here."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.myst_blocks import myst_block_plugin
    from mdit_py_plugins.myst_role import myst_role_plugin

    return (MarkdownIt("commonmark", {"html": True}).enable("table")
            .use(dollarmath_plugin, allow_labels=True, allow_space=True, allow_digits=True, double_inline=False)
            .use(myst_role_plugin).use(myst_block_plugin).use(colon_fence_plugin))


_MATH = {"math_inline", "math_inline_double", "math_block", "math_block_label", "amsmath"}
_BARE_MINUS_SCRIPT = re.compile(r"[\^_]\s*-\s*[\w\\]")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")


def markdown_defects(source: str) -> list[str]:
    """Defects of a Markdown source: what would render as raw TeX or Markdown, and bad math."""
    found = [f"control character {c} in the source" for c in control_characters(source)]
    for line in source.splitlines():
        if _TABLE_ROW.match(line):
            inside_math = line.split("$")[1::2]
            if any("|" in m for m in inside_math):
                found.append("a `|` inside math in a table row (the table splits there; write \\lvert, "
                             f"\\rvert, \\lVert, \\rVert): {line.strip()[:100]!r}")
    # Only "text" tokens render as prose; code, math, roles and raw HTML have token types of their own.
    for token in _parser().parse(source):
        for tok in [token, *(token.children or [])]:
            if tok.type in _MATH and _BARE_MINUS_SCRIPT.search(tok.content):
                found.append(f"a sub- or superscript that is a bare minus sign (write ^{{-6}}): ${tok.content}$")
            if tok.type == "text" and tok.content:
                found += [d for d in text_defects(tok.content) if not d.startswith("control character")]
    return list(dict.fromkeys(found))
