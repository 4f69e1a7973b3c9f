"""The student's process: ``python -I -S -c <boot> JOB_FILE PROGRESS_FD``, exec'd by the launcher.

It runs, in order, the cells the grader built for this job and nothing else: the setup cells the
statement names, the student's own cells, and at each graded part's position a *record point*
where :meth:`autograder.inside.harness.Job.run_part` calls the student's function on the grading
inputs. Public tests and demonstration cells are not here: no instructor cell's leftovers are in
scope when an answer runs. Magics and shell escapes arrive already rewritten by the grader's
analysis into ``get_ipython()`` calls, which :mod:`autograder.inside.shell` answers.

In ``notebook`` mode (``check`` on a student's machine) it runs every cell of the notebook —
public tests and demonstrations included — through IPython when it is installed, to report which
public tests fail; nothing is recorded then.

An import guard refuses every module an answer may not use, with a message that says what is
allowed. Where the job is sealed those modules do not even exist in its filesystem; on a
student's laptop the guard alone applies the same rule, by behaviour.

Progress on PROGRESS_FD (``start i``, ``error i Name``, ``record i``, ``done``) only drives the
grader's timers and messages: forging it gains nothing, since outputs are judged in the grader.
"""
import importlib.abc
import json
import os
import signal
import sys


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


class ImportGuard(importlib.abc.MetaPathFinder):
    """Refuses every module outside the answers' allowlist: the standard library and ``allowed`` packages."""

    def __init__(self, allowed):
        self.allowed = set(allowed)
        self.refused = []

    def allows(self, name):
        top = name.partition(".")[0]
        if top == "autograder":
            return name == "autograder" or name == "autograder.inside" or name.startswith("autograder.inside.")
        return top in sys.stdlib_module_names or top in self.allowed

    def find_spec(self, name, path=None, target=None):
        if self.allows(name):
            return None
        if name not in self.refused:
            self.refused.append(name)
        words = ", ".join(["the Python standard library", *sorted(self.allowed)])
        raise ModuleNotFoundError(f"No module named {name!r} while answers are recorded: answers may use "
                                  f"{words} only", name=name)


def main(argv):
    job_file, progress_fd = argv[0], int(argv[1])
    with open(job_file) as fh:
        job = json.load(fh)
    progress = os.fdopen(progress_fd, "w", buffering=1)

    def report(line):
        try:
            progress.write(line + "\n")
        except Exception:  # noqa: BLE001 - the student may have closed it; the grader notices EOF
            pass

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)              # over the file-size cap: EFBIG, not death
    limit = int(job["output_chars"])
    sys.stdout = _CappedStream(sys.__stdout__, limit)
    sys.stderr = _CappedStream(sys.__stderr__, limit // 4)

    if job["mode"] == "record":
        sys.meta_path.insert(0, ImportGuard(job["allow"]))
        import numpy  # noqa: F401 - loaded before any student code, for speed

        from autograder.inside import harness, shell

        adapters = harness.load_adapters(job["helpers"], job["calls"])
        harness.JOB = harness.Job(job["inputs_dir"], job["outputs_dir"], job["parts"], adapters)
        namespace = shell.user_namespace()
        for i, cell in enumerate(job["cells"]):
            if cell["kind"] == "record":
                report(f"record {i}")
                try:
                    harness.JOB.run_part(cell["part"], namespace)
                except BaseException:   # noqa: BLE001 - e.g. an interrupt between two cases
                    pass
                continue
            report(f"start {i}")
            error = shell.run_cell(cell["source"], namespace, cell["label"])
            if error is not None:
                report(f"error {i} {error}")
    else:
        from autograder.inside import shell

        run = shell.ipython_runner()
        for i, cell in enumerate(job["cells"]):
            report(f"start {i}")
            error = run(cell["source"], cell["label"])
            if error is not None:
                report(f"error {i} {error}")
    report("done")
    try:
        sys.__stdout__.flush()
        sys.__stderr__.flush()
    finally:
        os._exit(0)       # skip the student's atexit handlers and non-daemon threads


if __name__ == "__main__":
    main(sys.argv[1:])
