"""Run one student's notebook in its own process, under limits, and bring back only data.

Isolation, in the order it is applied:

1. a fresh job directory: ``inputs/`` (the grading inputs, read-only), ``outputs/`` and ``work/``
   (the cwd, HOME and TMPDIR) writable by the sandbox user only;
2. ``subprocess.Popen(start_new_session=True)``: its own session and process group, a scrubbed
   environment, no inherited file descriptors but the progress pipe;
3. as root, uid/gid ``limits.uid_base + slot`` (no supplementary groups, no account, no files
   outside the job directory): the gradebook, the secret and the references (0600/0700,
   root-owned) cannot be read, and the grader cannot be signalled;
4. ``setrlimit`` hard limits set by the kernel before any student code: address space, CPU time,
   processes, file size, open files, no core dumps;
5. wall-clock budgets per cell (SIGINT, then SIGKILL of the whole group if ignored) and per notebook;
6. afterwards every process of the sandbox uid is killed (``kill(-1)`` as that uid) and orphans
   are reaped (the grader is a child subreaper), before any output is read;
7. outputs are opened with ``O_NOFOLLOW`` relative to the job directory, must be regular files
   owned by the sandbox uid with one link, within the size cap, and are loaded with
   ``allow_pickle=False`` after their ``.npy`` header was checked.

Without root, steps 3 and most of 6 are impossible: the kernel runs as the grader's own user, so a
hostile notebook could read the grader's files or signal it. Use root (CI does) for untrusted code.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import confine, harness
from .compare import CaseOutput
from .limits import Limits

MAX_JSON_BYTES = 64 * 1024
MAX_PROGRESS_BYTES = 1 << 20
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class SandboxError(RuntimeError):
    """The sandbox itself failed (a grader-side problem: the student is not charged)."""


@dataclass
class PartOutputs:
    """What the student's process handed back for one part."""

    error: str | None = None                      # e.g. the function is not defined
    modules: dict = field(default_factory=dict)   # function name -> module it came from (as reported)
    cases: list[CaseOutput] = field(default_factory=list)


@dataclass
class Execution:
    status: str                    # ok | timeout | crashed
    message: str = ""
    returncode: int | None = None
    finished: bool = False         # the kernel reached the end of the notebook
    cell_errors: dict = field(default_factory=dict)     # cell index -> exception name
    interrupted: list = field(default_factory=list)     # cell indices interrupted by the per-cell budget
    banned_imports: list = field(default_factory=list)  # torch/tensorflow/jax imported at run time
    preloaded: list = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0
    uid: int | None = None
    started: bool = False                 # the first cell started (before that, no student code ran)
    sandbox_failure: str | None = None    # confinement failed before any student code: grader-side


