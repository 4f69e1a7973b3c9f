"""The class report: one offline HTML page per assignment with the score histogram, per-part pass
rate, frequent diagnoses, late and missing submissions, and the similarity ranking with
side-by-side views — and it changes no score."""
from __future__ import annotations

import csv
import io
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
import answers  # noqa: E402
from agtools import ASSIGNMENT, WRONG, filled, submit  # noqa: E402
from autograder.cli import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder-report")]


def cli(course, *args) -> int:
    return main(["--course", str(course.root), *args])


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    course = agtools.make_course(tmp_path_factory.mktemp("report") / "course", limits=agtools.FAST_LIMITS)
    (course.root / "autograder.toml").write_text((course.root / "autograder.toml").read_text()
                                                 + f"\n[assignments.{ASSIGNMENT}]\ndue = 2025-10-06T23:59:00Z\n"
                                                   "penalty_per_day = 0.1\n")
    cross = "cross-entropy-impl"
    submit(course, "ana", filled({cross: answers.ORIGINAL}))
    submit(course, "ben", filled({cross: answers.RENAMED_COPY}))
    submit(course, "cai", filled({cross: answers.FROM_MLP_LIB}))
    for i, text in enumerate(answers.INDEPENDENT):
        submit(course, f"ind{i}", filled({cross: text, **WRONG}))
    course.submission_dir("gus", ASSIGNMENT).mkdir(parents=True)           # handed in nothing
    (course.submission_dir("ben", ASSIGNMENT) / "timestamp.txt").write_text("2025-10-08 10:00:00.000000 UTC\n")
    assert cli(course, "references", "--device", "cpu") == 0
    assert cli(course, "grade", "--workers", "2", "--no-progress") == 0
    before = {s: course.result_path(s, ASSIGNMENT).read_bytes() for s in course.students()}
    assert cli(course, "report") == 0
    assert {s: course.result_path(s, ASSIGNMENT).read_bytes() for s in course.students()} == before
    return course


def findings(course) -> dict:
    return json.loads((course.work / "report" / ASSIGNMENT / "similarity.json").read_text())


def test_the_copied_pair_and_the_mlp_lib_copy_are_at_the_top_and_alone(reported):
    found = findings(reported)
    top = found["pairs"][0]
    assert (top["function"], {top["left"], top["right"]}, top["score"]) == ("softmax_cross_entropy", {"ana", "ben"}, 1.0)
    assert len(found["pairs"]) == 1, found["pairs"]
    library = [f for f in found["references"] if f["right"].startswith("mlp_lib.")]
    assert [(f["left"], f["right"]) for f in library] == [("cai", "mlp_lib.losses.softmax_cross_entropy")]
    assert not any(f["left"].startswith("ind") for f in found["pairs"] + found["references"])


def test_the_page_is_offline_and_shows_every_section(reported):
    page = (reported.work / "report" / f"{ASSIGNMENT}.html").read_text()
    for section in ("Scores", "Pass rate per part", "Most frequent diagnoses", "Late (1)", "Missing (1)",
                    "Code similarity"):
        assert section in page, section
    assert "mutant:absolute value" in page          # the diagnosis of the three partial ReLUs (|x|)
    refs = [v for tag, attrs in _tags(page) for k, v in attrs if k in ("src", "href")]
    assert all(not r.startswith(("http:", "https:", "//")) for r in refs), refs
    for ref in refs:
        assert (reported.work / "report" / ref).is_file(), ref
    assert (reported.work / "report" / ASSIGNMENT / "histogram.png").read_bytes()[:4] == b"\x89PNG"
    assert "<script" not in page


def test_the_side_by_side_view_escapes_the_students_code(reported):
    page = (reported.work / "report" / findings(reported)["pairs"][0]["page"]).read_text()
    assert "&lt;script&gt;alert(" in page and "<script>alert" not in page
    assert page.count("class='hit'") >= 10


def test_the_report_never_changes_a_score(reported, tmp_path):
    out = tmp_path / "grades.csv"
    assert cli(reported, "export", "--output", str(out)) == 0
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert float(rows["ana"]["score"]) == float(rows["ben"]["raw_score"]) == agtools.FULL
    # ben is 2 started days late: 10 % of the assignment's points per day
    assert float(rows["ben"]["score"]) == pytest.approx(agtools.FULL * 0.8)
    assert float(rows["cai"]["score"]) == agtools.FULL


def _tags(page: str):
    out = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            out.append((tag, attrs))

    P().feed(page)
    return out
