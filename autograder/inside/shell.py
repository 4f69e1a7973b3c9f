"""Running a cell in the student's process, and the little of IPython an answer cell may lean on.

While answers are recorded there is no IPython: the grader's analysis has already rewritten magics
and shell escapes (``%matplotlib inline``, ``!pip install``, ``%%time``) into ``get_ipython()``
calls, and :class:`RecordingShell` answers them: the cell magics that only measure their body
(``%%time``, ``%%timeit``, ``%%capture``) run the body once, everything else is skipped with a note
in the log. Nothing here runs a program or reads another file.
"""
import sys
import traceback

MEASURING_CELL_MAGICS = ("time", "timeit", "capture", "prun")


def run_cell(source, namespace, label):
    """Execute ``source`` in ``namespace``; return the exception's class name, or None."""
    try:
        code = compile(source, f"<{label}>", "exec")
        exec(code, namespace)
    except BaseException as exc:   # noqa: BLE001 - the student's code may raise anything
        _print_error(exc, label)
        return type(exc).__name__
    return None


def _print_error(exc, label):
    try:
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4)
        sys.stderr.write(f"--- {label} raised:\n" + "".join(lines)[-3000:])
    except BaseException:   # noqa: BLE001 - a hostile __str__
        sys.stderr.write(f"--- {label} raised {type(exc).__name__}\n")


class RecordingShell:
    """What ``get_ipython()`` returns while answers are recorded."""

    def __init__(self, namespace):
        self.user_ns = namespace

    def run_line_magic(self, name, line, _stack_depth=1):
        print(f"(%{name} is skipped while answers are recorded)")

    def run_cell_magic(self, name, line, cell):
        if name in MEASURING_CELL_MAGICS:
            error = run_cell(cell, self.user_ns, f"%%{name} cell")
            if error is not None:
                raise RuntimeError(f"the %%{name} cell raised {error}")
            return None
        print(f"(%%{name} is skipped while answers are recorded)")
        return None

    def system(self, cmd):
        print("(shell commands are skipped while answers are recorded)")

    def getoutput(self, cmd, split=True, depth=0):
        self.system(cmd)
        return []

    magic = run_line_magic


def user_namespace():
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    shell = RecordingShell(namespace)
    namespace["get_ipython"] = lambda: shell
    namespace["display"] = lambda *objects, **kwargs: None
    return namespace


def ipython_runner():
    """``run(source, label) -> error name or None`` through IPython's InteractiveShell (magics work),
    or plain ``exec`` when IPython is not installed."""
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
    except ImportError:
        namespace = user_namespace()
        return lambda source, label: run_cell(source, namespace, label)
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.xmode = "Plain"
    shell = InteractiveShell.instance(config=config)

    def run(source, label):
        try:
            result = shell.run_cell(source, store_history=False)
        except BaseException as exc:   # noqa: BLE001 - an interrupt outside run_cell's own handler
            return type(exc).__name__
        err = result.error_before_exec or result.error_in_exec
        return None if err is None else type(err).__name__

    return run