def run_notebook(cells, plans, inputs, limits: Limits, *, extra_files=None):
    """Execute ``cells`` and return (Execution, {part id: PartOutputs or None if never recorded})."""
    _become_subreaper()
    with _identity(limits) as ident:
        job_dir = Path(tempfile.mkdtemp(prefix="autograder-job-"))
        try:
            os.chmod(job_dir, 0o711)
            work, outputs = job_dir / "work", job_dir / "outputs"
            _write_inputs(job_dir / "inputs", plans, inputs, ident)
            for path in (work, outputs):
                path.mkdir(mode=0o700)
                if ident is not None:
                    os.chown(path, *ident)
            _write_extras(work, extra_files or {}, ident)
            job = {
                "cells": [{"source": c.source, "part": c.part, "origin": c.origin}
                          for c in cells if c.cell_type == "code"],
                "parts": {p.id: _kernel_part(p, inputs[p.id]) for p in plans},
                "rlimits": _rlimits(limits, ident),
                "sandbox": None if ident is None else {
                    "uid": ident[0], "gid": ident[1], "staging": str(job_dir / "mnt"),
                    "reveal": confine.blocked_paths(confine.interpreter_paths())},
                "output_chars": limits.output_kb * 1024,
            }
            # read by the kernel while still root, before any student code: no other sandbox may
            # read it (it holds this student's code)
            fd = os.open(job_dir / "job.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(job, fh)
            code_cells = [c for c in cells if c.cell_type == "code"]
            execution = _supervise(job_dir, work, ident, limits, code_cells)
            collected = collect_outputs(outputs, plans, inputs, ident=ident, max_bytes=limits.file_size_mb << 20)
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
    return execution, collected


def _write_extras(work: Path, files: dict, ident) -> None:
    """The release's data files, owned by the sandbox user (directories included)."""
    for rel, data in files.items():
        target = work / rel
        folder = work
        for part in Path(rel).parts[:-1]:
            folder = folder / part
            if not folder.exists():
                folder.mkdir(mode=0o700)
                if ident is not None:
                    os.chown(folder, *ident)
        target.write_bytes(data)
        if ident is not None:
            os.chown(target, *ident)


def _kernel_part(plan, cases) -> dict:
    names = list(cases[0]) if cases else []
    return {"function": plan.function, "uses": list(plan.uses), "outputs": list(plan.outputs),
            "inputs": names, "n_cases": len(cases), "call_name": plan.call_name, "call_source": plan.call_source}


def _write_inputs(directory: Path, plans, inputs, ident) -> None:
    """Readable by this job's sandbox group only (root-owned: the student cannot change them)."""
    directory.mkdir()
    dir_mode, file_mode = (0o750, 0o640) if ident is not None else (0o700, 0o600)
    for plan in plans:
        for i, case in enumerate(inputs[plan.id]):
            for name, arr in case.items():
                path = directory / harness.input_file(plan.id, i, name)
                np.save(path, np.asarray(arr), allow_pickle=False)
                if ident is not None:
                    os.chown(path, 0, ident[1])
                os.chmod(path, file_mode)
    if ident is not None:
        os.chown(directory, 0, ident[1])
    os.chmod(directory, dir_mode)      # explicit: the grader may run with umask 077


def _rlimits(limits: Limits, ident) -> dict:
    rl = {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_CPU": limits.cpu_limit,
        "RLIMIT_FSIZE": limits.file_size_mb << 20,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }
    if ident is not None:
        rl["RLIMIT_NPROC"] = limits.nproc
    else:
        # Without a uid of its own the count includes every process of this user.
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        want = _task_count(os.getuid()) + limits.nproc
        rl["RLIMIT_NPROC"] = want if hard == resource.RLIM_INFINITY else min(want, hard)
    return rl


def _environment(work: Path) -> dict:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work),
        "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(work / ".matplotlib"), "IPYTHONDIR": str(work / ".ipython"),
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }


# -- supervision -------------------------------------------------------------------
def _supervise(job_dir: Path, work: Path, ident, limits: Limits, code_cells) -> Execution:
    log_path = job_dir / "kernel.log"
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    read_fd, write_fd = os.pipe()
    children_before = _children()
    kwargs = dict(stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, pass_fds=(write_fd,), cwd=work,
                  env=_environment(work), start_new_session=True, close_fds=True, umask=0o077)
    start = time.monotonic()
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-m", "autograder.kernel", str(job_dir), str(write_fd)],
                                **kwargs)
    except OSError as exc:
        raise SandboxError(f"could not start the kernel: {exc}") from exc
    finally:
        os.close(write_fd)
        os.close(log_fd)
    ex = Execution(status="ok", uid=ident[0] if ident else None)
    killed_for = None
    try:
        killed_for = _watch(proc, read_fd, limits, ex, start)
    finally:
        _kill_group(proc.pid)
        proc.wait()
        os.close(read_fd)
        _cleanup(ident, children_before, session=proc.pid)
    ex.seconds = time.monotonic() - start
    ex.returncode = proc.returncode
    ex.log = _log_excerpt(log_path)
    if ex.sandbox_failure is not None:
        raise SandboxError(f"the sandbox could not be set up (no student code ran): {ex.sandbox_failure}")
    if code_cells and not ex.started:
        tail = " ".join(ex.log[-300:].split())
        raise SandboxError(f"the kernel ended before running any cell, so no student code ran "
                           f"(exit {proc.returncode}): {tail}")
    _classify(ex, killed_for, limits, code_cells)
    return ex


