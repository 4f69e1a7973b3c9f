"""Read notebooks, tell nbgrader's cell kinds apart, and rebuild what is executed.

The submission is untrusted and only its *code* matters: instructor cells (locked and test cells)
are taken from the source notebook by grade_id, whatever the student did to them (edited,
deleted, re-tagged, wrong schema_version), and missing ones are re-inserted where they belong —
nbgrader's ``OverwriteCells`` with ``add_missing_cells=True``, done on plain data so that a
broken submission costs that student only.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
_RECORD_CALL = re.compile(r"""record\(\s*["']([^"']+)["']""")


class Unreadable(ValueError):
    """The submission is not a notebook we can read (the student's status becomes 'unreadable')."""


@dataclass
class Cell:
    """One cell to execute (or to show): plain data, no nbformat objects."""

    cell_type: str
    source: str
    grade_id: str | None = None
    origin: str = "student"          # "student" (the submission) or "instructor" (restored from source)
    part: str | None = None          # part id when this is a graded test cell
    index: int = 0                   # position in the executed notebook
    raw: dict | None = field(default=None, repr=False)   # the submitted cell (student cells; for formgrader)


@dataclass
class Restored:
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)
    anchored: bool = True        # at least one instructor cell was found (by grade_id or by its text)


# -- nbgrader metadata -----------------------------------------------------
def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def grade_id(cell: dict) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_instructor_cell(cell: dict) -> bool:
    """Locked or autograded cells that are not answers: the student may not change them."""
    m = nbgrader_meta(cell)
    return bool(m) and not m.get("solution", False) and bool(m.get("locked", False) or m.get("grade", False))


def is_test_cell(cell: dict) -> bool:
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution", False)


def is_solution_cell(cell: dict) -> bool:
    return bool(nbgrader_meta(cell).get("solution", False))


def test_cells(nb: dict) -> dict[str, dict]:
    """grade_id -> autograded test cell of a (trusted) source notebook."""
    return {grade_id(c): c for c in nb["cells"] if is_test_cell(c) and grade_id(c)}


def recorded_part(cell: dict) -> str | None:
    """The part id a test cell's hidden section records, if it has one."""
    hidden = hidden_section(source_text(cell))
    match = _RECORD_CALL.search(hidden) if hidden else None
    return match.group(1) if match else None


def source_text(cell: dict) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


# -- hidden tests ------------------------------------------------------------
def hidden_section(source: str) -> str:
    lines, inside, out = source.split("\n"), False, []
    for line in lines:
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif inside:
            out.append(line)
    return "\n".join(out)


def strip_hidden_tests(source: str) -> str:
    """The source without its ``### BEGIN/END HIDDEN TESTS`` regions.

    Same rule as nbgrader's ``ClearHiddenTests`` (a test checks they agree); reimplemented so that
    grading workers need not import nbgrader.
    """
    if HIDDEN_BEGIN not in source:
        return source
    out, inside = [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            if inside:
                raise ValueError("nested BEGIN HIDDEN TESTS")
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("BEGIN HIDDEN TESTS without END HIDDEN TESTS")
    return "\n".join(out)


# -- reading ------------------------------------------------------------------
def read_trusted(path: Path) -> dict:
    """A source notebook (instructor-authored) as plain JSON data, with its nbgrader metadata checked.

    Plain ``json``: importing nbformat/nbgrader costs seconds, and grading workers never need
    them. ``release`` runs nbgrader's own metadata validation on the same notebooks.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path}: not an nbformat 4 notebook")
    seen = set()
    for cell in nb["cells"]:
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        gid = meta.get("grade_id")
        where = f"{path.name}: cell {gid!r}"
        if meta.get("schema_version") != 3:
            raise ValueError(f"{where}: nbgrader schema_version must be 3, got {meta.get('schema_version')!r}")
        if not isinstance(gid, str) or not gid:
            raise ValueError(f"{path.name}: an nbgrader cell has no grade_id")
        if gid in seen:
            raise ValueError(f"{where}: duplicate grade_id")
        seen.add(gid)
        for key in ("solution", "grade", "locked"):
            if not isinstance(meta.get(key), bool):
                raise ValueError(f"{where}: nbgrader metadata needs a boolean {key!r}")
        if meta["grade"] and not isinstance(meta.get("points"), (int, float)):
            raise ValueError(f"{where}: a graded cell needs 'points'")
    return nb


def read_submission(data: bytes, *, max_bytes: int) -> list[dict]:
    """The raw cells of a submitted notebook, leniently; :class:`Unreadable` when impossible."""
    if len(data) > max_bytes:
        raise Unreadable(f"the notebook is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
    try:
        text = data.decode("utf-8")
        raw = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unreadable(f"the file is not valid notebook JSON ({type(exc).__name__}: {str(exc)[:120]})") from None
    except RecursionError:
        raise Unreadable("the file is not valid notebook JSON (nested too deeply)") from None
    if not isinstance(raw, dict):
        raise Unreadable("the file is JSON but not a notebook (no top-level object)")
    major = raw.get("nbformat")
    if major == 3:
        import nbformat

        try:
            logging.getLogger("traitlets").disabled = True
            raw = nbformat.reads(text, as_version=4, capture_validation_error={})
        except Exception as exc:   # noqa: BLE001 - any failure of an old-format conversion
            raise Unreadable(f"could not convert the nbformat 3 notebook ({type(exc).__name__})") from None
    elif major != 4:
        raise Unreadable(f"unsupported notebook format version {major!r} (expected 4)")
    cells = raw.get("cells")
    if not isinstance(cells, list):
        raise Unreadable("the notebook has no list of cells")
    return [c for c in cells if isinstance(c, dict)]


# -- restoring ------------------------------------------------------------------------------------
def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _visible(text: str) -> str:
    """A cell's text without its hidden test section (what a student sees of an instructor cell)."""
    try:
        return _normalized(strip_hidden_tests(text))
    except ValueError:           # unbalanced markers typed by a student: the text as it is
        return _normalized(text)


def restore(source_cells: list[dict], submitted: list[dict], part_ids: set[str]) -> Restored:
    """The cells to execute: the student's cells, with every instructor cell taken from the source.

    - a submitted cell whose grade_id names an instructor cell is replaced by the source cell;
    - a submitted cell without that metadata whose text is exactly an instructor cell's is taken to be
      that cell (the metadata was lost: a copy into a fresh notebook, an editor that drops it);
    - instructor cells missing from the submission are re-inserted after the nearest preceding
      source cell that is present;
    - everything else (answers, cells the student added) is kept as the student wrote it.
    """
    owned = {grade_id(c): c for c in source_cells if is_instructor_cell(c) and grade_id(c)}
    by_text: dict[str, list[str]] = {}
    for gid, c in owned.items():
        for text in {_normalized(source_text(c)), _visible(source_text(c))}:
            if text:
                by_text.setdefault(text, []).append(gid)
    notes: list[str] = []
    out: list[Cell] = []
    placed: dict[str, int] = {}          # grade_id -> position in `out` (any source grade_id)
    source_ids = [grade_id(c) for c in source_cells]
    recognised = 0
    for cell in submitted:
        ctype = cell.get("cell_type")
        gid = grade_id(cell)
        if gid not in owned:
            same = [g for g in by_text.get(_visible(source_text(cell)), []) if g not in placed]
            if len(same) == 1 and ctype == owned[same[0]].get("cell_type"):
                gid = same[0]
                recognised += 1
        if gid in owned:
            if gid in placed:
                notes.append(f"dropped a duplicate of instructor cell {gid!r}")
                continue
            src = owned[gid]
            if ctype != src.get("cell_type") or _visible(source_text(cell)) != _visible(source_text(src)):
                notes.append(f"restored instructor cell {gid!r}, which had been changed")
            placed[gid] = len(out)
            out.append(_instructor_cell(src, part_ids))
            continue
        if ctype not in ("code", "markdown", "raw"):
            notes.append(f"skipped a cell of unknown type {str(ctype)[:20]!r}")
            continue
        if gid is not None and gid in source_ids and gid not in placed:
            placed[gid] = len(out)
        out.append(Cell(cell_type=ctype, source=source_text(cell), grade_id=gid, origin="student", raw=cell))
    if recognised:
        notes.append(f"recognised {recognised} instructor cells by their text: their grading metadata was lost")
    found = len(placed)
    # re-insert missing instructor cells, in source order, after their nearest preceding neighbour
    for pos, src in enumerate(source_cells):
        gid = grade_id(src)
        if gid not in owned or gid in placed:
            continue
        anchor = -1
        for prev in reversed(source_ids[:pos]):
            if prev is not None and prev in placed:
                anchor = placed[prev]
                break
        at = anchor + 1
        out.insert(at, _instructor_cell(src, part_ids))
        for key, value in placed.items():
            if value >= at:
                placed[key] = value + 1
        placed[gid] = at
        notes.append(f"re-inserted missing instructor cell {gid!r}")
    for i, cell in enumerate(out):
        cell.index = i
    return Restored(cells=out, notes=notes, anchored=found > 0 or not owned)


def _instructor_cell(src: dict, part_ids: set[str]) -> Cell:
    gid = grade_id(src)
    return Cell(cell_type=src.get("cell_type", "code"), source=source_text(src), grade_id=gid,
                origin="instructor", part=gid if (gid in part_ids and is_test_cell(src)) else None)


def solution_namespace_cells(source_cells: list[dict]) -> list[str]:
    """Code defining the instructor's answers: the answer cells and the locked code cells before the last one.

    Used to check a spec in-process (its solution gets every point, its mutants lose theirs);
    demonstration cells after the last answer are not run.
    """
    code = [c for c in source_cells if c.get("cell_type") == "code" and not is_test_cell(c)]
    last = max((i for i, c in enumerate(code) if is_solution_cell(c)), default=-1)
    return [source_text(c) for i, c in enumerate(code)
            if is_solution_cell(c) or (i < last and is_instructor_cell(c))]
