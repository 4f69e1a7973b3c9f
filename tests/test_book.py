"""The rendered book: it builds strictly, renders in a real browser, links resolve, the PDF is whole.

One session-scoped fixture builds the book once, the way `make book` does
(``python -m tools.build_book all --all``: HTML with -W -n --keep-going and a
fresh Sphinx environment so every warning is reported, then the single-page
build printed to PDF by headless Chromium). A second fixture loads every built
page in headless Chromium (Debian's ``chromium``; installed with apt-get when
missing and running as root) from a local http.server and records what the
browser saw, including the text a reader sees outside code and typeset math
(``tools.markup_check`` lists what must never appear there: raw TeX, ``$``, table
debris, unrendered Markdown, control characters); the tests below read that
record. Screenshots land in ``_build/screenshots/``. The same check runs
statically on the exercise notebooks, and on planted pages to prove it fails.

All tests share one xdist group: under ``pytest -n 2 --dist loadgroup`` the
book is built once, on one worker.
"""
from __future__ import annotations

import fcntl
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
PDF = BUILD / "pdf" / "book.pdf"
SCREENSHOTS = BUILD / "screenshots"
EXT = ROOT / "book" / "_ext"

sys.path.insert(0, str(ROOT))  # tools/ is a helper package of the repository, not installed

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("book")]

#: Folders Sphinx must never read (exclude_patterns in _config.yml).
NEVER_READ = ("solutions", "exercises", "tests", ".venv", ".pytest_cache", "bench", "tools",
              "autograder", "mlp_lib")


# ---------------------------------------------------------------------------
# the table of contents


def toc_files() -> list[str]:
    """Every page of _toc.yml (docnames without suffix), in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


def toc_chapters() -> list[str]:
    """The pages of the "Chapters" part (empty while no chapter exists)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        if part.get("caption") == "Chapters":
            return [re.sub(r"\.(md|ipynb)$", "", e["file"]) for e in part["chapters"]]
    return []


def source_of(docname: str) -> Path:
    for suffix in (".ipynb", ".md"):
        if (ROOT / (docname + suffix)).is_file():
            return ROOT / (docname + suffix)
    raise FileNotFoundError(docname)


# ---------------------------------------------------------------------------
# a small HTML reader (stdlib only)