def _watch(proc, read_fd, limits: Limits, ex: Execution, start: float) -> str | None:
    """Follow the progress lines until the kernel ends; return why it was killed, if it was."""
    notebook_deadline = start + limits.notebook_timeout
    phase_started, current, interrupted_at = start, None, None
    buffer, received, eof = b"", 0, False
    while True:
        now = time.monotonic()
        if proc.poll() is not None:
            if not eof:
                buffer = _drain(read_fd, buffer, ex)
            return None
        if now >= notebook_deadline:
            return "notebook"
        if interrupted_at is not None and now >= interrupted_at + limits.interrupt_grace:
            return "cell"
        if interrupted_at is None and current is not None and now >= phase_started + limits.cell_timeout:
            try:
                os.kill(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            interrupted_at = now
            ex.interrupted.append(current)
        deadlines = [notebook_deadline]
        if interrupted_at is not None:
            deadlines.append(interrupted_at + limits.interrupt_grace)
        elif current is not None:
            deadlines.append(phase_started + limits.cell_timeout)
        wait = max(0.0, min(0.25, min(deadlines) - now))
        if eof or received > MAX_PROGRESS_BYTES:
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
            continue
        ready, _, _ = select.select([read_fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            eof = True
            continue
        received += len(chunk)
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        buffer = buffer[-256:]
        for line in lines:
            moved = _progress(line, ex)
            if moved is not None:
                current, phase_started, interrupted_at = moved, time.monotonic(), None


def _drain(read_fd, buffer: bytes, ex: Execution) -> bytes:
    """Read what is already in the pipe (forked children may keep it open: never block)."""
    for _ in range(64):
        ready, _, _ = select.select([read_fd], [], [], 0.05)
        if not ready:
            break
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            _progress(line, ex)
    return buffer


def _progress(line: bytes, ex: Execution):
    """Parse one progress line; return the cell index when the kernel moved on to a new phase."""
    words = line.decode("ascii", "replace").split()
    if words[:1] == ["sandbox-failed"] and ex.sandbox_failure is None and not ex.started:
        ex.sandbox_failure = line.decode("utf-8", "replace")[len("sandbox-failed "):][:300]
        return None
    if not words or len(words) > 3:
        return None
    kind = words[0]
    if kind in ("start", "record") and len(words) == 2 and words[1].isdigit():
        ex.started = True
        return int(words[1])
    if kind == "error" and len(words) == 3 and words[1].isdigit() and len(ex.cell_errors) < 1000:
        ex.cell_errors[int(words[1])] = words[2][:60]
    elif kind == "import" and len(words) == 2 and words[1] in ("torch", "tensorflow", "jax"):
        if words[1] not in ex.banned_imports:
            ex.banned_imports.append(words[1])
    elif kind == "preloaded" and len(words) == 2 and words[1] not in ex.preloaded:
        ex.preloaded.append(words[1][:20])
    elif kind == "done" and len(words) == 1:
        ex.finished = True
    return None


def _classify(ex: Execution, killed_for, limits: Limits, code_cells) -> None:
    def where(i):
        if not isinstance(i, int) or i >= len(code_cells):
            return "the notebook"
        cell = code_cells[i]
        return f"code cell {i + 1}" + (f" ({cell.grade_id})" if cell.grade_id else "")

    rc = ex.returncode
    if killed_for == "notebook":
        ex.status, ex.message = "timeout", (f"the notebook exceeded its {limits.notebook_timeout:g} s budget "
                                            "and was stopped")
    elif killed_for == "cell":
        ex.status, ex.message = "timeout", (f"{where(ex.interrupted[-1])} ran past {limits.cell_timeout:g} s, "
                                            "ignored the interrupt and was stopped")
    elif rc is not None and rc < 0 and -rc == signal.SIGXCPU:
        ex.status, ex.message = "timeout", f"the notebook used up its {limits.cpu_limit} s of CPU time"
    elif not ex.finished:
        how = (f"was killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0
               and -rc in signal.Signals._value2member_map_ else f"exited with code {rc}")
        ex.status, ex.message = "crashed", f"the notebook's process {how} before the end of the notebook"
    elif ex.interrupted:
        ex.status = "timeout"
        ex.message = "; ".join(f"{where(i)} ran past {limits.cell_timeout:g} s and was interrupted"
                               for i in ex.interrupted)
    else:
        ex.status = "ok"


def _log_excerpt(path: Path, head: int = 6000, tail: int = 6000) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size <= head + tail:
                data = fh.read()
            else:
                data = fh.read(head) + b"\n[... log cut ...]\n"
                fh.seek(size - tail)
                data += fh.read(tail)
    except OSError:
        return ""
    return _ANSI.sub("", data.decode("utf-8", "replace"))


# -- identities, process cleanup ----------------------------------------------------
_SUBREAPER_SET = False


def _become_subreaper() -> None:
    """Orphans of the kernel are re-parented to this process, so they can be found and reaped."""
    global _SUBREAPER_SET
    if _SUBREAPER_SET or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
    _SUBREAPER_SET = True


@contextmanager
def _identity(limits: Limits):
    """As root: a free sandbox slot, i.e. (uid, gid) used by no one else; otherwise None."""
    if os.geteuid() != 0:
        yield None
        return
    slot_dir = _slot_dir()
    while True:
        for n in range(limits.slots):
            fd = os.open(slot_dir / f"slot-{n}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            uid = limits.uid_base + n
            try:
                kill_uid(uid)                    # leftovers of a grader that crashed
                yield (uid, uid)
            finally:
                os.close(fd)
            return
        time.sleep(0.05)


def _slot_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "autograder-slots"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
        raise SandboxError(f"{path} must be a root-owned 0700 directory (someone else created it?)")
    return path


def _proc_status(pid: str) -> dict | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return None
    return {k: v.strip() for k, v in fields.items()}


def _processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            status = _proc_status(entry)
            if status is not None:
                yield int(entry), status


def _task_count(uid: int) -> int:
    count = 0
    for _, status in _processes():
        if status.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(status.get("Threads", "1") or 1)
    return count


def _children() -> set[int]:
    me = str(os.getpid())
    return {pid for pid, st in _processes() if st.get("PPid") == me}


def _live_pids_of_uid(uid: int) -> list[int]:
    out = []
    for pid, status in _processes():
        uids = status.get("Uid", "").split()
        if str(uid) in uids and not status.get("State", "").startswith("Z"):
            out.append(pid)
    return out


def kill_uid(uid: int, *, attempts: int = 50) -> None:
    """SIGKILL every process of ``uid`` (a sandbox uid): ``kill(-1)`` run as that uid reaches all of them."""
    for attempt in range(attempts):
        _reap_zombie_children()
        if not _live_pids_of_uid(uid):
            return
        # Started as root (the interpreter may not be reachable by uid), dropped before killing.
        subprocess.run([sys.executable, "-I", "-S", "-c", _KILLER, str(uid)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True, timeout=30)
        time.sleep(0.005 * attempt)
    raise SandboxError(f"could not stop the processes of sandbox uid {uid}")


_KILLER = """
import os, signal, sys
uid = int(sys.argv[1])
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
"""


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_zombie_children() -> None:
    me = str(os.getpid())
    for pid, status in _processes():
        if status.get("PPid") == me and status.get("State", "").startswith("Z"):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return int(fields[3])          # after the command name: state, ppid, pgrp, session
    except (OSError, ValueError, IndexError):
        return None


def _cleanup(ident, children_before: set[int], *, session: int) -> None:
    if ident is not None:
        kill_uid(ident[0])
        return
    # Same user as the grader: kill the orphans of the kernel's session re-parented to us (a
    # process that left the session escapes this: only root's per-uid kill reaches everything).
    for _ in range(20):
        strays = [p for p in _children() - children_before if _session_of(p) == session]
        live = [p for p in strays if not (_proc_status(str(p)) or {}).get("State", "Z").startswith("Z")]
        for pid in live:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap_zombie_children()
        if not live:
            return
        time.sleep(0.01)


# -- reading what came back ------------------------------------------------------------
def collect_outputs(outputs_dir: Path, plans, inputs, *, ident, max_bytes: int) -> dict:
    """{part id: PartOutputs, or None when the part was never recorded} — every file checked first."""
    dir_fd = os.open(outputs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        result = {}
        for plan in plans:
            meta = _read_json(dir_fd, harness.part_meta_file(plan.id), ident)
            if meta is None:
                result[plan.id] = None
                continue
            part = PartOutputs(error=_text(meta.get("error")), modules=_modules(meta.get("modules")))
            for i, case in enumerate(inputs[plan.id]):
                cmeta = _read_json(dir_fd, harness.case_meta_file(plan.id, i), ident)
                if cmeta is None:
                    break
                out = CaseOutput(error=_text(cmeta.get("error")),
                                 warnings=[_text(w) for w in (cmeta.get("warnings") or [])[:5] if _text(w)])
                if out.error is None:
                    for name in plan.graded_outputs:
                        arr, problem = read_npy(dir_fd, harness.output_file(plan.id, i, name), ident, max_bytes)
                        if problem:
                            out.error = f"output {name}: {problem}"
                            break
                        out.outputs[name] = arr
                    for name in case:
                        arr, problem = read_npy(dir_fd, harness.after_file(plan.id, i, name), ident, max_bytes)
                        if arr is not None:
                            out.inputs_after[name] = arr
                part.cases.append(out)
            result[plan.id] = part
        return result
    finally:
        os.close(dir_fd)


def _open_checked(dir_fd: int, name: str, ident, max_bytes: int):
    """A file object for ``name`` in the output directory, or (None, why not)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "not a regular file"
    elif ident is not None and (st.st_uid != ident[0] or st.st_nlink != 1):
        problem = "not written by the notebook's process"
    elif st.st_size > max_bytes:
        problem = f"too large ({st.st_size} bytes)"
    if problem:
        os.close(fd)
        return None, problem
    return os.fdopen(fd, "rb"), None


def read_npy(dir_fd: int, name: str, ident, max_bytes: int):
    """(ndarray, None) or (None, problem): a numeric .npy checked before it is loaded."""
    fh, problem = _open_checked(dir_fd, name, ident, max_bytes)
    if fh is None:
        return None, problem
    with fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return None, "unknown .npy version"
            if dtype.hasobject or dtype.kind not in "biufU" or dtype.fields is not None:
                return None, f"dtype {dtype} is not a plain numeric or string dtype"
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > max_bytes:
                return None, "too large"
            fh.seek(0)
            arr = np.load(fh, allow_pickle=False)
        except Exception as exc:   # noqa: BLE001 - malformed file written by the student's process
            return None, f"malformed array file ({type(exc).__name__})"
    if type(arr) is not np.ndarray:
        return None, "not an array"
    return arr, None


def _read_json(dir_fd: int, name: str, ident):
    fh, _ = _open_checked(dir_fd, name, ident, MAX_JSON_BYTES)
    if fh is None:
        return None
    with fh:
        try:
            data = json.loads(fh.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
    return data if isinstance(data, dict) else None


def _text(value, limit: int = harness.MAX_MESSAGE) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:limit]


def _modules(value) -> dict:
    if not isinstance(value, dict):
        return {}
    return {str(k)[:64]: (None if v is None else str(v)[:100]) for k, v in list(value.items())[:16]}
