"""Manual grading in nbgrader's own formgrader, on top of this grader's results.

* **Autograded notebooks** where the formgrader looks for them
  (``autograded/<student>/<assignment>/<notebook>.ipynb``): the submission with the instructor's
  cells restored from the source (:func:`autograder.notebooks.restore`), each cell carrying the
  source's nbgrader metadata, and **sanitized**: the student's outputs keep plain text and PNG/JPEG
  images only (no HTML, JavaScript, SVG or widgets), the student's Markdown goes through bleach, so
  nothing a student wrote runs in the instructor's browser (whose session can run code on the
  server). A first cell says where the points come from and that outputs are the student's own.
* **Which cells need a person**: nbgrader's manually graded answer cells (``solution`` and
  ``grade``) and task cells. Their grades get ``needs_manual_grade`` (an answer left as released
  gets 0 and needs nobody, as in nbgrader); auto-graded parts never need a person, but a score
  entered in the formgrader overrides one (see :mod:`autograder.grades`).
* **The formgrader's own "Autograde" and "Generate feedback"** would run plain nbgrader, as the
  server's user, on untrusted notebooks, and plain nbgrader's feedback shows the hidden tests.
  This module is a Jupyter server extension (enabled by ``make venv``; ``python -m autograder
  formgrader`` starts a server with it) that routes those buttons to ``python -m autograder grade``
  and ``feedback``, and "Generate" to ``release``; ``nbgrader_config.py`` (:func:`configure`)
  refuses ``nbgrader autograde`` and ``nbgrader generate_feedback`` on the command line.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import matching, notebooks
from .course import Course, write_private
from .jobs import NotAFile

SAFE_MIMETYPES = ("text/plain", "image/png", "image/jpeg")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
REFUSED_NBGRADER_COMMANDS = ("autograde", "generate_feedback", "feedback")


@dataclass(frozen=True)
class ManualCell:
    """A cell of the source that a person grades."""

    grade_id: str
    notebook: str
    points: float
    kind: str                  # "answer" (a manually graded answer cell) or "task"
    cell_type: str


def manual_cells(course: Course, assignment: str) -> dict[str, ManualCell]:
    """grade_id -> the assignment's manually graded cells, in source order (from the trusted source)."""
    out = {}
    for path in course.source_notebooks(assignment):
        for cell in notebooks.read_trusted(path)["cells"]:
            meta = notebooks.nbgrader_meta(cell)
            if not meta.get("grade") or not (meta.get("solution") or meta.get("task")):
                continue
            out[meta["grade_id"]] = ManualCell(meta["grade_id"], path.stem, float(meta.get("points", 0)),
                                               "answer" if meta.get("solution") else "task", cell.get("cell_type", ""))
    return out


# -- sanitizing ---------------------------------------------------------------------------------------
def sanitize_outputs(outputs) -> list[dict]:
    """Plain text and raster images only; anything that a browser would run or interpret is dropped."""
    clean = []
    for out in outputs if isinstance(outputs, list) else []:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            clean.append({"output_type": "stream", "name": "stderr" if out.get("name") == "stderr" else "stdout",
                          "text": notebooks.source_text({"source": out.get("text", "")})})
        elif kind == "error":
            clean.append({"output_type": "error", "ename": str(out.get("ename", ""))[:200],
                          "evalue": str(out.get("evalue", ""))[:2000],
                          "traceback": [str(t)[:5000] for t in out.get("traceback", [])][:200]
                          if isinstance(out.get("traceback"), list) else []})
        elif kind in ("display_data", "execute_result"):
            data = out.get("data") if isinstance(out.get("data"), dict) else {}
            kept = {}
            for mime in SAFE_MIMETYPES:
                value = data.get(mime)
                value = "".join(v for v in value if isinstance(v, str)) if isinstance(value, list) else value
                if not isinstance(value, str):
                    continue
                # an image goes into <img src="data:...">: only base64, nothing that could close the attribute
                if mime != "text/plain" and not _BASE64.fullmatch(value):
                    continue
                kept[mime] = value
            if not kept:
                continue
            item = {"output_type": kind, "data": kept, "metadata": {}}
            if kind == "execute_result":
                item["execution_count"] = None
            clean.append(item)
    return clean


_TAGS = ["p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "code", "pre",
         "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
         "sup", "sub"]


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "title", "alt", "align"):
        return True
    if tag == "a" and name == "href":
        return value.startswith(("http://", "https://", "mailto:", "#"))
    if tag == "img" and name == "src":
        return value.startswith(("http://", "https://", "data:image/png;base64,", "data:image/jpeg;base64,"))
    return False


