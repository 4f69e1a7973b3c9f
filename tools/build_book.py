"""Build the course book: HTML (``make html``) and PDF (``make pdf``).

    python -m tools.build_book html     # _build/html   (jupyter-book, -W -n --keep-going)
    python -m tools.build_book pdf      # _build/pdf/book.pdf, printed from _build/singlehtml
    python -m tools.build_book all      # both
    python -m tools.build_book html --all   # re-read every page (executions stay cached)
    python -m tools.build_book html --path-output /tmp/book   # build into /tmp/book/_build

Both builds run ``jupyter-book build . -W -n --keep-going``: any Sphinx warning,
broken cross-reference (nitpicky) or erroring notebook cell (``raise_on_error``
in _config.yml) fails the build with a non-zero exit status. Notebooks execute
at build time through jupyter-cache (``_build/.jupyter_cache``), so a rebuild
re-executes only the notebooks whose code changed; the HTML and single-page
builds share that cache and Sphinx's environment (``_build/.doctrees``).

jupyter-book executes notebooks one after the other. Before it runs, the
notebooks of _toc.yml whose code is not in the cache yet are executed here in
parallel (``--jobs``, default: one per CPU), exactly as myst-nb would (same
kernel, working directory, timeout; results stored in the same cache), so
jupyter-book then finds every notebook cached. A notebook that fails here fails
the build with its traceback.

The PDF is the single-page HTML build printed by headless Chromium
(``Page.printToPDF``, see tools/chromium.py): no LaTeX, no downloaded browser.
Chromium is Debian's package; it is installed with apt-get when missing and we
run as root, otherwise the error says how to install it.

Adding a chapter: put book/NN_<topic>.ipynb in place and add
``- file: book/NN_<topic>`` under the "Chapters" part of _toc.yml (see the
comment there). Link its exercise with the ``exercise-link`` directive
(book/_ext/course_book.py).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"      # jupyter-book's layout: <path-output>/_build/{html,singlehtml,...}
HTML = BUILD / "html"
SINGLEHTML = BUILD / "singlehtml"
PDF = BUILD / "pdf" / "book.pdf"
ROOT_DOC = "book/intro"

STRICT = ("-W", "-n", "--keep-going")


class BuildError(RuntimeError):
    """The book did not build (the message says which step and why)."""


def build_env() -> dict[str, str]:
    """Environment of the build and of the notebook kernels it starts.

    One thread per numeric library (numpy and torch share 2 cores), a fixed hash
    seed (reproducible output), and this interpreter's bin/ first on PATH so the
    kernels run in the same virtualenv (with mlp_lib installed).
    """
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    env["PYTHONHASHSEED"] = "0"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silences a debugger warning in kernels
    return env


def _read_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def toc_notebooks() -> list[Path]:
    """The .ipynb pages of _toc.yml, in reading order."""
    toc = _read_yaml(ROOT / "_toc.yml")
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    notebooks = []
    for name in files:
        path = ROOT / name
        if path.suffix != ".ipynb":
            path = path.with_name(path.name + ".ipynb")
        if path.is_file():
            notebooks.append(path)
    return notebooks


def _execute_one(path: str, timeout: int, allow_errors: bool) -> tuple[str, float, str | None]:
    """Worker: execute one notebook in its folder; (executed nb JSON, seconds, traceback)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout,
                                 allow_errors=allow_errors, meta_override=True)
    if result.err is not None:
        return "", result.time, result.exc_string or repr(result.err)
    return nbformat.writes(nb), result.time, None


def execute_notebooks(notebooks: list[Path] | None = None, *, build: Path = BUILD,
                      jobs: int | None = None) -> list[Path]:
    """Execute the not-yet-cached notebooks in parallel into the jupyter cache.

    Returns the notebooks that were executed. Raises :class:`BuildError` when one
    fails. Does nothing unless _config.yml asks for ``execute_notebooks: cache``.
    """
    import concurrent.futures
    import multiprocessing

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    execute = _read_yaml(ROOT / "_config.yml").get("execute", {})
    if execute.get("execute_notebooks") != "cache":
        return []
    if execute.get("exclude_patterns") or execute.get("run_in_temp"):
        return []  # not mirrored here: leave execution to jupyter-book
    timeout = int(execute.get("timeout", 30))
    allow_errors = bool(execute.get("allow_errors", False))
    notebooks = toc_notebooks() if notebooks is None else notebooks
    cache = get_cache(str(build / ".jupyter_cache"))
    todo = []
    for path in notebooks:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            todo.append(path)
    if not todo:
        return []
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    print(f"executing {len(todo)} notebook(s), {jobs} at a time: "
          + ", ".join(_show(p) for p in todo), flush=True)
    os.environ.update(build_env())  # the kernels inherit it
    failures = []
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_execute_one, str(p), timeout, allow_errors): p for p in todo}
        for future in concurrent.futures.as_completed(futures):
            path = futures[future]
            executed, seconds, error = future.result()
            name = _show(path)
            if error is not None:
                failures.append(f"{name} failed after {seconds:.1f} s:\n{error}")
                print(f"  FAILED {name} ({seconds:.1f} s)", flush=True)
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(nbformat.reads(executed, as_version=4), str(path),
                              data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True,
            )
            print(f"  executed {name} in {seconds:.1f} s", flush=True)
    print(f"notebooks executed in {time.perf_counter() - start:.1f} s", flush=True)
    if failures:
        raise BuildError("notebook execution failed:\n" + "\n\n".join(failures))
    return todo