class _Page(html.parser.HTMLParser):
    """Ids, links and text of one HTML file."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (attribute, url)
        self.h1: list[str] = []
        self.classes: list[tuple[str, set[str], dict]] = []
        self._in_h1 = 0
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and tag in ("a", "link", "script", "img", "source", "iframe"):
                self.links.append((key, attrs[key]))
        self.classes.append((tag, set((attrs.get("class") or "").split()), attrs))
        if tag == "h1":
            self._in_h1 += 1
            self._text = []

    def handle_endtag(self, tag):
        if tag == "h1" and self._in_h1:
            self._in_h1 -= 1
            self.h1.append("".join(self._text).replace("#", "").replace("¶", "").strip())

    def handle_data(self, data):
        if self._in_h1:
            self._text.append(data)


def read_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def html_pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html")
                  if not p.relative_to(HTML).parts[0].startswith(("_static", "_sources", "_downloads")))


# ---------------------------------------------------------------------------
# fixtures


@dataclass
class Build:
    html: subprocess.CompletedProcess
    pdf: subprocess.CompletedProcess

    @property
    def output(self) -> str:
        return "".join(p.stdout + p.stderr for p in (self.html, self.pdf))


def _tail(proc: subprocess.CompletedProcess, n: int = 40) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-n:])


@pytest.fixture(scope="session")
def book() -> Build:
    """Build HTML (fresh Sphinx environment: every warning is reported; executions
    stay cached) and then the PDF, as `make book` does."""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "tools.build_book", *args],
                              cwd=ROOT, capture_output=True, text=True)

    def saved(proc) -> dict:
        return {"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}

    BUILD.mkdir(exist_ok=True)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    record = BUILD / "test_book_build.json"
    # One build per test run even if xdist hands these tests to both workers (loadgroup has
    # silently stopped grouping before, with a pytest release it did not support).
    with open(BUILD / ".test_book.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if run_id and record.is_file():
            previous = json.loads(record.read_text())
            if previous.get("run") == run_id:
                return Build(html=subprocess.CompletedProcess(**previous["html"]),
                             pdf=subprocess.CompletedProcess(**previous["pdf"]))
        result = Build(html=run("html", "--all"), pdf=run("pdf"))
        (BUILD / "test_book_build.log").write_text(result.output)
        record.write_text(json.dumps({"run": run_id, "html": saved(result.html), "pdf": saved(result.pdf)}))
        return result


@pytest.fixture(scope="session")
def built(book) -> Build:
    if book.html.returncode != 0:
        pytest.fail("the HTML book did not build (see test_book_builds_strictly):\n" + _tail(book.html))
    return book


@dataclass
class PageReport:
    url: str
    errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    prose_blocks: int = 0
    prose_defects: list[str] = field(default_factory=list)
    untypeset_math: int = 0
    math: int = 0
    mathjax_errors: int = 0
    external_requests: list[str] = field(default_factory=list)


_PAGE_STATE_JS = r"""
(() => ({
  broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src),
  math: document.querySelectorAll('.math').length,
  untypeset: Array.from(document.querySelectorAll('.math')).filter(m => !m.querySelector('mjx-container')).length,
  merror: document.querySelectorAll('mjx-merror').length,
}))()
"""


@pytest.fixture(scope="session")
def browser_report(built):
    """Load every built page in headless Chromium; record errors, images, math, requests."""
    from tools.chromium import Browser
    from tools.markup_check import text_defects
    from tools.serve import serve

    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    pages = [p for p in html_pages() if "http-equiv=\"Refresh\"" not in p.read_text(encoding="utf-8")[:2000]]
    reports: dict[str, PageReport] = {}
    search: dict = {}
    with serve(HTML) as base, Browser() as browser:
        for path in pages:
            rel = path.relative_to(HTML).as_posix()
            tab = browser.open(base + rel)
            tab.wait_for_mathjax()
            tab.wait_for_images()
            browser.pump(0.3)  # late console messages
            state = tab.evaluate(_PAGE_STATE_JS)
            prose = tab.prose_blocks()
            report = PageReport(
                url=rel,
                errors=tab.console_errors(),
                broken_images=state["broken"],
                prose_blocks=len(prose),
                prose_defects=[f"#{block['section']}: {defect}" for block in prose
                               for defect in text_defects(block["text"])],
                untypeset_math=state["untypeset"],
                math=state["math"],
                mathjax_errors=state["merror"],
                external_requests=[u for u in tab.requested_urls()
                                   if not u.startswith((base, "data:", "blob:", "about:"))],
            )
            name = rel.removesuffix(".html").replace("/", "__")
            tab.screenshot(SCREENSHOTS / f"{name}.png")
            if rel == "book/intro.html":
                tab.screenshot(SCREENSHOTS / f"{name}__full.png", full_page=True)
            reports[rel] = report
            tab.close()

        tab = browser.open(base + "search.html?q=backpropagation")
        try:
            # Sphinx shows the results one by one, then a summary line
            tab.wait_until("/Search finished|did not match any/i.test("
                           "(document.querySelector('#search-results') || {}).textContent || '')",
                           timeout=60)
        finally:
            search["results"] = tab.evaluate(
                "Array.from(document.querySelectorAll('#search-results ul.search li a'))"
                ".map(a => a.getAttribute('href'))")
            search["errors"] = tab.console_errors()
            tab.screenshot(SCREENSHOTS / "search__backpropagation.png")
            tab.close()
    (SCREENSHOTS / "report.json").write_text(json.dumps(
        {k: v.__dict__ for k, v in reports.items()} | {"search": search}, indent=1))
    return reports, search


# ---------------------------------------------------------------------------
# the build


def test_book_builds_strictly(book):
    """`-W -n --keep-going` builds of HTML and PDF: no warning, no broken reference, no failing cell."""
    assert book.html.returncode == 0, f"the HTML build failed:\n{_tail(book.html, 60)}"
    assert book.pdf.returncode == 0, f"the PDF build failed:\n{_tail(book.pdf, 60)}"
    # Sphinx's "WARNING:"/"ERROR:" lines (kernels' own "[IPKernelApp] WARNING |" notices are not build warnings)
    warnings = [line for line in book.output.splitlines() if re.search(r"\b(WARNING|ERROR):", line)]
    assert not warnings, "the build printed warnings:\n" + "\n".join(warnings)
    assert book.output.count("build succeeded") == 2


def test_build_reads_only_the_book_pages(built):
    """Nothing from solutions/, exercises/, tests/, .venv, ... becomes a page or a searchable doc."""
    for top in NEVER_READ:
        if top == "exercises":  # the released notebooks are copied into the site, never read as pages
            assert not list((HTML / top).rglob("*.html")), f"_build/html/{top}/ has pages: Sphinx read {top}/"
        else:
            assert not (HTML / top).exists(), f"_build/html/{top}/ exists: Sphinx read {top}/"
        assert not (HTML / "_sources" / top).exists(), f"_build/html/_sources/{top}/ exists"
        assert not (BUILD / ".doctrees" / top).exists(), f"_build/.doctrees/{top}/ exists"
        assert not (BUILD / "jupyter_execute" / top).exists(), f"notebooks of {top}/ were executed"
    index = (HTML / "searchindex.js").read_text(encoding="utf-8")
    docnames = json.loads(re.search(r'"docnames":\s*(\[[^\]]*\])', index).group(1))
    assert sorted(docnames) == sorted(toc_files()), "the built pages are not exactly the toc's pages"


def test_mathjax_is_served_from_the_book(built):
    """mathjax_path names a file inside _static: the pages load MathJax 3 without the network."""
    script = HTML / "_static" / "mathjax" / "tex-mml-chtml.js"
    assert script.is_file() and script.stat().st_size > 100_000
    assert (HTML / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()
    intro = (HTML / "book" / "intro.html").read_text(encoding="utf-8")
    assert re.search(r'<script[^>]+src="\.\./_static/mathjax/tex-mml-chtml\.js', intro)
    assert "cdn.jsdelivr.net" not in intro and "unpkg.com" not in intro


# ---------------------------------------------------------------------------
# the browser check


def test_pages_have_no_console_errors(browser_report):
    reports, _ = browser_report
    bad = {url: r.errors for url, r in reports.items() if r.errors}
    assert not bad, f"console errors: {json.dumps(bad, indent=1)}"


def test_every_image_loads(browser_report):
    reports, _ = browser_report
    bad = {url: r.broken_images for url, r in reports.items() if r.broken_images}
    assert not bad, f"images with naturalWidth 0: {bad}"


def test_math_is_typeset(browser_report):
    reports, _ = browser_report
    assert reports["book/intro.html"].math > 0, "the intro's notation table has math: the check saw none"
    bad = {url: {"untypeset": r.untypeset_math, "mathjax_errors": r.mathjax_errors}
           for url, r in reports.items() if r.untypeset_math or r.mathjax_errors}
    assert not bad, f"math not rendered by MathJax: {json.dumps(bad, indent=1)}"


def test_rendered_text_of_every_page_shows_no_raw_tex_or_markdown(browser_report):
    """What the reader sees outside code and typeset math: no `$`, TeX command, table debris,
    unrendered Markdown or control character (tools/markup_check.py), on every page."""
    reports, _ = browser_report
    for docname in toc_files():                  # the check read every page of the book
        report = reports[f"{docname}.html"]
        assert report.prose_blocks > 20, f"{docname}: the check read only {report.prose_blocks} blocks of text"
    bad = {url: r.prose_defects for url, r in reports.items() if r.prose_defects}
    assert not bad, f"raw source on rendered pages: {json.dumps(bad, indent=1, ensure_ascii=False)}"


def test_pages_request_nothing_outside_the_book(browser_report):
    reports, _ = browser_report
    bad = {url: r.external_requests for url, r in reports.items() if r.external_requests}
    assert not bad, f"pages reached outside the local server: {bad}"


def test_search_finds_backpropagation(browser_report):
    _, search = browser_report
    assert not search["errors"], search["errors"]
    assert search["results"], "searching the book for 'backpropagation' returned nothing"
    assert any(href.startswith("book/intro.html") for href in search["results"]), search["results"]


def test_screenshots_are_saved(browser_report):
    reports, _ = browser_report
    shots = sorted(SCREENSHOTS.glob("*.png"))
    assert len(shots) >= len(reports) + 1
    for shot in shots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# Markdown sources: the same check, statically


def _markdown_sources(notebook: dict) -> list[tuple[str, str]]:
    """(where, Markdown) of every Markdown cell and every Markdown output of a notebook."""
    sources = []
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            sources.append((f"cell {i}", "".join(cell["source"])))
        for output in cell.get("outputs", []):
            markdown = output.get("data", {}).get("text/markdown")
            if markdown:
                sources.append((f"output of cell {i}", "".join(markdown)))
    return sources


def test_exercise_markdown_renders_without_raw_tex_or_control_characters():
    """The released notebooks (and the sources they are generated from) are read in Jupyter, not
    in this book: their Markdown is checked statically, with the rules of the browser check."""
    from tools.markup_check import markdown_defects

    notebooks = sorted((ROOT / "exercises").glob("*/*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))
    assert len(notebooks) >= 2 * len(toc_chapters())
    bad = [f"{nb.relative_to(ROOT)} {where}: {defect}" for nb in notebooks
           for where, source in _markdown_sources(json.loads(nb.read_text(encoding="utf-8")))
           for defect in markdown_defects(source)]
    assert not bad, "\n".join(bad)


def test_book_markdown_and_printed_tables_have_no_markup_defects(built):
    """The chapters' Markdown cells and the Markdown their code prints (tables), as executed in the
    build's cache: a `|` inside math in a table row renders as a different formula even when the
    row survives (`\\|` loses its backslash), which only the source shows."""
    import nbformat
    from jupyter_cache import get_cache

    from tools.markup_check import markdown_defects

    cache = get_cache(str(BUILD / ".jupyter_cache"))
    bad, printed = [], 0
    for docname in toc_files():
        source = source_of(docname)
        if source.suffix == ".md":
            bad += [f"{docname}: {d}" for d in markdown_defects(source.read_text(encoding="utf-8"))]
            continue
        _, executed = cache.merge_match_into_notebook(nbformat.read(source, as_version=4))
        sources = _markdown_sources(executed)
        printed += sum(where.startswith("output") for where, _ in sources)
        bad += [f"{docname} {where}: {d}" for where, text in sources for d in markdown_defects(text)]
    assert printed > 20, "the executed notebooks printed almost no Markdown: were their outputs read?"
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------
# links and pages


def test_internal_links_resolve(built):
    """Every local href/src of every page points at an existing file, and #anchors exist there."""
    pages = {p: read_page(p) for p in html_pages()}
    broken = []
    for path, page in pages.items():
        for attr, url in page.links:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme or url.startswith("//") or not (parts.path or parts.fragment):
                continue
            target = (path.parent / urllib.parse.unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(HTML)}: {attr}={url} (no file)")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else read_page(target).ids
                if urllib.parse.unquote(parts.fragment) not in ids:
                    broken.append(f"{path.relative_to(HTML)}: {attr}={url} (no #{parts.fragment})")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_every_page_of_the_toc_is_built(built):
    for docname in toc_files():
        page = HTML / f"{docname}.html"
        assert page.is_file(), f"{docname} is in _toc.yml but was not built"
        assert read_page(page).h1, f"{docname} has no title"


