"""Grading specs: what each graded part of an assignment calls, on which inputs, against which reference.

A spec is the module ``solutions/<assignment>/grading.py`` defining ``PARTS`` (a list of
:class:`Part`) and optionally ``PUBLIC_SEED`` (int, the seed of the cases ``check`` shows
students). See autograder/README.md for a complete example.

The spec runs in the grader only (it may import torch); what crosses to a worker or to the
student's process is the torch-free :class:`PartPlan`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import compare

GRADE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
IGNORED_OUTPUT = "_"


@dataclass(frozen=True)
class Mutant:
    """A typical wrong implementation of a part's function (same signature as the graded function).

    ``feedback`` is what a student who made this mistake is told, in the student's language: the
    mistake and where to look. ``book`` is the label of the book section that explains the right
    way (``ch03-local-gradients``). ``diagnosis`` is the code of
    :data:`autograder.compare.DIAGNOSES` the generic diagnosis should name for it, or None.
    """

    fn: Callable
    diagnosis: str | None = None
    feedback: str = ""
    book: str | None = None

    def __post_init__(self):
        if not callable(self.fn):
            raise TypeError(f"Mutant.fn must be callable, got {type(self.fn).__name__}")
        if self.diagnosis is not None and self.diagnosis not in compare.DIAGNOSES:
            raise ValueError(f"Mutant.diagnosis must be one of {sorted(compare.DIAGNOSES)} or None, "
                             f"got {self.diagnosis!r}")


@dataclass(frozen=True)
class Part:
    """One graded part = one nbgrader test cell (``id`` is its grade_id).

    cases(rng) -> list of dicts {argument name: ndarray}: the inputs, drawn from ``rng``.
    reference(**tensors) -> tensor or tuple of tensors, one per graded output (the names in
        ``outputs`` other than "_"), computed with torch; it gets float64 tensors (int64 for
        integer arrays) on the grading device, and ``device=`` too if it has such a parameter.
    outputs: names of the values the student's function returns, in order; "_" marks a value
        that is not graded (e.g. a cache). One name = the function returns that value itself.
    call: optional kernel-side adapter ``def name(student, **inputs)`` (numpy only, self-contained)
        for functions that need other student functions, e.g. a backward pass fed the cache of
        the student's own forward; ``uses`` names those other functions.
    forbid: dotted names the answer must not use for this part besides ``mlp_lib.*.<function>``.
    pure: the function must not modify its inputs in place.
    """

    id: str
    points: float
    function: str
    cases: Callable
    reference: Callable
    outputs: tuple[str, ...] = ("out",)
    rtol: float = 1e-7
    atol: float = 1e-10
    pure: bool = True
    call: Callable | None = None
    uses: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    mutants: Mapping[str, Mutant] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.id, str) or not GRADE_ID.match(self.id):
            raise ValueError(f"Part.id must be an nbgrader grade_id ([A-Za-z_][A-Za-z0-9_-]*), got {self.id!r}")
        if isinstance(self.points, bool) or not isinstance(self.points, (int, float)) or not self.points > 0:
            raise ValueError(f"Part {self.id}: points must be > 0, got {self.points!r}")
        for name in (self.function, *self.uses):
            if not isinstance(name, str) or not IDENTIFIER.match(name):
                raise ValueError(f"Part {self.id}: function names must be identifiers, got {name!r}")
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "uses", tuple(self.uses))
        object.__setattr__(self, "forbid", tuple(self.forbid))
        if not self.outputs or any(not IDENTIFIER.match(n) for n in self.outputs):
            raise ValueError(f"Part {self.id}: outputs must be a non-empty tuple of identifiers, got {self.outputs!r}")
        graded = [n for n in self.outputs if n != IGNORED_OUTPUT]
        if not graded or len(set(graded)) != len(graded):
            raise ValueError(f"Part {self.id}: outputs need at least one graded name and no duplicates, "
                             f"got {self.outputs!r}")
        for name in ("cases", "reference"):
            if not callable(getattr(self, name)):
                raise TypeError(f"Part {self.id}: {name} must be callable")
        if not (0 < self.rtol < 1) or not (0 <= self.atol < 1):
            raise ValueError(f"Part {self.id}: need 0 < rtol < 1 and 0 <= atol < 1")
        if self.call is not None:
            if not inspect.isfunction(self.call) or self.call.__name__ == "<lambda>":
                raise TypeError(f"Part {self.id}: call must be a plain def (its source is sent to the kernel)")
            params = list(inspect.signature(self.call).parameters)
            if not params or params[0] != "student":
                raise TypeError(f"Part {self.id}: call's first parameter must be 'student'")
        for dotted in self.forbid:
            if not isinstance(dotted, str) or not DOTTED.match(dotted):
                raise ValueError(f"Part {self.id}: forbid entries must be dotted names, got {dotted!r}")
        for name, mutant in self.mutants.items():
            if not isinstance(mutant, Mutant):
                raise TypeError(f"Part {self.id}: mutant {name!r} must be a Mutant, got {type(mutant).__name__}")

    @property
    def graded_outputs(self) -> tuple[str, ...]:
        return tuple(n for n in self.outputs if n != IGNORED_OUTPUT)

    def plan(self, notebook: str) -> "PartPlan":
        call_source = textwrap.dedent(inspect.getsource(self.call)) if self.call is not None else None
        return PartPlan(id=self.id, points=float(self.points), function=self.function, outputs=self.outputs,
                        rtol=self.rtol, atol=self.atol, pure=self.pure, uses=self.uses, forbid=self.forbid,
                        call_name=self.call.__name__ if self.call is not None else None,
                        call_source=call_source, notebook=notebook)


@dataclass(frozen=True)
class PartPlan:
    """The picklable, torch-free description of a part that workers and the kernel receive."""

    id: str
    points: float
    function: str
    outputs: tuple[str, ...]
    rtol: float
    atol: float
    pure: bool
    uses: tuple[str, ...]
    forbid: tuple[str, ...]
    call_name: str | None
    call_source: str | None
    notebook: str

    @property
    def graded_outputs(self) -> tuple[str, ...]:
        return tuple(n for n in self.outputs if n != IGNORED_OUTPUT)

    @property
    def functions(self) -> tuple[str, ...]:
        """Every student function this part runs (the graded one first)."""
        return (self.function, *[u for u in self.uses if u != self.function])


@dataclass(frozen=True)
class AssignmentSpec:
    name: str
    parts: tuple[Part, ...]
    public_seed: int
    path: Path
    fingerprint: str
    notebook_of: Mapping[str, str]     # part id -> notebook name (file stem)

    def part(self, part_id: str) -> Part:
        for p in self.parts:
            if p.id == part_id:
                return p
        raise KeyError(part_id)

    def plans(self) -> list[PartPlan]:
        return [p.plan(self.notebook_of[p.id]) for p in self.parts]

    def notebooks(self) -> list[str]:
        return sorted(set(self.notebook_of.values()))


class SpecError(ValueError):
    """The grading spec or the source notebook is inconsistent (an authoring error)."""


def load_spec(course, assignment: str) -> AssignmentSpec:
    """Import ``solutions/<assignment>/grading.py`` and check it against the source notebooks."""
    from . import notebooks

    path = course.spec_path(assignment)
    if not path.is_file():
        raise SpecError(f"{assignment}: no grading spec at {path}")
    source = path.read_bytes()
    module_name = f"_autograder_spec_{re.sub(r'[^0-9A-Za-z_]', '_', assignment)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module       # inspect.getsource needs it
    spec.loader.exec_module(module)
    parts = getattr(module, "PARTS", None)
    if not isinstance(parts, (list, tuple)) or not parts or not all(isinstance(p, Part) for p in parts):
        raise SpecError(f"{path}: PARTS must be a non-empty list of autograder.spec.Part")
    ids = [p.id for p in parts]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{path}: duplicate part ids {sorted({i for i in ids if ids.count(i) > 1})}")
    public_seed = getattr(module, "PUBLIC_SEED", 0)
    if isinstance(public_seed, bool) or not isinstance(public_seed, int) or public_seed < 0:
        raise SpecError(f"{path}: PUBLIC_SEED must be a non-negative int, got {public_seed!r}")

    notebook_of: dict[str, str] = {}
    graded_cells: dict[str, tuple[str, dict]] = {}
    for nb_path in course.source_notebooks(assignment):
        nb = notebooks.read_trusted(nb_path)
        for gid, cell in notebooks.test_cells(nb).items():
            if gid in graded_cells:
                raise SpecError(f"{assignment}: grade_id {gid!r} appears in two notebooks")
            graded_cells[gid] = (nb_path.stem, cell)
    missing = [p.id for p in parts if p.id not in graded_cells]
    if missing:
        raise SpecError(f"{path}: parts {missing} have no autograded test cell with that grade_id")
    unspecified = sorted(set(graded_cells) - set(ids))
    if unspecified:
        raise SpecError(f"{assignment}: autograded test cells {unspecified} have no Part in {path.name}")
    for p in parts:
        nb_name, cell = graded_cells[p.id]
        meta = cell["metadata"]["nbgrader"]
        if float(meta.get("points", 0)) != float(p.points):
            raise SpecError(f"{assignment}/{nb_name}: cell {p.id} has points={meta.get('points')} "
                            f"but the Part says {p.points}")
        recorded = notebooks.recorded_part(cell)
        if recorded is not None and recorded != p.id:
            raise SpecError(f"{assignment}/{nb_name}: cell {p.id} records part {recorded!r}")
        notebook_of[p.id] = nb_name
    return AssignmentSpec(name=assignment, parts=tuple(parts), public_seed=public_seed, path=path,
                          fingerprint=hashlib.sha256(source).hexdigest()[:16], notebook_of=notebook_of)
