"""Book build benchmark: cold build (every notebook executed) and warm rebuild.

    python -m bench.book            # HTML: cold, then warm (nothing changed)
    python -m bench.book --pdf      # also the PDF after the warm HTML build
    python -m bench.book --jobs 1   # execute notebooks one at a time

Targets (issue: "cold build <= 5 minutes on 2 cores; warm rebuild <= 30 s"):
the cold build starts from nothing (no Sphinx environment, no jupyter cache),
exactly ``make html`` on a fresh clone; the warm rebuild is the same command
again with nothing changed. Both build into a temporary folder
(``python -m tools.build_book html --path-output <tmp>``), so the repository's
``_build/`` and its execution cache are left alone.

Times are wall-clock and include the notebooks' execution, so they depend on
the machine's load: the CPU count and load average are printed with them.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 300.0
WARM_TARGET_S = 30.0


def _timed(args: list[str]) -> float:
    """Seconds taken by ``python -m tools.build_book <args>`` (raises if it fails)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tools.build_book", *args], cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"`python -m tools.build_book {' '.join(args)}` failed:\n{tail}")
    return seconds


def _verdict(seconds: float, target: float) -> str:
    return f"{'ok' if seconds <= target else 'OVER'} (target <= {target:.0f} s)"


def run(*, pdf: bool = False, jobs: int | None = None) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from tools.build_book import toc_notebooks

    out = Path(tempfile.mkdtemp(prefix="bench-book-"))
    extra = ["--path-output", str(out), *(["--jobs", str(jobs)] if jobs else [])]
    notebooks = toc_notebooks()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"book build benchmark: {len(notebooks)} notebook(s) in _toc.yml, "
          f"{os.cpu_count()} CPU(s), load average {load:.1f} before the cold build")

    try:
        return _measure(extra, pdf=pdf)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _measure(extra: list[str], *, pdf: bool) -> dict[str, float]:
    results = {"cold_html_s": _timed(["html", *extra])}
    print(f"  cold HTML build (all notebooks executed): {results['cold_html_s']:7.1f} s  "
          + _verdict(results["cold_html_s"], COLD_TARGET_S))
    results["warm_html_s"] = _timed(["html", *extra])
    print(f"  warm HTML rebuild (nothing changed):      {results['warm_html_s']:7.1f} s  "
          + _verdict(results["warm_html_s"], WARM_TARGET_S))
    if pdf:
        results["pdf_s"] = _timed(["pdf", *extra])
        print(f"  PDF (single-page build + Chromium print): {results['pdf_s']:7.1f} s")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average after: {load:.1f}")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.book", description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", action="store_true", help="also time the PDF build")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks executed in parallel")
    args = parser.parse_args(argv)
    run(pdf=args.pdf, jobs=args.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
