"""Manual grading through nbgrader's own formgrader, against a real Jupyter server started here.

A class of three hands in the assignment with a free-response cell; the autograder grades it; a
person enters a manual score and a comment through the formgrader's HTTP API (what its page does).
Does the score reach ``export`` and the feedback, and survive a re-grade? Do the formgrader's
"Autograde" and "Generate feedback" buttons run this grader instead of plain nbgrader? Does
anything a student wrote run in the instructor's page? And do nbgrader's own command-line tools
work from the course root with the shipped ``nbgrader_config.py``?
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from agtools import WRITTEN, WRITTEN_ANSWER_ID, WRITTEN_NOTEBOOK  # noqa: E402
from autograder import formgrader, gradebook, results  # noqa: E402
from autograder.cli import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder-formgrader")]
requests = pytest.importorskip("requests")
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "formgrader-test-token"
XSS_ANSWER = ("<script>alert('answer')</script> Dead units get no gradient. "
              "[click](javascript:alert('link')) <img src=x onerror=alert('img')>")
XSS_OUTPUT = {"output_type": "display_data", "metadata": {},
              "data": {"text/html": "<script>alert('output')</script>", "application/javascript": "alert('js')",
                       "image/svg+xml": "<svg onload=alert('svg')></svg>", "text/plain": "a plain result"}}


def cli(course, *args) -> int:
    return main(["--course", str(course.root), *args])


def read_csv(path) -> dict:
    return {(r["student"], r["assignment"]): r for r in csv.DictReader(io.StringIO(Path(path).read_text()))}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = agtools.make_course(tmp_path_factory.mktemp("formgrader") / "course", limits=agtools.FAST_LIMITS)
    agtools.add_written(course)
    shutil.copy(ROOT / "nbgrader_config.py", course.root / "nbgrader_config.py")
    (course.root / "autograder.toml").write_text((course.root / "autograder.toml").read_text()
                                                 + f"\n[assignments.{WRITTEN}]\nreleased = true\n")
    submit = agtools.submit_to
    submit(course, "ada", WRITTEN, agtools.written_nb(answer="A dead unit gets no gradient; leaky keeps a slope."),
           name=WRITTEN_NOTEBOOK)
    submit(course, "bob", WRITTEN, agtools.written_nb(leaky="def leaky_relu(x, slope):\n    return np.maximum(x, 0)\n"),
           name=WRITTEN_NOTEBOOK)
    eve = agtools.written_nb(answer=XSS_ANSWER)
    next(c for c in eve["cells"] if agtools.gid(c) == "leaky-impl")["outputs"] = [XSS_OUTPUT]
    submit(course, "eve", WRITTEN, eve, name=WRITTEN_NOTEBOOK)
    assert cli(course, "references", "--assignment", WRITTEN, "--device", "cpu") == 0
    assert cli(course, "grade", "--assignment", WRITTEN, "--workers", "2", "--no-progress") == 0
    return course


@pytest.fixture(scope="module")
def server(course, tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(runtime / "config"))
    log = open(runtime / "server.log", "w")
    proc = subprocess.Popen(formgrader.server_command(course, port=port, token=TOKEN), cwd=course.root, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.headers["Authorization"] = f"token {TOKEN}"
    try:
        deadline = time.monotonic() + 180          # a loaded machine starts Jupyter slowly
        while time.monotonic() < deadline:
            try:
                if session.get(f"{base}/api/status", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the Jupyter server did not start: " + (runtime / "server.log").read_text()[-2000:])
        if proc.poll() is not None:
            pytest.fail("the Jupyter server exited: " + (runtime / "server.log").read_text()[-2000:])
        yield base, session
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def submissions(server) -> dict:
    base, session = server
    r = session.get(f"{base}/formgrader/api/submitted_notebooks/{WRITTEN}/{WRITTEN_NOTEBOOK}")
    assert r.ok, r.text
    return {s["student"]: s for s in r.json()}


def by_name(server, what: str, submission_id: str) -> dict:
    base, session = server
    r = session.get(f"{base}/formgrader/api/{what}", params={"submission_id": submission_id})
    assert r.ok, r.text
    return {g["name"]: g for g in r.json()}


def test_the_formgrader_lists_every_autograded_notebook_and_asks_a_person_only_for_the_written_answer(server):
    subs = submissions(server)
    assert set(subs) == {"ada", "bob", "eve"}
    ada = by_name(server, "grades", subs["ada"]["id"])
    assert ada["leaky_relu"]["auto_score"] == 1.0 and ada["leaky_relu"]["needs_manual_grade"] is False
    assert ada[WRITTEN_ANSWER_ID]["needs_manual_grade"] is True and ada[WRITTEN_ANSWER_ID]["max_score"] == 2.0
    bob = by_name(server, "grades", subs["bob"]["id"])
    # bob left the question as released: 0 points and nothing for a person to read, as in nbgrader
    assert bob["leaky_relu"]["auto_score"] == 0.0
    assert bob[WRITTEN_ANSWER_ID]["auto_score"] == 0.0 and bob[WRITTEN_ANSWER_ID]["needs_manual_grade"] is False


class _Active(HTMLParser):
    """What a browser would run in a page: scripts, event-handler attributes, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found, self._script = [], False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag in ("iframe", "object", "embed", "svg"):
            self.found.append(f"<{tag}>")

    def handle_endtag(self, tag):
        self._script = False

    def handle_data(self, data):
        if self._script and "alert(" in data:
            self.found.append(f"script: {data.strip()[:80]}")