def test_chapter_pages_offer_their_notebook_and_link_their_exercise(built):
    """Each chapter: a download of its .ipynb, and an exercise box linking a released notebook."""
    for docname in toc_chapters():
        page = read_page(HTML / f"{docname}.html")
        hrefs = [url for attr, url in page.links if attr == "href"]
        name = Path(docname).name
        assert any(urllib.parse.urlsplit(h).path.endswith(f"{name}.ipynb") for h in hrefs), \
            f"{docname}: no download link to {name}.ipynb"
        boxes = [c for tag, c, _ in page.classes if "course-exercise" in c]
        assert boxes, f"{docname}: no {{exercise-link}} box"
        assert any(re.search(r"_downloads/[0-9a-f]+/ch\d\d_\w+\.ipynb$", h) for h in hrefs), \
            f"{docname}: the exercise box links no exercise notebook"


def test_exercises_link_back_to_sections_of_the_book_that_exist(built):
    """The site mirrors exercises/, so an exercise's ../../book/<page>.html#<label> resolves there."""
    link = re.compile(r"\]\((\.\./\.\./book/[^)#\s]+\.html)(?:#([^)\s]+))?\)")
    notebooks = sorted((ROOT / "exercises").glob("*/*.ipynb"))
    assert notebooks
    broken = []
    for nb in notebooks:
        published = HTML / nb.relative_to(ROOT)
        assert published.is_file(), f"{published} is not in the site"
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        targets = [m.groups() for c in cells if c["cell_type"] == "markdown"
                   for m in link.finditer("".join(c["source"]))]
        assert targets, f"{nb.name} links no section of the book"
        for href, anchor in targets:
            page = (published.parent / href).resolve()
            if not page.is_file():
                broken.append(f"{nb.name}: {href} (no such page)")
            elif anchor and anchor not in read_page(page).ids:
                broken.append(f"{nb.name}: {href}#{anchor} (no such section)")
    assert not broken, "\n".join(broken)


