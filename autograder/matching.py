"""Which assignment and source notebook a notebook belongs to, whatever its file name — one matcher
for ``collect``, ``grade`` and ``check``.

Students rename, re-download and copy notebooks (``affine (1).ipynb``, Canvas's
``lovelaceada_12345_678901_ch05_relu_variants.ipynb``, the cells pasted into a fresh notebook).
A notebook is recognised

1. by the nbgrader ``grade_id`` of its cells: the source notebook sharing the most of them;
2. by its cells' *content* where the grade_ids cannot tell (two chapters share ``setup`` and
   ``mlp_forward``) or were lost (cells copied into a new notebook): the locked cells' text (the
   instructions and public tests, whitespace-insensitive) and the functions the answer cells define.

Nothing is guessed: a notebook that matches nothing, or two candidates equally well, is reported
as such, and two files of one student that match the same source notebook are a problem for the
instructor to settle (:func:`submission_files`), never silently picked.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks

# Without grade_ids, a content match needs this many of the source's cells and answer functions,
MIN_FEATURES = 3
# covering this share of them,
MIN_RECALL = 0.25
# and this many times the runner-up's evidence (otherwise it is ambiguous).
MIN_LEAD = 1.5
_DEF = re.compile(r"^(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)


@dataclass(frozen=True)
class SourceNotebook:
    """What identifies one source notebook (built from the trusted source only)."""

    assignment: str
    notebook: str
    grade_ids: frozenset
    locked: frozenset          # hashes of the locked cells' normalised text, as released
    answers: frozenset         # names the answer cells define (def/class)

    @property
    def key(self) -> tuple[str, str]:
        return self.assignment, self.notebook


@dataclass(frozen=True)
class Match:
    """The verdict on one notebook. ``assignment`` is None when it could not be identified."""

    assignment: str | None
    notebook: str | None
    how: str = "none"                      # "file name" | "grade_ids" | "grade_ids+content" | "content" | "none"
    confidence: float = 0.0                # the share of the source's grade_ids (or content) found
    alternatives: tuple = ()               # (assignment, notebook) pairs that matched equally well
    reason: str = ""                       # why nothing was identified

    @property
    def found(self) -> bool:
        return self.assignment is not None


@dataclass
class SubmissionFiles:
    """The files of ``submitted/<student>/<assignment>/``, each matched to a source notebook."""

    student: str
    assignment: str
    files: dict = field(default_factory=dict)       # source notebook name -> Path
    how: dict = field(default_factory=dict)         # source notebook name -> Match.how
    problems: list = field(default_factory=list)    # messages for the instructor
    blocked: bool = False                           # a problem that must be settled before grading

    @property
    def submitted(self) -> bool:
        return bool(self.files) or bool(self.problems)


# -- fingerprints ---------------------------------------------------------------------------------
def _normalised(text: str) -> str:
    return " ".join(text.split())


def _digest(text: str) -> str:
    return hashlib.sha1(_normalised(text).encode()).hexdigest()[:16]


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(_DEF.findall(source))
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _fingerprint_source(assignment: str, path: Path) -> SourceNotebook:
    nb = notebooks.read_trusted(path)
    ids, locked, answers = set(), set(), set()
    for cell in nb["cells"]:
        gid = notebooks.grade_id(cell)
        if gid:
            ids.add(gid)
        text = notebooks.source_text(cell)
        if notebooks.is_instructor_cell(cell):
            # the released text: hidden tests removed (a submission never has them)
            if text.strip():
                locked.add(_digest(notebooks.strip_hidden_tests(text)))
        elif notebooks.is_solution_cell(cell) and cell.get("cell_type") == "code":
            answers |= _defined_names(text)
    return SourceNotebook(assignment=assignment, notebook=path.stem, grade_ids=frozenset(ids),
                          locked=frozenset(locked), answers=frozenset(answers))


@functools.lru_cache(maxsize=8)
def _index_cached(key: tuple) -> tuple[SourceNotebook, ...]:
    return tuple(_fingerprint_source(assignment, Path(path)) for assignment, path, _ in key)


def course_index(course) -> tuple[SourceNotebook, ...]:
    """Fingerprints of every source notebook of the course (cached until a source file changes)."""
    key = tuple((a, str(p), p.stat().st_mtime_ns) for a in course.assignments() for p in course.source_notebooks(a))
    return _index_cached(key)


@dataclass(frozen=True)
class _Submitted:
    grade_ids: frozenset
    cells: frozenset
    defined: frozenset


def _submitted_fingerprint(nb) -> _Submitted:
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    ids, digests, defined = set(), set(), set()
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        gid = notebooks.grade_id(cell)
        if gid:
            ids.add(gid)
        text = notebooks.source_text(cell)
        if text.strip():
            digests.add(_digest(text))
        if cell.get("cell_type") == "code":
            defined |= _defined_names(text)
    return _Submitted(frozenset(ids), frozenset(digests), frozenset(defined))


def _evidence(sub: _Submitted, src: SourceNotebook) -> int:
    """How many of the source's locked cells and answer functions the submission holds."""
    return len(sub.cells & src.locked) + len(sub.defined & src.answers)


def _recall(sub: _Submitted, src: SourceNotebook) -> float:
    return _evidence(sub, src) / max(1, len(src.locked) + len(src.answers))


