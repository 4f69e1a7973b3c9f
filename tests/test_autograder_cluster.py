"""Grading on a real Dask cluster: a TLS scheduler and workers started by the test (`dask scheduler`,
`dask worker`), attacks on the cluster from a notebook, lost workers, an interrupted grader, a worker
running another checkout.

Slow (about a minute): real processes, sealed jobs. Needs root (the sealed sandbox).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from agtools import ASSIGNMENT, FULL, filled, submit, with_cell  # noqa: E402
from autograder import gradebook, results, sandbox  # noqa: E402
from autograder.cli import main  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.tls_cluster import Cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder-cluster"),
              pytest.mark.skipif(bool(sandbox.sealing_problems()), reason="sealed jobs need root")]

REPO = Path(__file__).resolve().parents[1]
SLOW_ANSWER = "import time\ntime.sleep(1.0)"        # an honest student whose notebook takes a second


@pytest.fixture
def cluster(tmp_path):
    tls = tmp_path / "tls"
    assert main(["--course", str(agtools.FIXTURE), "cluster", "certs", "--out", str(tls)]) == 0
    c = Cluster(tls, tmp_path)
    try:
        yield c
    finally:
        c.close()


def make_class(tmp_path, cluster, n_slow=8):
    # uids of their own: tests run in parallel, and these check that no process of their jobs' uids is left
    course = agtools.make_course(tmp_path / "class", limits={**agtools.FAST_LIMITS, "uid_base": 67300})
    with open(course.root / "autograder.toml", "a") as fh:
        fh.write(f"\n[cluster]\ntls = {str(cluster.tls)!r}\n")
    course = type(course).open(course.root)
    expected = agtools.normal_class(course)
    for i in range(n_slow):
        submit(course, f"slow{i}", with_cell(filled(), SLOW_ANSWER, after="setup"))
        expected[f"slow{i}"] = (FULL, "graded")
    assert grade(course, "references", "--device", "cpu") == 0
    return course, expected


def grade(course, *args) -> int:
    return main(["--course", str(course.root), *args])


def grade_in_process(course, *args) -> subprocess.Popen:
    """`python -m autograder grade ...` as its own process (to interrupt or kill it)."""
    return subprocess.Popen([sys.executable, "-m", "autograder", "--course", str(course.root), "grade",
                             "--no-progress", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def scores(course, students):
    out = {}
    for s in students:
        r = results.load(course, s, ASSIGNMENT)
        out[s] = None if r is None else (r.score, r.status.kind, r.part_points())
    return out


def assert_all_right(course, expected):
    for student, (score, status) in expected.items():
        r = results.load(course, student, ASSIGNMENT)
        assert r is not None, f"{student}: no result"
        assert (r.score, r.status.kind) == (score, status), (student, r.score, r.status)


def test_a_tls_cluster_grades_like_local_workers_and_refuses_insecure_addresses(tmp_path, cluster, capsys):
    cluster.add_worker()
    cluster.add_worker()
    course, expected = make_class(tmp_path, cluster, n_slow=2)
    assert grade(course, "grade", "--scheduler", cluster.address, "--no-progress") == 0
    assert_all_right(course, expected)
    on_cluster = scores(course, expected)
    assert grade(course, "grade", "--workers", "2", "--no-progress", "--regrade") == 0
    assert scores(course, expected) == on_cluster
    capsys.readouterr()
    assert grade(course, "grade", "--scheduler", f"tcp://127.0.0.1:{cluster.port}", "--no-progress") == 2
    assert "refusing the insecure scheduler address" in capsys.readouterr().err


def test_a_notebook_that_attacks_the_cluster_earns_nothing_and_changes_nothing(tmp_path, cluster):
    cluster.add_worker()
    cluster.add_worker()
    course, _ = make_class(tmp_path, cluster, n_slow=0)
    client_attack = (f"from distributed import Client\n"
                     f"c = Client({cluster.address!r}, timeout=5)\n"
                     "c.run(lambda: __import__('os').system('touch /tmp/owned'))\n"
                     "def relu_forward(x):\n    return c.submit(lambda v: v, x).result(), x\n")
    socket_attack = (f"import socket\ns = socket.create_connection(('127.0.0.1', {cluster.port}), timeout=5)\n"
                     "s.sendall(b'\\x00' * 64)\nprint('CONNECTED')\n")
    submit(course, "x_client", with_cell(agtools.blank(), client_attack, after="setup"))
    submit(course, "x_socket", with_cell(agtools.blank(), socket_attack, after="setup"))
    students = ["x_client", "x_socket", "blank", "good"]
    args = ["grade", "--scheduler", cluster.address, "--no-progress"]
    for s in students:
        args += ["--student", s]
    assert grade(course, *args) == 0
    got = scores(course, students)
    assert got["x_client"][0] == 0 and got["x_socket"][0] == 0 and got["blank"][0] == 0
    assert got["good"][0] == FULL
    log = results.load(course, "x_socket", ASSIGNMENT).notebooks["affine"].log
    assert "CONNECTED" not in log and ("Network is unreachable" in log or "Errno" in log)
    assert not Path("/tmp/owned").exists()
    assert cluster.n_workers() == 2                     # the cluster is untouched


def test_a_worker_running_another_checkout_is_refused(tmp_path, cluster, capsys):
    other = tmp_path / "other-checkout"
    shutil.copytree(REPO / "autograder", other / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "autograder" / "compare.py", "a") as fh:
        fh.write("\n# a local change\n")
    cluster.add_worker(env={"PYTHONPATH": str(other)})
    course, _ = make_class(tmp_path, cluster, n_slow=0)
    assert grade(course, "grade", "--scheduler", cluster.address, "--student", "good", "--no-progress") == 2
    err = capsys.readouterr().err
    assert "no worker can be used" in err and "runs a different grader: autograder (" in err
    assert results.load(course, "good", ASSIGNMENT) is None


def wait_for_results(course, students, at_least: int, timeout=120):
    """Until ``at_least`` of ``students`` have a result (a grade run is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [s for s in students if course.result_path(s, ASSIGNMENT).exists()]
        if len(done) >= at_least:
            return done
        time.sleep(0.1)
    raise AssertionError("grading did not make progress")


def graded_in(out: str, students) -> set:
    """The students a `grade` run reports as graded (one line each on stdout)."""
    return {line.split()[0] for line in out.splitlines() if line.split()[:1] and line.split()[0] in students}


def test_a_lost_worker_costs_nothing(tmp_path, cluster):
    first, _ = cluster.add_worker(), cluster.add_worker()
    course, expected = make_class(tmp_path, cluster, n_slow=10)
    proc = grade_in_process(course, "--scheduler", cluster.address)
    wait_for_results(course, [s for s in expected if s.startswith("slow")], 2)
    cluster.kill(first)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert_all_right(course, expected)


def test_all_workers_lost_then_an_interrupted_grader_then_one_rerun_grades_everyone_once(tmp_path, cluster):
    cluster.add_worker()
    cluster.add_worker()
    course, expected = make_class(tmp_path, cluster, n_slow=12)
    students = set(expected)
    # every worker dies mid-batch: a clear error within the timeout; what finished is kept
    slow = [s for s in students if s.startswith("slow")]
    proc = grade_in_process(course, "--scheduler", cluster.address, "--no-worker-timeout", "5")
    wait_for_results(course, slow, 2)
    for w in cluster.workers:
        if w.poll() is None:
            cluster.kill(w)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "no worker has been connected" in err and "Traceback" not in err
    first = graded_in(out, students)
    assert first == {s for s in students if results.load(course, s, ASSIGNMENT) is not None}
    assert first != students
    # workers back; the grader is interrupted (Ctrl-C) mid-batch: no traceback, finished work recorded
    cluster.add_worker()
    cluster.add_worker()
    proc = grade_in_process(course, "--scheduler", cluster.address)
    wait_for_results(course, slow, len([s for s in slow if s in first]) + 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "run the same command again" in err, err
    second = graded_in(out, students)
    assert not second & first
    # one re-run grades exactly what is left; the class ends as a clean run would
    proc = grade_in_process(course, "--scheduler", cluster.address)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    third = graded_in(out, students)
    assert third == students - first - second
    assert_all_right(course, expected)
    for s in students - {"empty", "wrong_name"}:
        assert gradebook.auto_scores(course, ASSIGNMENT, s) == results.load(course, s, ASSIGNMENT).part_points()


def test_killing_the_grader_stops_its_local_workers_and_their_jobs(tmp_path, cluster):
    course, expected = make_class(tmp_path, cluster, n_slow=6)
    proc = grade_in_process(course, "--workers", "2")
    wait_for_results(course, [s for s in expected if s.startswith("slow")], 1)

    def descendants(root):
        children = {}
        for pid, st in sandbox._processes():
            children.setdefault(int(st.get("PPid", 0)), []).append(pid)
        out, todo = [], [root]
        while todo:
            for child in children.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

    family = descendants(proc.pid)
    assert family, "the grader started no workers"
    proc.kill()
    proc.wait()
    uids = {str(course.limits.uid_base + n) for n in range(course.limits.slots)}

    def left():    # the grader's workers, and every job process (one started after `family` was read too)
        workers = [pid for pid in family if (sandbox._proc_status(str(pid)) or {}).get("State", "Z")[:1] not in "Z"]
        jobs = [pid for pid, st in sandbox._processes() if st.get("Uid", "").split()[:1]
                and st["Uid"].split()[0] in uids and not st.get("State", "").startswith("Z")]
        return workers + jobs

    deadline = time.monotonic() + 15
    while left() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left() == []