def test_chapter_notebooks_are_seeded(built):
    """Reproducible numbers: no unseeded Generator, no numpy global-state sampling."""
    legacy = re.compile(r"np\.random\.(seed|rand|randn|randint|random|random_sample|normal|uniform"
                        r"|choice|shuffle|permutation|binomial)\(")
    for docname in toc_chapters():
        source = source_of(docname)
        if source.suffix != ".ipynb":
            continue
        cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert not legacy.search(code), f"{docname} samples from numpy's global state"
        assert not re.search(r"default_rng\(\s*\)", code), f"{docname} creates an unseeded Generator"


def test_checks_are_collapsed_and_teaching_code_stays_visible():
    """`glue` and `assert` cells run at every build but are collapsed (tag hide-input); no visible
    code cell ends with checks; a collapsed cell is the setup cell, a figure's drawing code, or checks
    only (the rules of tools/book_cells.py; `python -m tools.book_cells split` applies them)."""
    from tools.book_cells import COLLAPSE_TAG, check_suffix, violations

    for docname in toc_chapters():
        notebook = json.loads(source_of(docname).read_text(encoding="utf-8"))
        assert not violations(notebook), f"{docname}: " + "; ".join(violations(notebook))
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        collapsed = [c for c in code if COLLAPSE_TAG in c.get("metadata", {}).get("tags", [])]
        checks = [c for c in collapsed if check_suffix("".join(c["source"]), set()) == 0]
        assert len(checks) >= 3, f"{docname}: only {len(checks)} collapsed check cells"
        for cell in collapsed:
            source = "".join(cell["source"])
            assert cell is code[0] or cell in checks or re.search(r"\b(plt|ax|fig)\.", source), \
                f"{docname}: a collapsed cell hides teaching code: {source.splitlines()[0]!r}"
        visible = [c for c in code if c not in collapsed]
        assert sum(len(c["source"]) for c in visible) > sum(len(c["source"]) for c in checks), \
            f"{docname}: more lines of checks than of visible code"