def sanitize_markdown(text: str, attachments: dict | None = None) -> str:
    """The student's Markdown rendered here (raw HTML escaped, links limited to http(s)/mailto,
    images to http(s) and embedded PNG/JPEG) and cleaned with bleach; returned as one HTML block,
    which the formgrader shows as it is (no Markdown of the student's is parsed again)."""
    import bleach
    import mistune

    for name, bundle in (attachments or {}).items():
        for mime in ("image/png", "image/jpeg"):
            data = bundle.get(mime)
            if isinstance(data, list):
                data = "".join(data)
            if isinstance(data, str):
                text = text.replace(f"attachment:{name}", f"data:{mime};base64,{data.strip()}")
                break
    rendered = mistune.create_markdown(escape=True, plugins=["strikethrough", "table", "math"])(text)
    clean = bleach.clean(rendered, tags=_TAGS, attributes=_allowed_attribute,
                         protocols=["http", "https", "mailto", "data"], strip=False)
    # one HTML block: a blank line would end it and let Markdown parse the rest again
    clean = re.sub(r"\n[ \t]*(?=\n)", "\n&#32;", clean.strip())
    return f"<div class=\"student-answer\">\n{clean}\n</div>"


def _attachments(cell: dict) -> dict:
    att = cell.get("attachments")
    if not isinstance(att, dict):
        return {}
    out = {}
    for name, bundle in att.items():
        if isinstance(name, str) and isinstance(bundle, dict):
            images = {k: v for k, v in bundle.items() if k in ("image/png", "image/jpeg")
                      and isinstance(v, str) and _BASE64.fullmatch(v)}
            if images:
                out[name] = images
    return out


# -- the autograded notebook ---------------------------------------------------------------------------
def autograded_notebook(source: dict, release: dict | None, submission: bytes | None, *, part_ids: set[str],
                        manual: dict[str, ManualCell], header: str, max_bytes: int) -> tuple[dict, dict[str, bool]]:
    """(notebook JSON for the formgrader, {manual grade_id: answered}) for one submitted notebook."""
    notes = []
    try:
        raw = notebooks.read_submission(submission, max_bytes=max_bytes) if submission is not None else None
    except notebooks.Unreadable as exc:
        raw, notes = None, [f"The submission could not be read ({exc}); the released notebook is shown."]
    if raw is None:
        raw = copy.deepcopy((release or source)["cells"])
        if submission is None:
            notes.append("Nothing was submitted for this notebook; the released notebook is shown.")
    restored = notebooks.restore(source["cells"], raw, part_ids)
    by_id = {notebooks.grade_id(c): c for c in source["cells"] if notebooks.grade_id(c)}
    released = {notebooks.grade_id(c): notebooks.source_text(c) for c in (release or {}).get("cells", [])
                if notebooks.grade_id(c)}
    cells, seen, written = [], set(), {}
    for cell in restored.cells:
        if cell.origin == "instructor":
            out = copy.deepcopy(by_id[cell.grade_id])
            if out.get("cell_type") == "code":
                out["outputs"], out["execution_count"] = [], None
        else:
            out = _student_cell(cell, by_id)
        if out.get("metadata", {}).get("nbgrader", {}).get("grade_id"):
            gid = out["metadata"]["nbgrader"]["grade_id"]
            if gid in seen:                      # a duplicated answer cell: grade the first one
                out["metadata"].pop("nbgrader")
            else:
                written[gid] = cell.source       # what the student wrote (before sanitizing)
            seen.add(gid)
        out["id"] = uuid.uuid4().hex[:12]
        cells.append(out)
    answered = {}
    for gid, m in manual.items():
        if gid not in seen:                      # deleted or re-tagged: show the release's (empty) cell
            src = copy.deepcopy(by_id[gid])
            src["source"] = released.get(gid, "")
            src["id"] = uuid.uuid4().hex[:12]
            if src.get("cell_type") == "code":
                src["outputs"], src["execution_count"] = [], None
            cells.insert(_position_after_neighbour(cells, source["cells"], gid), src)
            notes.append(f"The answer cell {gid!r} was missing from the submission and was re-inserted empty.")
            answered[gid] = m.kind == "task"
            continue
        text = written.get(gid, "")
        answered[gid] = m.kind == "task" or (bool(text.strip()) and " ".join(text.split()) !=
                                             " ".join(released.get(gid, "").split()))
    intro = {"cell_type": "markdown", "id": uuid.uuid4().hex[:12], "metadata": {},
             "source": "\n\n".join([header, *notes, "Outputs are the student's own (not re-run by the grader); "
                                                    "HTML, scripts and other rich outputs were removed."])}
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": [intro, *cells],
          "metadata": {k: v for k, v in source.get("metadata", {}).items() if k in ("kernelspec", "language_info")}}
    return nb, answered


