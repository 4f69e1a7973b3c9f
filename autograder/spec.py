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
ADAPTERS_FILENAME = "adapters.py"      # a spec's kernel-safe helper module (numpy and the stdlib only)
ADAPTERS_MODULE = "adapters"           # its name in the student's process


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

    cases(rng) -> list of dicts {argument name: value}: the inputs, drawn from ``rng``. Values are
        numeric arrays, or scalar and string options (``p=0.5``, ``mode="tanh"``), which the
        student's function receives as plain Python values.
    reference(**tensors) -> tensor or tuple of tensors, one per graded output (the names in
        ``outputs`` other than "_"), computed with torch; it gets float64 tensors (int64 for
        integer arrays, str for strings) on the grading device, and ``device=`` too if it has such
        a parameter.
    outputs: names of the values the student's function returns, in order; "_" marks a value
        that is not graded (e.g. a cache). One name = the function returns that value itself.
    call: optional adapter ``def name(student, **inputs)`` run in the student's process (numpy
        only): a plain function of this spec (its source is sent), or one of the spec's kernel-safe
        ``adapters.py`` module (the module is sent; adapters and references may share its code).
    uses: other student functions the part runs (through ``call``).
    allow: packages an answer may import besides the Python standard library; the recording
        environment contains exactly these (all parts of one notebook must agree).
    pure: the function must not modify its inputs — they are handed over read-only, so an in-place
        write fails in the call itself. False when the statement asks for in-place work (the
        adapter then checks what must be left behind through its consequences).
    new_arrays: the statement asks for new arrays: returning an input (or a view of it) fails.
    stable: the statement requires numerical stability: an overflow or invalid-value warning
        during a case fails that case.
    forbid: the library's own implementations of this part (dotted ``mlp_lib`` names besides
        ``mlp_lib.*.<function>``): never reachable while answers are recorded; a copy of their
        code is flagged for review.
    mutants: the catalogue of typical mistakes, each with the feedback a student who made it gets.
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
    new_arrays: bool = False
    stable: bool = False
    call: Callable | None = None
    uses: tuple[str, ...] = ()
    allow: tuple[str, ...] = ("numpy",)
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
        for name in ("outputs", "uses", "forbid", "allow"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
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
        for package in self.allow:
            if not isinstance(package, str) or not IDENTIFIER.match(package):
                raise ValueError(f"Part {self.id}: allow entries must be top-level package names, got {package!r}")
        for dotted in self.forbid:
            if not isinstance(dotted, str) or not DOTTED.match(dotted):
                raise ValueError(f"Part {self.id}: forbid entries must be dotted names, got {dotted!r}")
        for name, mutant in self.mutants.items():
            if not isinstance(mutant, Mutant):
                raise TypeError(f"Part {self.id}: mutant {name!r} must be a Mutant, got {type(mutant).__name__}")

    @property
    def graded_outputs(self) -> tuple[str, ...]:
        return tuple(n for n in self.outputs if n != IGNORED_OUTPUT)

    def plan(self, notebook: str, adapters_module: str | None = None) -> "PartPlan":
        call_name = call_source = None
        if self.call is not None:
            call_name = f"{self.id}__{self.call.__name__}"
            if adapters_module is not None and self.call.__module__ == adapters_module:
                call_source = f"module:{ADAPTERS_MODULE}:{self.call.__name__}"
            else:
                source = textwrap.dedent(inspect.getsource(self.call))
                call_source = source.replace(f"def {self.call.__name__}(", f"def {call_name}(", 1)
        return PartPlan(id=self.id, points=float(self.points), function=self.function, outputs=self.outputs,
                        rtol=self.rtol, atol=self.atol, pure=self.pure, new_arrays=self.new_arrays,
                        stable=self.stable, uses=self.uses, allow=self.allow, forbid=self.forbid,
                        call_name=call_name, call_source=call_source, notebook=notebook)


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
    new_arrays: bool
    stable: bool
    uses: tuple[str, ...]
    allow: tuple[str, ...]
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

    def kernel_part(self, cases: list) -> dict:
        """What the harness needs to record this part on ``cases`` (no expected value, ever)."""
        return {"function": self.function, "outputs": list(self.outputs), "inputs": list(cases[0]) if cases else [],
                "n_cases": len(cases), "call_name": self.call_name, "writable_inputs": not self.pure,
                "new_arrays": self.new_arrays}


@dataclass(frozen=True)
class AssignmentSpec:
    name: str
    parts: tuple[Part, ...]
    public_seed: int
    path: Path
    fingerprint: str
    notebook_of: Mapping[str, str]     # part id -> notebook name (file stem)
    setup: tuple[str, ...] = ("setup",)           # grade_ids of the instructor cells answers may rely on
    helpers: Mapping[str, str] = field(default_factory=dict)   # kernel-safe modules sent to the kernel
    adapters_module: str | None = None            # the grader-side name of the spec's adapters.py

    def part(self, part_id: str) -> Part:
        for p in self.parts:
            if p.id == part_id:
                return p
        raise KeyError(part_id)

    def plans(self) -> list[PartPlan]:
        return [p.plan(self.notebook_of[p.id], self.adapters_module) for p in self.parts]

    def notebooks(self) -> list[str]:
        return sorted(set(self.notebook_of.values()))


class SpecError(ValueError):
    """The grading spec or the source notebook is inconsistent (an authoring error)."""


def _safe_name(assignment: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", assignment)


def _exec_spec(path: Path, assignment: str):
    """Import grading.py (and its adapters.py, importable from it as ``adapters``)."""
    adapters_path = path.with_name(ADAPTERS_FILENAME)
    adapters = None
    saved = sys.modules.get(ADAPTERS_MODULE)
    try:
        if adapters_path.is_file():
            adapters = _import_file(f"_autograder_adapters_{_safe_name(assignment)}", adapters_path)
            sys.modules[ADAPTERS_MODULE] = adapters
        module = _import_file(f"_autograder_spec_{_safe_name(assignment)}", path)
    except SpecError:
        raise
    except Exception as exc:   # noqa: BLE001 - any error in an author's module is that assignment's problem
        raise SpecError(f"{path}: the grading spec does not load ({type(exc).__name__}: {exc})") from exc
    finally:
        if saved is None:
            sys.modules.pop(ADAPTERS_MODULE, None)
        else:
            sys.modules[ADAPTERS_MODULE] = saved
    return module, adapters, (adapters_path.read_text() if adapters is not None else None)


def _import_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module       # inspect.getsource needs it
    spec.loader.exec_module(module)
    return module


def load_spec(course, assignment: str) -> AssignmentSpec:
    """Import ``solutions/<assignment>/grading.py`` and check it against the source notebooks."""
    from . import notebooks

    path = course.spec_path(assignment)
    if not path.is_file():
        raise SpecError(f"{assignment}: no grading spec at {path}")
    source = path.read_bytes()
    module, adapters, adapters_source = _exec_spec(path, assignment)
    parts = getattr(module, "PARTS", None)
    if not isinstance(parts, (list, tuple)) or not parts or not all(isinstance(p, Part) for p in parts):
        raise SpecError(f"{path}: PARTS must be a non-empty list of autograder.spec.Part")
    ids = [p.id for p in parts]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{path}: duplicate part ids {sorted({i for i in ids if ids.count(i) > 1})}")
    public_seed = getattr(module, "PUBLIC_SEED", 0)
    if isinstance(public_seed, bool) or not isinstance(public_seed, int) or public_seed < 0:
        raise SpecError(f"{path}: PUBLIC_SEED must be a non-negative int, got {public_seed!r}")
    setup = tuple(getattr(module, "SETUP", ("setup",)))

    notebook_of: dict[str, str] = {}
    graded_cells: dict[str, tuple[str, dict]] = {}
    sources = course.source_notebooks(assignment)
    for nb_path in sources:
        try:
            nb = notebooks.read_trusted(nb_path)
        except (ValueError, OSError) as exc:
            raise SpecError(str(exc)) from exc
        locked_code = {notebooks.grade_id(c) for c in nb["cells"]
                       if c.get("cell_type") == "code" and notebooks.is_instructor_cell(c)
                       and not notebooks.is_test_cell(c)}
        if not set(setup) & locked_code and setup:
            raise SpecError(f"{nb_path.name}: none of the setup cells {list(setup)} (the spec's SETUP) is a "
                            "locked code cell of this notebook")
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
    allowed: dict[str, tuple] = {}
    for p in parts:
        nb_name, cell = graded_cells[p.id]
        meta = cell["metadata"]["nbgrader"]
        if float(meta.get("points", 0)) != float(p.points):
            raise SpecError(f"{assignment}/{nb_name}: cell {p.id} has points={meta.get('points')} "
                            f"but the Part says {p.points}")
        recorded = notebooks.recorded_part(cell)
        if recorded is not None and recorded != p.id:
            raise SpecError(f"{assignment}/{nb_name}: cell {p.id} records part {recorded!r}")
        if allowed.setdefault(nb_name, tuple(sorted(p.allow))) != tuple(sorted(p.allow)):
            raise SpecError(f"{assignment}/{nb_name}: the parts of one notebook must allow the same packages "
                            f"(answers are recorded together); {p.id} allows {list(p.allow)}")
        notebook_of[p.id] = nb_name
    digest = hashlib.sha256(source)
    if adapters_source is not None:
        digest.update(adapters_source.encode())
    return AssignmentSpec(name=assignment, parts=tuple(parts), public_seed=public_seed, path=path,
                          fingerprint=digest.hexdigest()[:16], notebook_of=notebook_of, setup=setup,
                          helpers={ADAPTERS_MODULE: adapters_source} if adapters_source is not None else {},
                          adapters_module=adapters.__name__ if adapters is not None else None)
