"""``release``: exercises/ is generated from solutions/ by nbgrader's ``generate_assignment``, never edited.

The release is generated into a temporary course and then swapped in, so ``release`` and
``release --check`` (generate, then compare byte for byte with exercises/) see exactly the same
output. nbgrader's preprocessors do the work (solutions cleared, hidden tests removed, cells
locked, checksums); the gradebook is not touched (``SaveCells`` is left out — ``grade`` records
the cells in the gradebook itself), and the grading spec ``grading.py`` is never copied.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from pathlib import Path

from .course import RELEASE_IGNORE, Course


class ReleaseError(RuntimeError):
    pass


def _generate(source_root: Path, assignment: str, out_root: Path) -> None:
    """nbgrader generate_assignment of solutions/<assignment> (under source_root) into out_root/exercises."""
    from nbgrader.converters.generate_assignment import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import SaveCells
    from nbgrader.utils import capture_log
    from traitlets.config import Config

    work = out_root
    (work / "solutions").mkdir(parents=True, exist_ok=True)
    shutil.copytree(source_root / "solutions" / assignment, work / "solutions" / assignment,
                    ignore=shutil.ignore_patterns(*RELEASE_IGNORE), dirs_exist_ok=True)
    config = Config()
    config.CourseDirectory.root = str(work)
    config.CourseDirectory.source_directory = "solutions"
    config.CourseDirectory.release_directory = "exercises"
    config.CourseDirectory.ignore = list(RELEASE_IGNORE)
    config.CourseDirectory.db_url = f"sqlite:///{work / 'unused.db'}"
    config.GenerateAssignment.no_database = True
    default = GenerateAssignment.class_traits()["preprocessors"].default()
    config.GenerateAssignment.preprocessors = [p for p in default if p is not SaveCells]
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    app = GenerateAssignment(coursedir=coursedir, config=config)
    app.force = True
    result = capture_log(app)
    if not result["success"]:
        raise ReleaseError(f"nbgrader generate_assignment {assignment} failed:\n{result.get('log', '')}"
                           f"\n{result.get('error', '')}")


def generate_release(course: Course, assignment: str, dest: Path) -> Path:
    """Generate the release of ``assignment`` into ``dest``/exercises/<assignment>; return that path."""
    _generate(course.root, assignment, dest)
    return dest / "exercises" / assignment


def release(course: Course, assignments: list[str] | None = None) -> list[str]:
    """Regenerate exercises/<assignment>/ for each assignment; return the ones written."""
    names = assignments or course.assignments()
    written = []
    for name in names:
        _validate_spec(course, name)
        with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
            fresh = generate_release(course, name, Path(tmp))
            target = course.release_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = course.release_dir / f".{name}.new"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(fresh, staging)
            old = course.release_dir / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        written.append(name)
    return written


def check(course: Course, assignments: list[str] | None = None) -> list[str]:
    """Differences between exercises/ and what ``release`` would write ([] = up to date)."""
    problems = []
    names = assignments or course.assignments()
    if not assignments and course.release_dir.is_dir():
        for stale in sorted(p.name for p in course.release_dir.iterdir()
                            if p.is_dir() and not p.name.startswith(".")):
            if stale not in names:
                problems.append(f"exercises/{stale} has no source in solutions/")
    for name in names:
        try:
            _validate_spec(course, name)
        except Exception as exc:   # noqa: BLE001 - report every authoring error, not just the first
            problems.append(f"{name}: {exc}")
            continue
        with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
            fresh = generate_release(course, name, Path(tmp))
            problems += [f"{name}: {p}" for p in _compare_trees(fresh, course.release_dir / name)]
    return problems


def _validate_spec(course: Course, assignment: str) -> None:
    from .spec import load_spec

    load_spec(course, assignment)


def _compare_trees(expected: Path, actual: Path) -> list[str]:
    if not actual.is_dir():
        return [f"exercises/{actual.name} is missing (run `python -m autograder release`)"]
    want = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    have = {p.relative_to(actual) for p in actual.rglob("*") if p.is_file()}
    problems = [f"missing from exercises/: {p}" for p in sorted(want - have)]
    problems += [f"not generated from solutions/ (remove it): {p}" for p in sorted(have - want)]
    for rel in sorted(want & have):
        if not filecmp.cmp(expected / rel, actual / rel, shallow=False):
            problems.append(f"{rel} differs from the generated release (edited by hand, or solutions/ changed "
                            f"without `python -m autograder release`)")
    return problems
