"""End to end through the real sandbox: a class graded with one command, a hostile class that earns nothing
it did not earn, Dask, the self-check, feedback, export and nbgrader's gradebook.

Slow (tens of seconds): every notebook runs in its own confined process. The hostile suite needs
root (the sandbox drops to a uid of its own; without root it cannot protect the grader).
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from agtools import ASSIGNMENT, POINTS, filled, submit, with_cell  # noqa: E402
from autograder import gradebook, references, results, sandbox  # noqa: E402
from autograder.cli import main  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.spec import load_spec  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder-e2e")]

LIMITS = {**agtools.FAST_LIMITS, "uid_base": 67400}   # uids of its own: tests run in parallel, and it checks none is left
FULL = sum(POINTS.values())
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the hostile suite needs root (uid isolation)")


@pytest.fixture(scope="module")
def world_readable_tmp():
    """A course directory others could reach: only the grader's own 0700/0600 modes protect its files."""
    path = Path(tempfile.mkdtemp(prefix="autograder-e2e-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def cli(course: Course, *args) -> int:
    return main(["--course", str(course.root), *args])


def scores(course, student):
    result = results.load(course, student, ASSIGNMENT)
    return result, result.part_points() if result else {}


def read_csv(path):
    return {row["student"]: row for row in csv.DictReader(io.StringIO(Path(path).read_text()))}


# -- a normal class --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graded_class(world_readable_tmp):
    course = agtools.make_course(world_readable_tmp / "class", limits=LIMITS)
    agtools.normal_class(course)
    assert cli(course, "references", "--device", "cpu") == 0
    assert cli(course, "grade", "--workers", "2", "--no-progress") == 0
    return course


def test_solution_scores_everything_release_nothing_partial_exactly_its_parts(graded_class):
    course = graded_class
    good, pts = scores(course, "good")
    assert (good.status.kind, good.score, good.max_score) == ("graded", FULL, FULL) and pts == POINTS
    blank_result, pts = scores(course, "blank")
    assert (blank_result.status.kind, blank_result.score) == ("graded", 0.0)
    partial, pts = scores(course, "partial")
    assert partial.score == FULL - POINTS["relu_forward"] - POINTS["softmax"]
    assert pts["relu_forward"] == 0 and pts["softmax"] == 0 and pts["affine_backward"] == POINTS["affine_backward"]
    softmax = partial.notebooks["affine"].parts["softmax"]
    assert "partly:normalised over the batch" in softmax.diagnoses, softmax.messages


def test_empty_folders_are_missing_not_dropped(graded_class):
    result, pts = scores(graded_class, "empty")
    assert result.status.kind == "missing" and result.score == 0


def test_a_renamed_notebook_is_found_by_its_cells_and_graded(graded_class):
    result, pts = scores(graded_class, "renamed")
    assert (result.status.kind, result.score) == ("graded", FULL) and pts == POINTS


def test_an_unknown_student_is_an_error_not_a_phantom(graded_class, capsys):
    assert cli(graded_class, "grade", "--student", "nosuch.student", "--no-progress") == 2
    assert "no student 'nosuch.student'" in capsys.readouterr().err
    assert not graded_class.submission_dir("nosuch.student", ASSIGNMENT).exists()
    assert "nosuch.student" not in graded_class.students()


def test_export_has_a_row_for_every_student_with_parts_total_and_status(graded_class, tmp_path):
    out = tmp_path / "grades.csv"
    assert cli(graded_class, "export", "--output", str(out)) == 0
    rows = read_csv(out)
    assert set(rows) == {"good", "partial", "blank", "empty", "renamed"}
    assert rows["good"]["score"] == f"{FULL:g}" and rows["good"]["status"] == "graded"
    partial = rows["partial"]
    assert partial[f"{ASSIGNMENT}/relu_forward"] == "0" and partial[f"{ASSIGNMENT}/affine_forward"] == "2"
    assert rows["empty"]["status"] == "missing" and rows["empty"]["score"] == "0"
    assert list(rows["good"])[:5] == ["student", "assignment", "status", "score", "max_score"]


def test_grades_are_in_nbgraders_gradebook(graded_class):
    assert gradebook.auto_scores(graded_class, ASSIGNMENT, "good") == POINTS
    partial = gradebook.auto_scores(graded_class, ASSIGNMENT, "partial")
    assert partial["softmax"] == 0 and partial["affine_forward"] == POINTS["affine_forward"]
    db = Path(graded_class.db_url.split("///")[1].split("?")[0])
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_feedback_explains_lost_points_without_hidden_tests_or_reference_values(graded_class):
    assert cli(graded_class, "feedback") == 0
    page = (graded_class.feedback_dir / "partial" / ASSIGNMENT / "affine.html").read_text()
    assert "softmax" in page and "known mistake" in page and "relu_forward" in page
    source = json.loads((graded_class.source_dir / ASSIGNMENT / "affine.ipynb").read_text())
    for cell in source["cells"]:
        for line in agtools.text(cell).split("\n"):
            hidden = "HIDDEN TESTS" in line or "record(" in line or "from autograder" in line
            assert not (hidden and line.strip() in page), line
    spec = load_spec(graded_class, ASSIGNMENT)
    data, _ = references.for_grading(graded_class, spec)
    for part_data in data.values():
        for case in part_data.cases:
            for arr in case.expected.values():
                for value in np.ravel(arr)[:50]:
                    if len(repr(float(value))) >= 10:           # not a round number like 0.0 or 1.0
                        assert f"{value:.5f}" not in page and repr(float(value))[:9] not in page


def test_regrading_is_idempotent_and_a_failed_regrade_keeps_earlier_results(graded_class, monkeypatch):
    course = graded_class
    before = {s: course.result_path(s, ASSIGNMENT).read_bytes() for s in ("good", "partial")}
    assert cli(course, "grade", "--student", "good", "--student", "partial", "--workers", "1", "--no-progress") == 0
    assert {s: course.result_path(s, ASSIGNMENT).read_bytes() for s in before} == before     # unchanged: skipped
    assert cli(course, "grade", "--student", "good", "--student", "partial", "--workers", "1", "--no-progress",
               "--regrade") == 0
    for s in before:
        old, new = (json.loads(x) for x in (before[s], course.result_path(s, ASSIGNMENT).read_bytes()))
        assert (old["score"], old["status"]) == (new["score"], new["status"])
        assert {k: v["points"] for k, v in old["notebooks"]["affine"]["parts"].items()} == \
               {k: v["points"] for k, v in new["notebooks"]["affine"]["parts"].items()}
    kept = {s: course.result_path(s, ASSIGNMENT).read_bytes() for s in before}

    def broken(*args, **kwargs):
        raise sandbox.SandboxError("simulated grader-side failure")

    monkeypatch.setattr(sandbox, "run", broken)
    assert cli(course, "grade", "--student", "good", "--student", "partial", "--workers", "1", "--no-progress",
               "--regrade") == 2
    for s in kept:
        assert course.result_path(s, ASSIGNMENT).read_bytes() == kept[s]
    assert gradebook.auto_scores(course, ASSIGNMENT, "good") == POINTS


def test_self_check_runs_public_cases(graded_class, capsys):
    nb = graded_class.submission_dir("good", ASSIGNMENT) / "affine.ipynb"
    assert cli(graded_class, "check", str(nb), "--assignment", ASSIGNMENT) == 0
    out = capsys.readouterr().out
    assert "public cases" in out and "ok softmax" in out
    release = graded_class.release_dir / ASSIGNMENT / "affine.ipynb"
    assert cli(graded_class, "check", str(release)) == 1
    assert "public tests in code cell 7 (softmax) failed: NotImplementedError" in capsys.readouterr().out


def test_self_check_recognises_a_renamed_copy_by_its_graded_cells(graded_class, tmp_path, capsys):
    copy = tmp_path / "affine (1).ipynb"          # a browser's name for a second download
    copy.write_bytes((graded_class.submission_dir("good", ASSIGNMENT) / "affine.ipynb").read_bytes())
    assert cli(graded_class, "check", str(copy)) == 0
    assert f"{ASSIGNMENT}/affine.ipynb" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["check", "{tmp}/missing.ipynb"], "no such notebook"),
    (["check", "{tmp}/bad.ipynb"], "not a readable notebook"),
    (["check", "{tmp}/empty.ipynb"], "matches no assignment's notebook"),
    (["check", "{tmp}/empty.ipynb", "--assignment", "nope"], "unknown assignment 'nope'"),
    (["grade", "--student", "nobody", "--no-progress"], "no student 'nobody'"),
    (["export", "--assignment", "nope"], "nope: no grading spec"),
])
def test_user_mistakes_get_one_line_errors_and_exit_status_2(graded_class, tmp_path, capsys, args, message):
    (tmp_path / "bad.ipynb").write_text("not json")
    (tmp_path / "empty.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                      "nbformat_minor": 5}))
    assert cli(graded_class, *[a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_a_folder_that_is_not_a_course_is_an_error(tmp_path, capsys):
    assert main(["--course", str(tmp_path / "nowhere"), "grade", "--no-progress"]) == 2
    assert "is not a course" in capsys.readouterr().err


# -- a hostile class ---------------------------------------------------------------------------------
def _sandbox_processes(limits) -> list[int]:
    uids = {str(limits.uid_base + n) for n in range(limits.slots)}
    return [pid for pid, st in sandbox._processes()
            if st.get("Uid", "").split()[:1] and st["Uid"].split()[0] in uids and not st.get("State", "").startswith("Z")]


@root_only
def test_hostile_submissions_earn_nothing_they_did_not_earn_and_the_batch_finishes(world_readable_tmp):
    course = agtools.make_course(world_readable_tmp / "hostile", limits=LIMITS)
    assert cli(course, "references", "--device", "cpu") == 0
    submit(course, "canary", filled())
    assert cli(course, "grade", "--student", "canary", "--workers", "1", "--no-progress") == 0
    canary = course.result_path("canary", ASSIGNMENT).read_bytes()
    secret = (course.private_dir / "secret").read_bytes()
    (course.release_dir / ASSIGNMENT / "data").mkdir()
    (course.release_dir / ASSIGNMENT / "data" / "hint.txt").write_text("a data file of the release")
    cases = agtools.hostile_submissions(course)
    for student, (nb, _, _) in cases.items():
        submit(course, student, nb)
    course.submission_dir("h_empty_folder", ASSIGNMENT).mkdir(parents=True)
    cases["h_empty_folder"] = (None, 0.0, "missing")
    args = ["grade", "--workers", "2", "--no-progress"]
    for student in cases:
        args += ["--student", student]
    assert cli(course, *args) == 0

    problems = []
    for student, (_, expected, status) in cases.items():
        result = results.load(course, student, ASSIGNMENT)
        if result is None:
            problems.append(f"{student}: no result")
            continue
        low, high = expected if isinstance(expected, tuple) else (expected, expected)
        if not (low <= result.score <= high) or not result.status.kind.startswith(status):
            problems.append(f"{student}: {result.score} ({result.status}), expected {expected} ({status})")
        if result.status.kind != "graded" and not result.message:
            problems.append(f"{student}: status {result.status} without a message")
    assert not problems, "\n".join(problems)

    nb = {s: results.load(course, s, ASSIGNMENT).notebooks["affine"] for s in cases if s != "h_empty_folder"}
    assert "LEAK" not in nb["h_reads_secrets"].log and nb["h_reads_secrets"].log.count("blocked FileNotFoundError") == 6
    assert course.result_path("canary", ASSIGNMENT).read_bytes() == canary
    assert (course.private_dir / "secret").read_bytes() == secret
    assert secret.strip().decode() not in json.dumps([n.to_dict() for n in nb.values()])
    assert "No module named 'torch' while answers are recorded" in " ".join(
        nb["h_torch_in_function"].parts["relu_forward"].messages)
    assert any("imports mlp_lib.layers, which is not available" in n for n in nb["h_mlp_lib"].notes)
    assert "numeric array" in " ".join(nb["h_eq_objects"].parts["relu_forward"].messages)
    assert any("re-inserted" in n for n in nb["h_deleted_tests"].notes)
    assert "ignored the interrupt" in nb["h_swallow_interrupt"].status.reason
    assert len(nb["h_huge_output"].log) < 20_000
    assert nb["h_warnings"].parts["relu_forward"].status == "passed"
    assert "DATA a data file of the release" in nb["h_reads_release_data"].log
    assert _sandbox_processes(course.limits) == []


def test_without_root_the_sandbox_still_isolates_cwd_environment_and_limits(graded_class, monkeypatch, capsys):
    """The unsealed path (a student's own check): no namespaces or uid change; the rest applies, and the
    import guard refuses what answers may not use."""
    from autograder import jobs

    monkeypatch.setattr(jobs, "sealed_by_default", lambda: False)
    monkeypatch.setenv("AUTOGRADER_TEST_LEAK", "visible-to-the-kernel")
    probe = ("import os, resource, sys\nprint('CWD', os.getcwd())\nprint('ENV', sorted(os.environ))\n"
             "print('AS', resource.getrlimit(resource.RLIMIT_AS))\nprint('UID', os.getuid())\n"
             "print('TORCH LOADED', 'torch' in sys.modules)\n"
             "try:\n    import mlp_lib\nexcept ImportError as e:\n    print('REFUSED', e)")
    path = graded_class.work / "probe" / "affine.ipynb"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(with_cell(filled(), probe, after="setup")))
    from autograder.selfcheck import check_notebook

    result = check_notebook(graded_class, path, assignment=ASSIGNMENT, public_tests=False)
    assert result.status.kind == "graded" and result.score == FULL
    log = result.log
    assert "autograder-job-" in log.split("CWD", 1)[1].split("\n", 1)[0]
    assert "AUTOGRADER_TEST_LEAK" not in log and "AUTOGRADER_SECRET" not in log
    limit = LIMITS["memory_mb"] << 20
    assert f"AS ({limit}, {limit})" in log
    assert f"UID {os.getuid()}" in log
    assert "TORCH LOADED False" in log          # the student's process never loads torch for them
    assert "REFUSED No module named 'mlp_lib' while answers are recorded" in log
