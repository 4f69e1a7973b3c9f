"""One matcher for collect, grade and check: which assignment and notebook is this, whatever its name?

On the real chapters: ch01 and ch09 share seven grade_ids (``mlp_forward`` among them), so grade_ids
alone cannot always tell; a student who pasted the cells into a fresh notebook has none left.
"""
from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from autograder import matching  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.selfcheck import _identify  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def course():
    return Course.open(ROOT, work=ROOT / "_build" / "matching-test-work")


def release(name: str) -> dict:
    return json.loads((ROOT / "exercises" / name / f"{name}.ipynb").read_text())


def without_metadata(nb: dict) -> dict:
    """The cells copied into a fresh notebook: no nbgrader metadata, no ids."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell["metadata"] = {}
        cell.pop("id", None)
    return nb


def only(nb: dict, ids) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if agtools.gid(c) in ids]
    return nb


def test_every_release_is_recognised_by_its_grade_ids(course):
    for name in course.assignments():
        match = matching.identify(release(name), course)
        assert (match.assignment, match.notebook, match.how) == (name, name, "grade_ids"), name


def test_cells_copied_into_a_fresh_notebook_are_recognised_by_their_content(course):
    for name in course.assignments():
        match = matching.identify(without_metadata(release(name)), course)
        assert (match.assignment, match.how) == (name, "content"), name
        assert match.confidence > 0.9


def test_shared_grade_ids_are_told_apart_by_content(course):
    shared = {"setup", "mlp-forward-text", "mlp-forward-impl", "mlp_forward"}
    for name in ("ch01_perceptron_mlp", "ch09_dropout"):
        match = matching.identify(only(release(name), shared), course)
        assert (match.assignment, match.how) == (name, "grade_ids+content"), name


def test_a_notebook_with_nothing_of_the_course_is_not_guessed(course):
    stranger = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                "cells": [{"cell_type": "code", "metadata": {}, "source": "print('hello')", "outputs": []},
                          {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "setup"}},
                           "source": "import numpy as np", "outputs": []}]}
    match = matching.identify(stranger, course)
    # only the grade_id and the setup cell every chapter has: equally good everywhere, so no answer
    assert not match.found and "several notebooks" in match.reason
    assert len(match.alternatives) > 1 and {"ch01_perceptron_mlp", "ch09_dropout"} <= {a for a, _ in match.alternatives}
    del stranger["cells"][1]["metadata"]["nbgrader"]
    stranger["cells"][1]["source"] = "import pandas as pd"
    match = matching.identify(stranger, course)
    assert not match.found and not match.alternatives and "match no assignment" in match.reason


def test_answers_filled_in_a_fresh_notebook_are_recognised(course):
    nb = without_metadata(release("ch05_relu_variants"))
    for cell in nb["cells"]:                  # the student rewrote every markdown cell
        if cell["cell_type"] == "markdown":
            cell["source"] = "my notes"
    match = matching.identify(nb, course)
    assert (match.assignment, match.how) == ("ch05_relu_variants", "content")


@pytest.fixture
def work_course(tmp_path):
    course = agtools.make_course(tmp_path / "course")
    agtools.add_written(course)
    return course


def test_a_canvas_named_file_is_the_notebook_to_grade(work_course):
    path = agtools.submit(work_course, "ada", agtools.filled(), name="lovelaceada_12345_678901_affine")
    found = matching.submission_files(work_course, "ada", agtools.ASSIGNMENT)
    assert found.files == {"affine": path} and found.how == {"affine": "grade_ids"} and not found.problems


def test_two_notebooks_for_one_are_reported_and_block_grading(work_course):
    agtools.submit(work_course, "bob", agtools.filled(), name="affine")
    agtools.submit(work_course, "bob", agtools.blank(), name="affine-Copy1")
    found = matching.submission_files(work_course, "bob", agtools.ASSIGNMENT)
    assert found.blocked and found.files == {}
    assert "2 notebooks for affine.ipynb: affine-Copy1.ipynb, affine.ipynb" in found.problems[0]


def test_stray_files_are_reported_not_graded(work_course):
    agtools.submit(work_course, "eve", agtools.filled(), name="affine")
    agtools.submit_to(work_course, "eve", agtools.ASSIGNMENT, agtools.written_nb(), name="other")
    agtools.submit(work_course, "eve", b"{not json", name="broken")
    link = work_course.submission_dir("eve", agtools.ASSIGNMENT) / "sneaky.ipynb"
    os.symlink("/etc/passwd", link)
    found = matching.submission_files(work_course, "eve", agtools.ASSIGNMENT)
    assert not found.blocked and set(found.files) == {"affine"}
    text = "\n".join(found.problems)
    assert "other.ipynb: a notebook of fixture_written" in text
    assert "broken.ipynb: not notebook JSON" in text
    assert "sneaky.ipynb: not a plain file" in text and "symbolic link" in text


def test_self_check_uses_the_same_matcher(work_course, tmp_path):
    path = tmp_path / "downloaded (3).ipynb"
    path.write_text(json.dumps(without_metadata(agtools.filled())))
    assert _identify(work_course, path, None, ValueError) == (agtools.ASSIGNMENT, agtools.NOTEBOOK)
    junk = tmp_path / "junk.ipynb"
    junk.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}))
    with pytest.raises(ValueError, match="matches no assignment's notebook"):
        _identify(work_course, junk, None, ValueError)