def _student_cell(cell: notebooks.Cell, by_id: dict) -> dict:
    raw = cell.raw or {}
    out = {"cell_type": cell.cell_type, "metadata": {}, "source": cell.source}
    src = by_id.get(cell.grade_id)
    if src is not None and notebooks.is_solution_cell(src):
        # the source's metadata, never the submission's (a student could claim points or lock cells)
        out["metadata"]["nbgrader"] = copy.deepcopy(notebooks.nbgrader_meta(src))
    if cell.cell_type == "code":
        out["outputs"] = sanitize_outputs(raw.get("outputs"))
        out["execution_count"] = None
    else:
        out["source"] = sanitize_markdown(cell.source, _attachments(raw))
    return out


def _position_after_neighbour(cells: list[dict], source_cells: list[dict], gid: str) -> int:
    order = [notebooks.grade_id(c) for c in source_cells]
    placed = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(cells)}
    for prev in reversed(order[:order.index(gid)]):
        if prev in placed and prev is not None:
            return placed[prev] + 1
    return len(cells)


def write_autograded(course: Course, result) -> dict[str, bool]:
    """Write the formgrader's notebooks of one result; returns {manual grade_id: answered}."""
    manual = manual_cells(course, result.assignment)
    found = matching.submission_files(course, result.student, result.assignment)
    folder = course.autograded_dir / result.student / result.assignment
    answered = {}
    for name in result.notebooks:
        source_path = course.source_dir / result.assignment / f"{name}.ipynb"
        release_path = course.release_dir / result.assignment / f"{name}.ipynb"
        path = found.files.get(name)
        target = folder / f"{name}.ipynb"
        if path is None:
            target.unlink(missing_ok=True)        # nothing to grade by hand; formgrader lists no notebook
            answered.update({g: False for g, m in manual.items() if m.notebook == name})
            continue
        source = notebooks.read_trusted(source_path)
        release = json.loads(release_path.read_text()) if release_path.is_file() else None
        nb_result = result.notebooks[name]
        header = (f"**Autograded** by `python -m autograder grade`: {nb_result.score:g} / {nb_result.max_score:g} "
                  f"points on the hidden tests (status: {nb_result.status}). Per-part details are in "
                  "`result.json` and the student's feedback page.")
        try:
            submitted = matching.submitted_bytes(course, path)
        except (NotAFile, OSError):   # a link: its result already says unreadable
            target.unlink(missing_ok=True)
            continue
        nb, got = autograded_notebook(
            source, release, submitted, part_ids=set(nb_result.parts),
            manual={g: m for g, m in manual.items() if m.notebook == name}, header=header,
            max_bytes=course.limits.max_notebook_mb << 20)
        answered.update(got)
        folder.mkdir(parents=True, exist_ok=True)
        write_private(target, json.dumps(nb, indent=1).encode())
    return answered


# -- nbgrader_config.py -------------------------------------------------------------------------------------
def configure(c, config_file: str) -> None:
    """Fill nbgrader's configuration from this course (called by the repository's ``nbgrader_config.py``)."""
    _refuse_plain_nbgrader(sys.argv)
    root = Path(config_file).resolve().parent
    course = Course.open(root)

    def rel(path: Path) -> str:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)

    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = rel(course.source_dir)
    c.CourseDirectory.release_directory = rel(course.release_dir)
    c.CourseDirectory.submitted_directory = rel(course.submitted_dir)
    c.CourseDirectory.autograded_directory = rel(course.autograded_dir)
    c.CourseDirectory.feedback_directory = rel(course.feedback_dir)
    c.CourseDirectory.db_url = course.db_url
    # the grader's own files next to the notebooks are not part of any submission
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "grading.py",
                                "result.json", "submission.json", ".replaced"]
    # defence in depth: the formgrader's renderer sanitizes Markdown and outputs too
    c.HTMLExporter.sanitize_html = True
    # nbgrader's Gradebook runs the `alembic` executable of this environment when it creates a database
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _refuse_plain_nbgrader(argv: list[str]) -> None:
    prog = Path(argv[0]).name if argv else ""
    is_nbgrader = prog == "nbgrader" or (prog == "__main__.py" and Path(argv[0]).parent.name == "nbgrader")
    if is_nbgrader and len(argv) > 1 and argv[1] in REFUSED_NBGRADER_COMMANDS:
        raise SystemExit(f"nbgrader {argv[1]} is disabled in this course: it would run student notebooks "
                         "unconfined and put the hidden tests into the feedback. Use `python -m autograder "
                         f"{'grade' if argv[1] == 'autograde' else 'feedback'}` instead.")