def jupyter_book(builder: str, *, rebuild_all: bool = False, build: Path = BUILD) -> None:
    """Run ``jupyter-book build . --builder <builder> -W -n --keep-going`` (output in ``build``)."""
    if build.name != "_build":
        raise ValueError(f"jupyter-book writes into <path-output>/_build; got build={build}")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", ".", "--builder", builder, *STRICT]
    if build.resolve() != BUILD:
        cmd += ["--path-output", str(build.parent)]
    if rebuild_all:
        cmd.append("--all")
    print("$ jupyter-book " + " ".join(cmd[3:]), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=build_env())
    if proc.returncode != 0:
        # With --keep-going Sphinx saves its environment even when warnings fail
        # the build; the next incremental build would then skip the unchanged
        # pages and never repeat their warnings. Forget the environment instead.
        (build / ".doctrees" / "environment.pickle").unlink(missing_ok=True)
        raise BuildError(f"jupyter-book build --builder {builder} failed (exit {proc.returncode}); "
                         "the warnings/errors are printed above")
    print(f"jupyter-book {builder} build finished in {time.perf_counter() - start:.1f} s", flush=True)


def build_html(*, rebuild_all: bool = False, jobs: int | None = None, build: Path = BUILD) -> Path:
    """Build the HTML book into _build/html; returns the path of its index."""
    execute_notebooks(jobs=jobs, build=build)
    jupyter_book("html", rebuild_all=rebuild_all, build=build)
    html_dir = build / "html"
    index = html_dir / f"{ROOT_DOC}.html"
    if not index.is_file():
        raise BuildError(f"the build reported success but {index} is missing")
    mathjax = html_dir / "_static" / "mathjax" / "tex-mml-chtml.js"
    if not mathjax.is_file():
        raise BuildError(f"MathJax was not vendored into {mathjax.parent} (book/_ext/course_book.py)")
    return index


def build_singlehtml(*, rebuild_all: bool = False, jobs: int | None = None, build: Path = BUILD) -> Path:
    """Build the whole book as one HTML page; returns ``_build/singlehtml/book.html``.

    Sphinx's singlehtml builder writes the page at the root document's path
    (book/intro.html) but computes its links as if it sat at the output root;
    the page is therefore copied to the root as book.html, with its links to
    itself turned into plain #fragments (internal links of the PDF), and without
    the search index script (the single-page builder writes no index).
    """
    execute_notebooks(jobs=jobs, build=build)
    jupyter_book("singlehtml", rebuild_all=rebuild_all, build=build)
    single = build / "singlehtml"
    written = single / f"{ROOT_DOC}.html"
    if not written.is_file():
        candidates = sorted(single.rglob("*.html"))
        raise BuildError(f"single-page build produced no {written} (found: {candidates[:5]})")
    html = written.read_text(encoding="utf-8")
    html = html.replace(f'href="{ROOT_DOC}.html#', 'href="#')
    # the single-page builder writes no search index; the page needs none
    html = re.sub(r'<script[^>]*src="searchindex\.js"[^>]*></script>', "", html)
    page = single / "book.html"
    page.write_text(html, encoding="utf-8")
    return page


def print_pdf(page: Path, pdf: Path = PDF) -> Path:
    """Print a built HTML page to PDF with headless Chromium (served over HTTP)."""
    from tools.chromium import Browser
    from tools.serve import serve

    root, rel = page.parent, page.name
    start = time.perf_counter()
    with serve(root) as base, Browser(width=1100, height=1400, timeout=120) as browser:
        tab = browser.open(base + rel, timeout=300)
        tab.wait_for_mathjax(timeout=300)
        tab.wait_for_images(timeout=120)
        errors = tab.console_errors()
        if errors:
            raise BuildError("the single-page book has browser errors:\n  " + "\n  ".join(errors))
        tab.evaluate("document.fonts ? document.fonts.ready.then(() => true) : true", await_promise=True)
        title = tab.evaluate("document.title")
        footer = ('<div style="font-size:8px;width:100%;text-align:center;color:#666;">'
                  '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
        header = ('<div style="font-size:8px;width:100%;text-align:center;color:#999;">'
                  f'{_escape(title)}</div>')
        tab.print_pdf(pdf, displayHeaderFooter=True, headerTemplate=header, footerTemplate=footer,
                      generateDocumentOutline=True)
        tab.close()
    if pdf.read_bytes()[:5] != b"%PDF-":
        raise BuildError(f"{pdf} is not a PDF")
    print(f"printed {_show(pdf)} ({pdf.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - start:.1f} s", flush=True)
    return pdf


def _show(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_pdf(*, rebuild_all: bool = False, jobs: int | None = None, build: Path = BUILD) -> Path:
    """Single-page HTML build, then print it to _build/pdf/book.pdf."""
    page = build_singlehtml(rebuild_all=rebuild_all, jobs=jobs, build=build)
    return print_pdf(page, build / "pdf" / "book.pdf")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.build_book", description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["html", "pdf", "all"], help="what to build")
    parser.add_argument("--all", dest="rebuild_all", action="store_true",
                        help="re-write every page (notebook executions stay cached)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="notebooks executed in parallel (default: one per CPU)")
    parser.add_argument("--path-output", type=Path, default=ROOT,
                        help="write into PATH/_build instead of the repository's _build (as jupyter-book's "
                             "option of the same name; keep it outside the repository)")
    args = parser.parse_args(argv)
    build = args.path_output.resolve() / "_build"
    try:
        if args.target in ("html", "all"):
            index = build_html(rebuild_all=args.rebuild_all, jobs=args.jobs, build=build)
            print(f"HTML book: {_show(index)}  (read it with `python -m tools.serve`)")
        if args.target in ("pdf", "all"):
            # after an HTML build the environment is fresh already
            pdf = build_pdf(rebuild_all=args.rebuild_all and args.target == "pdf", jobs=args.jobs, build=build)
            print(f"PDF book: {_show(pdf)}")
    except Exception as err:  # noqa: BLE001 - one clear line and a non-zero exit
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
