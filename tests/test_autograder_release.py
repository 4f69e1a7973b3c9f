"""exercises/ is exactly what nbgrader's generate_assignment makes of solutions/ (the CI check), and the release
never carries solutions, hidden tests or the grading spec.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from autograder import release  # noqa: E402
from autograder.cli import main  # noqa: E402
from autograder.course import Course  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_repository_exercises_match_their_solutions(capsys):
    assert main(["--course", str(REPO), "release", "--check"]) == 0, capsys.readouterr().out


def test_fixture_exercises_match_their_solutions():
    assert release.check(Course.open(agtools.FIXTURE)) == []


def test_an_empty_solutions_folder_releases_nothing_and_checks_clean(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    assert main(["--course", str(tmp_path), "release"]) == 0
    assert main(["--course", str(tmp_path), "release", "--check"]) == 0
    assert "no assignments" in capsys.readouterr().out


def test_release_check_fails_on_hand_edits_and_stale_assignments(tmp_path, capsys):
    course = agtools.make_course(tmp_path)
    nb_path = course.release_dir / agtools.ASSIGNMENT / f"{agtools.NOTEBOOK}.ipynb"
    nb = json.loads(nb_path.read_text())
    nb["cells"][0]["source"] = "edited by hand"
    nb_path.write_text(json.dumps(nb))
    (course.release_dir / "old_assignment").mkdir()
    problems = release.check(course)
    assert any("differs from the generated release" in p for p in problems)
    assert any("old_assignment has no source" in p for p in problems)
    assert main(["--course", str(tmp_path), "release", "--check"]) == 1
    assert main(["--course", str(tmp_path), "release"]) == 0
    (course.release_dir / "old_assignment").rmdir()
    assert release.check(course) == []


def test_the_release_has_stubs_and_public_tests_only(tmp_path):
    course = agtools.make_course(tmp_path)
    (course.root / "solutions" / agtools.ASSIGNMENT / "adapters.py").write_text("import numpy as np\n")
    release.release(course)
    folder = course.release_dir / agtools.ASSIGNMENT
    assert sorted(p.name for p in folder.iterdir()) == [f"{agtools.NOTEBOOK}.ipynb"]      # no grading.py, adapters.py
    text = (folder / f"{agtools.NOTEBOOK}.ipynb").read_text()
    assert "HIDDEN TESTS" not in text and "record(" not in text and "BEGIN SOLUTION" not in text
    assert "np.maximum(x, 0.0)" not in text and "raise NotImplementedError()" in text
    assert "Public tests" in text