# -- the Jupyter server extension -----------------------------------------------------------------------------
def _jupyter_server_extension_points():
    return [{"module": "autograder.formgrader"}]


def _run_autograder(root: str, *args: str) -> dict:
    """Run ``python -m autograder`` for a formgrader button; nbgrader's result shape."""
    proc = subprocess.run([sys.executable, "-m", "autograder", "--course", root, *args],
                          capture_output=True, text=True, cwd=root, timeout=3600)
    log = (proc.stdout + proc.stderr)[-20000:]
    if proc.returncode == 0:
        return {"success": True, "log": log}
    return {"success": False, "log": log, "error": f"python -m autograder {' '.join(args)} exited {proc.returncode}"}


def _handlers():
    """Handlers replacing the formgrader's buttons that would run plain nbgrader (nbgrader's auth and XSRF)."""
    from nbgrader.server_extensions.formgrader.base import BaseApiHandler, check_notebook_dir, check_xsrf
    from tornado import web
    from tornado.ioloop import IOLoop

    class _Routed(BaseApiHandler):
        async def _run(self, *args):
            root = os.path.abspath(self.coursedir.root)
            result = await IOLoop.current().run_in_executor(None, lambda: _run_autograder(root, *args))
            self.write(json.dumps(result))

    class Autograde(_Routed):
        @web.authenticated
        @check_xsrf
        @check_notebook_dir
        async def post(self, assignment_id, student_id):
            await self._run("grade", "--assignment", assignment_id, "--student", student_id, "--regrade",
                            "--no-progress")

    class GenerateFeedback(_Routed):
        @web.authenticated
        @check_xsrf
        @check_notebook_dir
        async def post(self, assignment_id, student_id=None):
            extra = ["--student", student_id] if student_id else []
            await self._run("feedback", "--assignment", assignment_id, *extra)

    class Generate(_Routed):
        @web.authenticated
        @check_xsrf
        @check_notebook_dir
        async def post(self, assignment_id):
            await self._run("release", "--assignment", assignment_id)

    return [
        (r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde", Autograde),
        (r"/formgrader/api/assignment/([^/]+)/generate_feedback", GenerateFeedback),
        (r"/formgrader/api/assignment/([^/]+)/([^/]+)/generate_feedback", GenerateFeedback),
        (r"/formgrader/api/assignment/([^/]+)/assign", Generate),
    ]


def _load_jupyter_server_extension(serverapp) -> None:
    """Register the routed buttons. Loaded before nbgrader's formgrader (extensions load in name
    order, and tornado tries rules in the order they were added), so these handlers win."""
    from jupyter_server.utils import url_path_join

    webapp = serverapp.web_app
    base = webapp.settings["base_url"]
    webapp.add_handlers(".*$", [(url_path_join(base, pattern.lstrip("/")), handler)
                                for pattern, handler in _handlers()])
    serverapp.log.info("autograder: the formgrader's Autograde, Generate feedback and Generate buttons run "
                       "python -m autograder")


load_jupyter_server_extension = _load_jupyter_server_extension


def server_command(course: Course, *, port: int = 8888, token: str | None = None, browser: bool = False) -> list[str]:
    """The command starting a Jupyter server for grading by hand (course root as its root directory)."""
    cmd = [sys.executable, "-m", "jupyter_server", f"--ServerApp.root_dir={course.root}",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--ServerApp.jpserver_extensions=autograder.formgrader=True",
           "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True"]
    if os.geteuid() == 0:
        # the grader runs as root to confine student code (its sandbox drops privileges); the
        # formgrader shows only sanitized notebooks, so nothing of the student's runs in the page
        cmd.append("--ServerApp.allow_root=True")
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if not browser:
        cmd.append("--ServerApp.open_browser=False")
    return cmd
