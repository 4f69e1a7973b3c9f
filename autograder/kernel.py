"""The student's process: ``python -I -m autograder.kernel JOB_DIR PROGRESS_FD``.

Started by :mod:`autograder.sandbox` in a fresh session with a scrubbed environment and a fresh
working directory. Before any student code runs it confines itself (:func:`autograder.confine.enter`:
as root, a private mount namespace and the drop to the sandbox uid; always, hard resource
limits), then executes the cells through IPython's ``InteractiveShell`` (magics work) and, right
after each graded test cell, calls :meth:`autograder.harness.Job.run_part` whatever the cell did.

It reports progress on the pipe PROGRESS_FD: ``start i``, ``error i Name``, ``record i``,
``import torch`` (torch first loaded by student code), ``preloaded torch`` (loaded before, or by
an instructor cell), ``done``. The grader uses these lines only for its timers and messages: a
student who forges them gains nothing, because outputs are judged in the grader.
"""
import json
import os
import signal
import sys

from autograder import confine

BANNED_MODULES = ("torch", "tensorflow", "jax")


class _CappedStream:
    """A text stream that keeps the first ``limit`` characters and drops the rest."""

    def __init__(self, stream, limit):
        self._stream, self._left, self._noted = stream, limit, False

    def write(self, text):
        text = str(text)
        if self._left <= 0:
            if not self._noted:
                self._noted = True
                self._raw_write("\n[output truncated by the grader]\n")
            return len(text)
        self._raw_write(text[:self._left])
        self._left -= len(text)
        return len(text)

    def _raw_write(self, text):
        try:
            self._stream.write(text)
            self._stream.flush()
        except Exception:  # noqa: BLE001 - e.g. the file-size limit; the grader reads what exists
            self._left = 0

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        return self._stream.fileno()

    @property
    def encoding(self):
        return "utf-8"


def main(argv):
    job_dir, progress_fd = argv[0], int(argv[1])
    with open(os.path.join(job_dir, "job.json")) as fh:
        job = json.load(fh)
    progress = os.fdopen(progress_fd, "w", buffering=1)

    def report(line):
        try:
            progress.write(line + "\n")
        except Exception:  # noqa: BLE001 - the student may have closed it; the grader notices EOF
            pass

    try:
        confine.enter(job["sandbox"], job["rlimits"])     # as root: namespace, uid drop; always: rlimits
    except Exception as exc:  # noqa: BLE001 - no student code has run: a grader-side failure
        report("sandbox-failed " + " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        os._exit(97)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if our parent ignored it
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)              # over the file-size cap: EFBIG, not death

    limit = int(job["output_chars"])
    sys.stdout = _CappedStream(sys.__stdout__, limit)
    sys.stderr = _CappedStream(sys.__stderr__, limit // 4)

    import numpy  # noqa: F401 - preloaded for speed, not injected into the namespace
    from traitlets.config import Config
    from IPython.core.interactiveshell import InteractiveShell

    from autograder import harness

    # From here on, an import of torch/tensorflow/jax can only come from the notebook.
    seen = {name for name in BANNED_MODULES if name in sys.modules}
    for name in sorted(seen):
        report(f"preloaded {name}")

    # Instructor cells may legitimately load torch (e.g. through mlp_lib.interop): only imports
    # during the student's cells or while their functions are being recorded count.
    phase = {"student": False}

    def audit(event, args):
        if event == "import" and args and isinstance(args[0], str):
            top = args[0].partition(".")[0]
            if top in BANNED_MODULES and top not in seen:
                seen.add(top)
                report(f"import {top}" if phase["student"] else f"preloaded {top}")

    sys.addaudithook(audit)       # cannot be removed from Python code

    harness._JOB = harness.Job(job_dir, job["parts"])
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.xmode = "Plain"
    shell = InteractiveShell.instance(config=config)
    job_parts = harness._JOB

    for i, cell in enumerate(job["cells"]):
        report(f"start {i}")
        phase["student"] = cell.get("origin") == "student"
        try:
            result = shell.run_cell(cell["source"], store_history=False)
            err = result.error_before_exec or result.error_in_exec
            if err is not None:
                report(f"error {i} {type(err).__name__}")
        except BaseException as exc:   # noqa: BLE001 - an interrupt outside run_cell's own handler
            report(f"error {i} {type(exc).__name__}")
        if cell.get("part"):
            report(f"record {i}")
            phase["student"] = True
            try:
                job_parts.run_part(cell["part"], shell.user_ns)
            except BaseException:   # noqa: BLE001
                pass
    report("done")
    try:
        sys.__stdout__.flush()
        sys.__stderr__.flush()
    finally:
        os._exit(0)       # skip the student's atexit handlers and non-daemon threads


if __name__ == "__main__":
    main(sys.argv[1:])