def test_intro_teaches_the_notation(built):
    intro = (HTML / "book" / "intro.html").read_text(encoding="utf-8")
    for needle in ("(D_{\\text{in}}, D_{\\text{out}})", "torch.nn.Linear", "backpropagation"):
        assert needle in intro, needle


# ---------------------------------------------------------------------------
# the PDF


def _pdf_text() -> str:
    if shutil.which("pdftotext") is None:
        from tools.chromium import install_debian_package

        install_debian_package("poppler-utils")
    proc = subprocess.run(["pdftotext", "-layout", str(PDF), "-"], capture_output=True, text=True, check=True)
    text = unicodedata.normalize("NFKC", proc.stdout).replace("\u00ad", "")
    return re.sub(r"\s+", " ", text)


def test_pdf_contains_every_page_of_the_toc(built):
    if built.pdf.returncode != 0:
        pytest.fail("the PDF did not build:\n" + _tail(built.pdf))
    assert PDF.is_file() and PDF.read_bytes()[:5] == b"%PDF-"
    text = _pdf_text()
    titles = {d: re.sub(r"\s+", " ", read_page(HTML / f"{d}.html").h1[0]) for d in toc_files()}
    missing = [f"{d}: {t!r}" for d, t in titles.items() if t not in text]
    assert not missing, "titles missing from the PDF:\n" + "\n".join(missing)
    assert "\\(" not in text and "$$" not in text, "raw TeX in the PDF: MathJax did not run"


# ---------------------------------------------------------------------------
# the extension's directives, on a scratch book (no fake chapter in the real one)