def active(page: str) -> list[str]:
    parser = _Active()
    parser.feed(page)
    return parser.found


def test_the_grading_page_opens_and_runs_nothing_the_student_wrote(server, course):
    base, session = server
    subs = submissions(server)
    page = session.get(f"{base}/formgrader/submissions/{subs['eve']['id']}/")
    assert page.status_code == 200, page.text[:500]
    plain = session.get(f"{base}/formgrader/submissions/{subs['ada']['id']}/").text
    # the formgrader's own page is the same for both: eve's answer adds nothing a browser runs
    assert active(page.text) == active(plain)
    assert page.text.count("<script") == plain.count("<script")
    assert "a plain result" in page.text                 # plain text output is kept
    stored = json.loads((course.autograded_dir / "eve" / WRITTEN / f"{WRITTEN_NOTEBOOK}.ipynb").read_text())
    outputs = [o for c in stored["cells"] for o in c.get("outputs", [])]
    assert outputs and all(set(o.get("data", {})) <= {"text/plain", "image/png", "image/jpeg"} for o in outputs)


COMMENT = "Right about the zero gradient; say why it never comes back."


@pytest.fixture(scope="module")
def graded_by_hand(server):
    """ada's written answer graded in the formgrader: 1.5 of 2 points and a comment."""
    base, session = server
    ada_id = submissions(server)["ada"]["id"]
    grade = by_name(server, "grades", ada_id)[WRITTEN_ANSWER_ID]
    comment = by_name(server, "comments", ada_id)[WRITTEN_ANSWER_ID]
    r = session.put(f"{base}/formgrader/api/grade/{grade['id']}", data=json.dumps({"manual_score": 1.5,
                                                                                  "extra_credit": 0}))
    assert r.ok, r.text
    r = session.put(f"{base}/formgrader/api/comment/{comment['id']}", data=json.dumps({"manual_comment": COMMENT}))
    assert r.ok, r.text
    return ada_id