# -- identification -------------------------------------------------------------------------------
def identify(nb, course, *, assignments=None) -> Match:
    """The assignment and source notebook of ``nb`` (notebook JSON, already parsed).

    ``assignments`` restricts the candidates. grade_ids decide first; the cells' content breaks
    ties between notebooks sharing grade_ids and identifies notebooks whose grade_ids were lost.
    """
    candidates = [s for s in course_index(course) if assignments is None or s.assignment in assignments]
    if not candidates:
        return Match(None, None, reason="the course has no source notebooks to compare with")
    sub = _submitted_fingerprint(nb)
    by_ids = {s.key: len(sub.grade_ids & s.grade_ids) for s in candidates}
    best_ids = max(by_ids.values())
    if best_ids > 0:
        tied = [s for s in candidates if by_ids[s.key] == best_ids]
        if len(tied) == 1:
            src = tied[0]
            return Match(src.assignment, src.notebook, "grade_ids", best_ids / max(1, len(src.grade_ids)))
        match = _by_content(sub, tied, how="grade_ids+content", strict=False)
        if match.found:
            return match
        return Match(None, None, alternatives=match.alternatives or tuple(s.key for s in tied),
                     reason="its graded cells match several notebooks equally well")
    return _by_content(sub, candidates, how="content", strict=True)


def _by_content(sub: _Submitted, candidates, *, how: str, strict: bool) -> Match:
    """The candidate holding the most of the submission's content. ``strict`` (no grade_id agrees):
    enough evidence, a fair share of the source, and a clear lead; else the most evidence wins."""
    scored = sorted(((_evidence(sub, s), s) for s in candidates), key=lambda t: -t[0])
    best, src = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0
    if best == 0 or (strict and (best < MIN_FEATURES or _recall(sub, src) < MIN_RECALL)):
        return Match(None, None, reason="its cells match no assignment's notebook (graded cells missing or renamed, "
                                        "instructions and answer functions not found)")
    if best <= runner_up or (strict and best < MIN_LEAD * runner_up):
        close = tuple(s.key for score, s in scored if score * (MIN_LEAD if strict else 1) >= best)
        return Match(None, None, alternatives=close, reason="it matches several notebooks equally well")
    return Match(src.assignment, src.notebook, how, _recall(sub, src))


def read_notebook_json(path: Path, *, max_bytes: int):
    """The JSON of a notebook file, or raises ValueError with a reason (too large, not JSON)."""
    with open(path, "rb") as fh:
        return _parse(fh.read(max_bytes + 1), max_bytes)


def submitted_bytes(course, path: Path) -> bytes | None:
    """A file of ``submitted/`` read the way grading reads it (no links anywhere below ``submitted/``,
    no hard links, at most the notebook size limit + 1 byte); raises ``jobs.NotAFile``."""
    from .jobs import read_plain_file

    return read_plain_file(Path(path), course.submitted_dir, course.limits.max_notebook_mb << 20)


def _parse(data: bytes | None, max_bytes: int):
    if data is None:
        raise ValueError("no such file")
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes >> 20} MiB")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not notebook JSON ({type(exc).__name__})") from None


def identify_file(course, path: Path, *, assignment: str | None = None) -> Match:
    """:func:`identify` for a file; the release layout (``<assignment>/<notebook>.ipynb``) is
    taken at its word. Raises ValueError when the file is not readable notebook JSON."""
    path = Path(path)
    folder, stem = path.resolve().parent.name, path.stem
    for a in ([assignment] if assignment else course.assignments()):
        if stem in {p.stem for p in course.source_notebooks(a)} and (assignment or a == folder):
            return Match(a, stem, "file name", 1.0)
    nb = read_notebook_json(path, max_bytes=course.limits.max_notebook_mb << 20)
    return identify(nb, course, assignments=[assignment] if assignment else None)


# -- a student's folder ---------------------------------------------------------------------------
def submission_files(course, student: str, assignment: str) -> SubmissionFiles:
    """Match every notebook of ``submitted/<student>/<assignment>/`` to a source notebook.

    A file named like a source notebook is that notebook; any other is identified by its cells.
    Files of another assignment, unreadable or unidentifiable files and links are reported (and
    not graded); two files for one source notebook block the assignment until one is removed.
    """
    from .jobs import NotAFile

    found = SubmissionFiles(student=student, assignment=assignment)
    folder = course.submission_dir(student, assignment)
    if folder.is_symlink() or folder.parent.is_symlink() or not folder.is_dir():
        return found                               # grading reports the link (jobs.read_plain_file)
    names = {p.stem for p in course.source_notebooks(assignment)}
    limit = course.limits.max_notebook_mb << 20
    claims: dict[str, list[tuple[Path, str]]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() != ".ipynb":
            continue
        if path.stem in names:
            claims.setdefault(path.stem, []).append((path, "file name"))
            continue
        try:
            nb = _parse(submitted_bytes(course, path), limit)
        except NotAFile as exc:
            found.problems.append(f"{path.name}: not a plain file ({exc}); not graded")
            continue
        except ValueError as exc:
            found.problems.append(f"{path.name}: {exc}; it matches none of {assignment}'s notebooks (not graded)")
            continue
        match = identify(nb, course)
        if match.found and match.assignment == assignment:
            claims.setdefault(match.notebook, []).append((path, match.how))
        elif match.found:
            found.problems.append(f"{path.name}: a notebook of {match.assignment} ({match.notebook}.ipynb), "
                                  f"not of {assignment} (not graded)")
        else:
            found.problems.append(f"{path.name}: {match.reason} (not graded)")
    for name, paths in sorted(claims.items()):
        if len(paths) > 1:
            found.problems.append(f"{len(paths)} notebooks for {name}.ipynb: {', '.join(p.name for p, _ in paths)}; "
                                  "keep one (not graded until then)")
            found.blocked = True
        else:
            found.files[name], found.how[name] = paths[0]
    return found
