"""Where a book section is: ``(chNN-name)=`` labels of the chapter notebooks, mapped to their pages.

Feedback names the section that explains a mistake; the link is ``<base><page>.html#<label>``, with
the base configurable (``[grading] book_url`` in autograder.toml) and, by default, the layout of
the built site, where ``exercises/`` and ``feedback`` pages sit two folders below ``book/``.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

BOOK = Path(__file__).resolve().parent.parent / "book"
LABEL = re.compile(r"^\((ch\d\d-[a-z0-9-]+)\)=\s*$", re.M)


@functools.lru_cache(maxsize=1)
def labels() -> dict[str, str]:
    """{label: page name without suffix}."""
    found = {}
    for path in sorted(BOOK.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell.get("cell_type") == "markdown":
                for label in LABEL.findall("".join(cell["source"])):
                    found[label] = path.stem
    return found


def url(label: str, *, base: str = "../../book/") -> str:
    page = labels().get(label)
    return f"{base}{page}.html#{label}" if page else f"{base}index.html"
