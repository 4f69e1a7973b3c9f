"""What the grader reads out of the student's code before running it — bounded, outside the grading process.

For every code cell the job will run: IPython's own transform turns magics and shell escapes into
plain Python (``get_ipython()`` calls the kernel answers), then ``ast`` lists the modules it
imports and the functions it defines (their source and the names they call), for messages
("``mlp_lib`` is not available while answers are recorded"), for the copy check and to name an
earlier part as the cause of a later one's failure.

Analysing untrusted text can take unbounded time or memory (a 4000-term expression, hundreds of
shell escapes), so it runs in a forked child under a CPU and an address-space limit and a wall
clock. If it cannot finish, the result is :class:`AnalysisFailed` and the submission is *held* —
never executed unanalysed, never passed, never a silent 0.
"""
from __future__ import annotations

import ast
import json
import os
import resource
import select
import signal
import time
from dataclasses import dataclass, field

MAX_CELL_CHARS = 400_000


@dataclass
class CellAnalysis:
    source: str                                  # what the kernel executes
    syntax_error: str | None = None
    imports: list = field(default_factory=list)  # top-level module names, in order
    functions: dict = field(default_factory=dict)   # name -> {"source": str, "calls": [names], "line": int}
    names: list = field(default_factory=list)       # names the cell binds at top level (def, =, import as)
    dynamic: list = field(default_factory=list)     # ways the cell builds code at run time (exec, marshal...)


class AnalysisFailed(Exception):
    """The analysis did not finish within its limits (the reason says which)."""


def transformer():
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def analyse_cell(source: str, transform) -> CellAnalysis:
    if len(source) > MAX_CELL_CHARS:
        raise AnalysisFailed(f"a cell holds {len(source):,} characters of code; the grader analyses at most "
                             f"{MAX_CELL_CHARS:,}")
    python = transform.transform_cell(source) if source.strip() else source
    try:
        tree = ast.parse(python)
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return CellAnalysis(source=python, syntax_error=f"{exc.msg}{where}")
    except (RecursionError, MemoryError, ValueError) as exc:
        raise AnalysisFailed(f"the code could not be parsed within the grader's limits ({type(exc).__name__})") \
            from None
    result = CellAnalysis(source=python)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            result.imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            result.imports.append(node.module)
    result.names = sorted(_bound_names(tree))
    result.dynamic = sorted(_code_built_at_run_time(tree))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            calls = sorted({n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)})
            result.functions[node.name] = {"source": ast.get_source_segment(python, node) or "", "calls": calls,
                                           "line": node.lineno}
    return result


CODE_BUILDERS = {"exec", "eval", "compile", "__import__"}
CODE_MODULES = {"marshal", "pickle", "dill", "cloudpickle", "importlib", "types", "codeop"}


def _code_built_at_run_time(tree) -> set[str]:
    """exec/eval/compile calls, code-object modules and ``__code__``: an answer whose code is not in the cell."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CODE_BUILDERS:
            found.add(node.func.id)
        elif isinstance(node, ast.Attribute) and node.attr in ("__code__", "__globals__", "co_code"):
            found.add(node.attr)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.partition(".")[0] in CODE_MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.partition(".")[0] in CODE_MODULES:
            found.add(node.module)
    return found


def _bound_names(tree) -> set[str]:
    """Names bound at the top level of a cell (also inside if/try/with/for blocks, which run at top level)."""
    names = set()
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names if a.name != "*")
            continue
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
        for target in targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        for block in ("body", "orelse", "finalbody", "handlers"):
            stack.extend(getattr(node, block, []) or [])
    return names


def analyse(sources: list[str], *, seconds: float = 20.0, memory_mb: int = 1024) -> list[CellAnalysis]:
    """Every cell analysed in a forked child under limits; :class:`AnalysisFailed` if it cannot finish."""
    transform = transformer()          # imported here, in the parent: the child only computes
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            resource.setrlimit(resource.RLIMIT_CPU, (int(seconds) + 1, int(seconds) + 1))
            # On top of what the forked grader already maps (torch alone maps gigabytes).
            address_space = _mapped_bytes() + (memory_mb << 20)
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
            try:
                cells = [analyse_cell(s, transform).__dict__ for s in sources]
                payload = {"cells": cells}
            except AnalysisFailed as exc:
                payload = {"failed": str(exc)}
            except RecursionError:
                payload = {"failed": "the code is nested too deeply to be analysed"}
            except MemoryError:
                payload = {"failed": f"analysing the code needed more than {memory_mb} MiB"}
            data = json.dumps(payload).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view):]
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        data = _read_all(read_fd, pid, deadline=time.monotonic() + seconds)
    finally:
        os.close(read_fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    if data is None:
        raise AnalysisFailed(f"analysing the code took longer than the grader's {seconds:g} s")
    try:
        payload = json.loads(data)
    except ValueError:
        raise AnalysisFailed("the analysis stopped before it finished (its memory or CPU limit)") from None
    if "failed" in payload:
        raise AnalysisFailed(payload["failed"])
    return [CellAnalysis(**c) for c in payload["cells"]]


def _mapped_bytes() -> int:
    """The address space this process maps now (VmSize)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) << 10
    return 0


def _read_all(fd: int, pid: int, *, deadline: float) -> bytes | None:
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
