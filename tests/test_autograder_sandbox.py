"""The sealed job, attacked directly: what the student's process can reach, what survives it, what it costs others.

Each test runs small recordings through :func:`autograder.sandbox.run` as root (a sealed job takes
about 0.15 s). Whole classes through the real CLI are in test_autograder_e2e.py and
test_autograder_hostile.py.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograder import sandbox
from autograder.limits import Limits

pytestmark = [pytest.mark.skipif(bool(sandbox.sealing_problems()), reason="sealed jobs need root, namespaces, cgroups"),
              pytest.mark.xdist_group("sandbox")]

# a uid range of this file's own: a leftover process of ours cannot be confused with another grader's job
LIMITS = Limits(cell_timeout=30.0, notebook_timeout=60.0, interrupt_grace=1.0, memory_mb=1024, nproc=32,
                uid_base=66100, slots=4)


def run(code: str, *, limits: Limits = LIMITS, parts=None, inputs=None):
    cells = [{"source": "import numpy as np", "kind": "setup", "part": None, "label": "setup"},
             {"source": textwrap.dedent(code), "kind": "student", "part": None, "label": "code cell 2"}]
    for pid in parts or {}:
        cells.append({"source": "", "kind": "record", "part": pid, "label": pid})
    recording = sandbox.Recording(cells=cells, parts=parts or {}, inputs=inputs or {})
    return sandbox.run(recording, limits, sealed=True)


def printed(code: str, **kw) -> str:
    ex, _ = run(code, **kw)
    return ex.log


def test_the_job_sees_only_the_interpreter_numpy_and_its_own_folders():
    log = printed("""
        import os, sys
        print("ROOT", sorted(os.listdir("/")))
        sys.meta_path[:] = [m for m in sys.meta_path if type(m).__name__ != "ImportGuard"]   # no guard
        sys.path += ["/usr/lib/python3/dist-packages", "/work/main", os.path.dirname(os.__file__) + "/site-packages"]
        for name in ("torch", "scipy", "sklearn", "mlp_lib", "IPython", "nbgrader", "autograder.spec", "yaml"):
            try:
                __import__(name)
                print("IMPORTED", name)
            except ImportError:
                print("absent", name)
        for path in ("/proc", "/sys", "/work", "/root/.ssh", "/etc/passwd", "/bin/sh"):
            print("PATH", path, os.path.exists(path))
    """)
    root = eval(log.split("ROOT ", 1)[1].split("\n", 1)[0])
    assert set(root) <= {"dev", "etc", "home", "lib", "lib64", "root", "sealed", "tmp", "usr", "var", "opt"}
    assert "IMPORTED" not in log and log.count("absent") == 8
    assert "True" not in "".join(line for line in log.splitlines() if line.startswith("PATH"))


def test_answers_may_import_numpy_and_the_standard_library():
    log = printed("import numpy, json, math, itertools, dataclasses, statistics\nprint('OK', numpy.__version__)")
    assert f"OK {np.__version__}" in log


def test_a_refused_import_says_what_answers_may_use():
    log = printed("import mlp_lib.layers")
    assert "No module named 'mlp_lib' while answers are recorded: answers may use the Python standard " \
           "library, numpy only" in log


def test_the_job_has_no_network():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        log = printed(f"""
            import socket
            for host in ("127.0.0.1", "10.0.0.1"):
                try:
                    socket.create_connection((host, {port}), timeout=2)
                    print("CONNECTED", host)
                except OSError as exc:
                    print("refused", host, exc.errno)
        """)
    assert "CONNECTED" not in log and log.count("refused") == 2


def test_nothing_a_job_writes_survives_it_or_reaches_the_next_job():
    first = printed("""
        for path in ("/tmp/left", "/var/tmp/left", "/dev/shm/left", "left"):
            open(path, "w").write("from the first student")
        print("WROTE")
    """)
    assert "WROTE" in first
    second = printed("""
        import os
        print("SEEN", [p for p in ("/tmp/left", "/var/tmp/left", "/dev/shm/left", "left") if os.path.exists(p)])
    """)
    assert "SEEN []" in second


def test_the_memory_limit_holds_for_all_the_jobs_processes_together():
    ex, _ = run("""
        import os, time
        children = []
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                block = bytearray(400 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(3)
                os._exit(0)
            children.append(pid)
        killed = 0
        for pid in children:
            _, status = os.waitpid(pid, 0)
            killed += os.WIFSIGNALED(status)
        print("KILLED", killed)
    """)
    assert ex.limits_hit["oom_kills"] >= 3, ex.log
    assert "KILLED" in ex.log and int(ex.log.split("KILLED ")[1].split()[0]) >= 3


def test_a_fork_storm_stops_at_the_process_limit_and_leaves_nothing_behind():
    ex, _ = run("""
        import os
        for _ in range(200):
            try:
                if os.fork() == 0:
                    os.setsid()
                    import time
                    time.sleep(60)
            except OSError:
                print("REFUSED")
                break
    """, limits=Limits(**{**LIMITS.__dict__, "nproc": 16}))
    assert "REFUSED" in ex.log and ex.limits_hit["pids"] > 0
    uids = {str(LIMITS.uid_base + n) for n in range(LIMITS.slots)}
    assert not [pid for pid, st in sandbox._processes() if st.get("Uid", "").split()[:1] and
                st["Uid"].split()[0] in uids and not st.get("State", "").startswith("Z")]


def test_the_jobs_disk_is_its_own_capped_tmpfs():
    log = printed("""
        try:
            with open("/tmp/big", "wb") as fh:
                for _ in range(100):
                    fh.write(b"x" * (1 << 20))
            print("WROTE ALL")
        except OSError as exc:
            print("FULL", exc.errno)
    """, limits=Limits(**{**LIMITS.__dict__, "disk_mb": 32}))
    assert "FULL 28" in log                    # ENOSPC in the job, nowhere else


def test_inputs_are_read_only_in_the_call_itself():
    parts = {"p": {"function": "f", "outputs": ["out"], "inputs": ["x"], "n_cases": 1, "call_name": None,
                   "writable_inputs": False, "new_arrays": False}}
    ex, outputs = run("def f(x):\n    x *= 2\n    return x", parts=parts, inputs={"p": [{"x": np.ones(3)}]})
    assert "read-only" in outputs["p"].cases[0].error


def test_a_kernel_that_never_starts_is_the_graders_fault(monkeypatch):
    monkeypatch.setattr(sandbox, "_filesystem", lambda allow: {"binds": [["/no/such/dir", "/x"]], "masks": [],
                                                               "symlinks": [], "site": "/sealed/site",
                                                               "interpreter": sys.executable})
    with pytest.raises(sandbox.SandboxError, match="no student code ran"):
        run("print(1)")


def test_job_folders_of_a_dead_worker_are_removed(tmp_path):
    stale = tmp_path / f"{sandbox.JOB_PREFIX}999999-abc"
    (stale / "inputs").mkdir(parents=True)
    alive = tmp_path / f"{sandbox.JOB_PREFIX}{os.getpid()}-def"
    alive.mkdir()
    sandbox.remove_stale_job_dirs(tmp_path)
    assert not stale.exists() and alive.exists()


def test_the_job_dies_with_its_worker(tmp_path):
    """Kill the process supervising a job: the launcher, the job's init and everything under it go too."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from autograder import sandbox
        from autograder.limits import Limits
        cells = [{{"source": "import os, time\\nprint('STARTED', flush=True)\\nos.fork()\\ntime.sleep(120)",
                  "kind": "student", "part": None, "label": "cell"}}]
        sandbox.run(sandbox.Recording(cells=cells), Limits(notebook_timeout=200, cell_timeout=150, uid_base=66100,
                                                           slots=4), sealed=True)
    """))
    worker = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    uids = {str(LIMITS.uid_base + n) for n in range(LIMITS.slots)}

    def job_processes():
        return [pid for pid, st in sandbox._processes() if st.get("Uid", "").split()[:1] and
                st["Uid"].split()[0] in uids and not st.get("State", "").startswith("Z")]

    deadline = time.monotonic() + 30
    while not job_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job_processes(), "the job did not start"
    worker.kill()
    worker.wait()
    deadline = time.monotonic() + 10
    while job_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job_processes() == []