def _scratch_book(tmp_path: Path, *, exercise: str, with_exercise_file: bool) -> Path:
    (tmp_path / "book" / "guides").mkdir(parents=True)
    (tmp_path / "exercises" / exercise).mkdir(parents=True)
    if with_exercise_file:
        nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        (tmp_path / "exercises" / exercise / f"{exercise}.ipynb").write_text(json.dumps(nb))
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({
        "title": "Scratch", "author": "tests", "only_build_toc_files": True,
        "exclude_patterns": ["exercises", "_build"],
        "execute": {"execute_notebooks": "off"},
        "sphinx": {"local_extensions": {"course_book": str(EXT)},
                   "config": {"nitpicky": True, "mathjax_path": "mathjax/tex-mml-chtml.js"}},
    }))
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "book/intro",
        "parts": [{"caption": "Chapters", "chapters": [{"file": "book/01_first"}, {"file": "book/02_second"}]},
                  {"caption": "Guides", "chapters": [{"file": "book/guides/student"}]}],
    }))
    (tmp_path / "book" / "intro.md").write_text("# Scratch\n\n```{chapter-map}\nNo chapters yet.\n```\n")
    (tmp_path / "book" / "guides" / "student.md").write_text("# Student guide\n\nHello.\n")
    (tmp_path / "book" / "01_first.md").write_text(
        "# 1. The first chapter\n\nText.\n\n## Forward pass\n\nMore.\n\n## Backward pass\n\nEven more.\n\n"
        f"```{{exercise-link}} {exercise}\nWrite the backward pass.\n```\n")
    (tmp_path / "book" / "02_second.md").write_text("# 2. The second chapter\n\n## Only section\n\nText.\n")
    return tmp_path


def _jupyter_book(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
         "build", str(path), "--builder", "html", "-W", "-n", "--keep-going"],
        capture_output=True, text=True, cwd=path,
    )


def test_exercise_link_and_chapter_map_render_links_that_resolve(tmp_path):
    book = _scratch_book(tmp_path, exercise="ch01_first", with_exercise_file=True)
    proc = _jupyter_book(book)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = book / "_build" / "html"

    chapter = read_page(out / "book" / "01_first.html")
    box = [attrs for tag, c, attrs in chapter.classes if "course-exercise" in c]
    assert box and box[0].get("id") == "exercise-ch01-first"
    downloads = [u for a, u in chapter.links if "_downloads/" in u]
    assert downloads, "the exercise box has no download link"
    target = (out / "book" / downloads[0]).resolve()
    assert target.name == "ch01_first.ipynb"
    assert target.read_bytes() == (book / "exercises" / "ch01_first" / "ch01_first.ipynb").read_bytes()
    html_text = (out / "book" / "01_first.html").read_text()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html_text))
    assert "Write the backward pass." in text
    assert "python -m autograder check exercises/ch01_first/ch01_first.ipynb" in text
    assert 'href="guides/student.html"' in html_text

    intro = read_page(out / "book" / "intro.html")
    text = (out / "book" / "intro.html").read_text()
    assert "course-chapter-map" in text and "No chapters yet." not in text
    hrefs = [u for a, u in intro.links if a == "href"]
    for expected in ("01_first.html", "01_first.html#forward-pass", "01_first.html#backward-pass",
                     "02_second.html#only-section", "01_first.html#exercise-ch01-first"):
        assert expected in hrefs, f"chapter map lacks a link to {expected}"
    for href in hrefs:
        if href.startswith(("01_", "02_")):
            file, _, anchor = href.partition("#")
            assert not anchor or anchor in read_page(out / "book" / file).ids, href
    assert "The first chapter" in text and ">1<" in text and ">2<" in text


def test_exercise_link_to_a_missing_exercise_fails_the_build(tmp_path):
    book = _scratch_book(tmp_path, exercise="ch01_first", with_exercise_file=False)
    proc = _jupyter_book(book)
    assert proc.returncode != 0
    assert "exercise-link: no exercise notebook" in proc.stdout + proc.stderr


# A page with the defects the rendered-text check exists for, each on its own line of the page.
_PLANTED = {
    "table cell split by a | inside math": "| criterion | step |\n|---|---|\n| $|x| < 1$ | 3 |\n",
    "display closed by $$ with text on its line": "$$\nx = \\frac{a}{b}\n$$ and then $y$ follows.\n",
    "a $x$| table cell (a | left over after the math)": "| a | b |\n|---|---|\n| $x$\\| | 2 |\n",
}