def test_a_manual_score_and_comment_reach_export_and_feedback_and_survive_a_regrade(server, course, graded_by_hand,
                                                                                    tmp_path):
    text = COMMENT
    assert by_name(server, "grades", graded_by_hand)[WRITTEN_ANSWER_ID]["needs_manual_grade"] is False

    def check():
        out = tmp_path / "grades.csv"
        assert cli(course, "export", "--output", str(out)) == 0
        row = read_csv(out)[("ada", WRITTEN)]
        assert (row["score"], row["auto_score"], row["manual_score"], row["max_score"]) == ("2.5", "1", "1.5", "3")
        assert row[f"{WRITTEN}/{WRITTEN_ANSWER_ID}"] == "1.5" and row["manual_pending"] == ""
        assert read_csv(out)[("eve", WRITTEN)]["manual_pending"] == WRITTEN_ANSWER_ID
        assert cli(course, "feedback", "--assignment", WRITTEN) == 0
        page = (course.feedback_dir / "ada" / WRITTEN / f"{WRITTEN_NOTEBOOK}.html").read_text()
        assert text in page and "1.5 / 2" in page and "2.5 / 3" in page
        assert "HIDDEN TESTS" not in page and "record(" not in page

    check()
    before = results.load(course, "ada", WRITTEN).graded_at
    time.sleep(1.1)
    assert cli(course, "grade", "--assignment", WRITTEN, "--student", "ada", "--regrade", "--no-progress") == 0
    assert results.load(course, "ada", WRITTEN).graded_at != before
    check()
    assert gradebook.manual_grades(course, [WRITTEN])[("ada", WRITTEN)][WRITTEN_ANSWER_ID].manual_score == 1.5


def test_the_formgrader_buttons_run_this_grader_not_plain_nbgrader(server, course):
    base, session = server
    result_file = course.result_path("bob", WRITTEN)
    before = json.loads(result_file.read_text())["graded_at"]
    time.sleep(1.1)
    r = session.post(f"{base}/formgrader/api/submission/{WRITTEN}/bob/autograde")
    answer = r.json()
    assert r.ok and answer["success"], answer
    assert "graded 1 submissions" in answer["log"]            # this grader's summary, not nbgrader's log
    assert json.loads(result_file.read_text())["graded_at"] != before
    assert (course.autograded_dir / "bob" / WRITTEN / f"{WRITTEN_NOTEBOOK}.ipynb").is_file()

    r = session.post(f"{base}/formgrader/api/assignment/{WRITTEN}/generate_feedback")
    assert r.ok and r.json()["success"], r.text
    page = (course.feedback_dir / "bob" / WRITTEN / f"{WRITTEN_NOTEBOOK}.html").read_text()
    assert "HIDDEN TESTS" not in page and "record(" not in page and "leaky_relu" in page


def test_nbgraders_own_tools_work_from_the_course_root_and_refuse_to_grade_or_give_feedback(course, graded_by_hand):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    out = subprocess.run([sys.executable, "-m", "nbgrader", "export"], cwd=course.root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO((course.root / "grades.csv").read_text()))}
    assert float(rows["ada"]["raw_score"]) == 2.5
    for command in ("autograde", "generate_feedback"):
        refused = subprocess.run([sys.executable, "-m", "nbgrader", command, WRITTEN], cwd=course.root, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and "python -m autograder" in refused.stderr + refused.stdout
    assert course.result_path("ada", WRITTEN).is_file()      # nothing of ours was touched


def test_images_that_are_not_base64_cannot_break_out_of_their_attribute():
    outputs = formgrader.sanitize_outputs([
        {"output_type": "display_data", "metadata": {"width": '1" onload="alert(1)'},
         "data": {"image/png": 'x" onerror="alert(1)', "text/plain": ["a ", "plot"]}},
        {"output_type": "execute_result", "data": {"image/jpeg": "/9j/4AAQSkZJRg==\n"}, "metadata": {}},
    ])
    assert outputs[0] == {"output_type": "display_data", "data": {"text/plain": "a plot"}, "metadata": {}}
    assert outputs[1]["data"] == {"image/jpeg": "/9j/4AAQSkZJRg==\n"}
    markdown = formgrader.sanitize_markdown("![p](attachment:p.png) ![q](attachment:q.png)",
                                            formgrader._attachments({"attachments": {
                                                "p.png": {"image/png": "iVBORw0KGgo="},
                                                "q.png": {"image/png": '" onerror="alert(1)'}}}))
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in markdown and "onerror" not in markdown