_CLEAN_PAGE = ("Clean text with $\\frac{a}{b}$ and $|x|$.\n\n"
               "| clean | table |\n|---|---|\n| $\\lvert x \\rvert$ | 1 |\n\n")


@pytest.fixture(scope="module")
def planted_pages(tmp_path_factory) -> dict[str, tuple[int, list[str]]]:
    """One scratch book whose pages are the clean page and the clean page plus each planted
    defect, built once; page name -> (blocks read, defects found) by the browser check."""
    from tools.chromium import Browser
    from tools.markup_check import text_defects
    from tools.serve import serve

    book = _scratch_book(tmp_path_factory.mktemp("planted"), exercise="ch01_first", with_exercise_file=True)
    pages = {"clean": ""} | {f"planted{i}": defect for i, defect in enumerate(_PLANTED.values())}
    for page, defect in pages.items():
        (book / "book" / f"{page}.md").write_text(f"# Page {page}\n\n## Only section\n\n" + _CLEAN_PAGE + defect)
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    toc["parts"][0]["chapters"] += [{"file": f"book/{page}"} for page in pages]
    (book / "_toc.yml").write_text(yaml.safe_dump(toc))
    proc = _jupyter_book(book)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = {}
    with serve(book / "_build" / "html") as base, Browser() as browser:
        for page in pages:
            tab = browser.open(base + f"book/{page}.html")
            tab.wait_for_mathjax()
            blocks = tab.prose_blocks()
            tab.close()
            found[page] = (len(blocks), [d for b in blocks for d in text_defects(b["text"])])
    return found


@pytest.mark.parametrize("index", range(len(_PLANTED)), ids=list(_PLANTED))
def test_rendered_text_check_fails_on_a_planted_page(planted_pages, index):
    """The check of test_rendered_text_of_every_page... finds each planted defect, and nothing on
    the same page without it (the clean lines have math, a table and `|x|`)."""
    blocks, defects = planted_pages["clean"]
    assert blocks > 3 and defects == []
    assert planted_pages[f"planted{index}"][1], f"the planted defect ({list(_PLANTED)[index]}) was not found"


@pytest.mark.parametrize("source", [*_PLANTED.values(), "at $z \u0007pprox -6$", "about $e^-6$"])
def test_static_markdown_check_fails_on_planted_sources(source):
    """The static check (exercise notebooks, the book's printed tables) finds the same planted
    defects, plus a control character (a BEL where `\\approx` was meant) and a bare-minus exponent."""
    from tools.markup_check import markdown_defects

    assert markdown_defects(source)
    assert markdown_defects("Clean: $\\frac{a}{b}$, $e^{-6}$, $z \\approx -6$ and\n\n| a |\n|---|\n| $\\lvert x \\rvert$ |\n") == []


def test_book_cells_split_moves_trailing_checks_and_keeps_teaching_code_visible():
    """The splitter behind the collapsed checks: trailing asserts, glue calls and the cheap values only
    they read move to a collapsed cell; a training call, and names later cells read, stay visible."""
    from tools.book_cells import split_checks, violations

    def code(source, tags=()):
        return {"cell_type": "code", "id": f"c{abs(hash(source)) % 10**6}", "metadata": {"tags": list(tags)},
                "execution_count": None, "outputs": [], "source": source}

    notebook = {"cells": [
        code("model = train(config)\nbest = max(scores)\nscore = float(model.score)\nassert score > 0.9\n"
             "glue('score', score, display=False)"),
        code("assert best > 0\nglue('best', best, display=False)"),
        code("print(model, best)"),
    ]}
    assert len(violations(notebook)) == 2
    assert split_checks(notebook) == 2
    sources = ["".join(c["source"]) for c in notebook["cells"]]
    tags = [c["metadata"].get("tags", []) for c in notebook["cells"]]
    assert sources[0] == "model = train(config)\nbest = max(scores)"        # a training call; best is read later
    assert sources[1] == "score = float(model.score)\nassert score > 0.9\nglue('score', score, display=False)"
    assert tags[1] == ["hide-input"]
    assert tags[2] == ["hide-input"] and tags[0] == [] and tags[3] == []
    assert violations(notebook) == []
