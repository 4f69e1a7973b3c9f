"""Code similarity of answers: fingerprints over a normalised syntax tree, compared by winnowing.

For the instructor's review only; nothing here changes a score.

* :func:`tokens` walks an answer's syntax tree (so layout, comments and docstrings do not count)
  and writes each node as a token; the names the function binds (its parameters and local
  variables) become ``V`` and literals become ``C``, so renaming variables or changing constants
  changes nothing, while the library calls used (``np.exp``, ``.sum``) stay as they are.
* :func:`fingerprint` hashes every run of :data:`K` consecutive tokens and keeps, in each window
  of :data:`W` hashes, the smallest (winnowing, Schleimer, Wilkerson and Aiken 2003): any common run
  of at least ``K + W - 1`` tokens shows up as a shared fingerprint. The release's starter code
  (the stub the student filled in) is subtracted first.
* :func:`compare` = the shared fingerprints over the smaller set (how much of the shorter answer
  is in the other), with the lines they cover for a side-by-side view. Answers shorter than
  :data:`MIN_TOKENS` tokens beyond the stub are never compared: there are few ways to write
  ``np.maximum(x, 0)``.
* :func:`reference_corpus`: for each graded function, mlp_lib's own implementation (the function
  of the same name and the grading spec's ``forbid`` names) and the solution's answer, keyed by
  the function's name, to compare every student's answer with.

Flagging one answer while grading (a worker has the part's plan, the student's cells and the stub)::

    answer = answers_of(student_code_cells, [plan.function]).get(plan.function)
    fp = fingerprint(answer, starter=stub) if answer else None
    if fp is not None and fp.comparable:
        for ref in library_references(plan.function, plan.forbid):
            s = containment(fp, ref.fingerprint)
            if s.score >= THRESHOLD:
                ...   # note "alike to {ref.label} ({s.score:.0%})" in the result; the score is unchanged
"""
from __future__ import annotations

import ast
import functools
import textwrap
import zlib
from dataclasses import dataclass, field
from pathlib import Path

K = 5                 # tokens per k-gram
W = 4                 # winnowing window (k-grams)
MIN_TOKENS = 40       # an answer with fewer tokens (beyond the starter code) is never flagged
THRESHOLD = 0.6       # reported from this similarity on

_SKIP = (ast.expr_context, ast.Load, ast.Store, ast.Del)
MLP_LIB = Path(__file__).resolve().parent.parent / "mlp_lib"


@dataclass(frozen=True)
class Fingerprint:
    hashes: frozenset                  # the winnowed k-gram hashes
    lines: dict = field(default_factory=dict, hash=False, compare=False)   # hash -> set of source lines
    tokens: int = 0                    # tokens beyond the starter code
    source: str = ""

    @property
    def comparable(self) -> bool:
        return self.tokens >= MIN_TOKENS


@dataclass(frozen=True)
class Similarity:
    score: float                       # shared / min(|a|, |b|), in [0, 1]
    shared: int
    lines_a: frozenset = frozenset()
    lines_b: frozenset = frozenset()


@dataclass(frozen=True)
class Reference:
    label: str                         # "mlp_lib.layers.relu_forward", "solution"
    function: str
    fingerprint: Fingerprint


# -- tokens ------------------------------------------------------------------------------------------
def _bound_names(tree: ast.AST) -> set[str]:
    """Names the code binds: parameters, assignment targets, loop and with variables, local defs."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = body[1:] or [ast.Pass(lineno=first.lineno, col_offset=0)]
    return tree


def tokens(source: str) -> list[tuple[str, int]]:
    """(token, line) of the normalised syntax tree; [] when the source does not parse."""
    try:
        tree = _without_docstrings(ast.parse(textwrap.dedent(source)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    bound = _bound_names(tree)
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST, line: int) -> None:
        if isinstance(node, _SKIP):
            return
        line = getattr(node, "lineno", line)
        if isinstance(node, ast.Name):
            out.append(("V" if node.id in bound else node.id, line))
            return
        if isinstance(node, ast.Constant):
            out.append(("C", line))
            return
        if isinstance(node, ast.arg):
            out.append(("arg", line))
            return
        out.append((type(node).__name__, line))
        if isinstance(node, ast.Attribute):
            out.append(("." + node.attr, line))
        for child in ast.iter_child_nodes(node):
            visit(child, line)

    visit(tree, 1)
    return out[1:]          # drop the Module token


def _kgrams(toks: list[tuple[str, int]], k: int) -> list[tuple[int, frozenset]]:
    out = []
    for i in range(len(toks) - k + 1):
        window = toks[i:i + k]
        h = zlib.crc32("\x1f".join(t for t, _ in window).encode())
        out.append((h, frozenset(line for _, line in window)))
    return out


def _winnow(grams: list[tuple[int, frozenset]], w: int) -> list[tuple[int, frozenset]]:
    if len(grams) <= w:
        return grams
    picked, last = [], -1
    for start in range(len(grams) - w + 1):
        window = grams[start:start + w]
        low = min(h for h, _ in window)
        at = start + max(i for i, (h, _) in enumerate(window) if h == low)    # rightmost minimum
        if at != last:
            picked.append(grams[at])
            last = at
    return picked


def fingerprint(source: str, *, starter: str | None = None) -> Fingerprint:
    """The winnowed fingerprints of ``source``, minus those of ``starter`` (the released stub)."""
    toks = tokens(source)
    grams = _winnow(_kgrams(toks, K), W)
    ignore = set(h for h, _ in _kgrams(tokens(starter), K)) if starter else set()
    lines: dict[int, set] = {}
    for h, covered in grams:
        if h not in ignore:
            lines.setdefault(h, set()).update(covered)
    beyond = len(toks) - (len(tokens(starter)) if starter else 0)
    return Fingerprint(hashes=frozenset(lines), lines=lines, tokens=max(0, beyond), source=source)


def compare(a: Fingerprint, b: Fingerprint, *, ignore=frozenset()) -> Similarity:
    """How much of the smaller answer is in the other (``ignore``: fingerprints common to the class)."""
    ha, hb = a.hashes - ignore, b.hashes - ignore
    if not ha or not hb:
        return Similarity(0.0, 0)
    shared = ha & hb
    return Similarity(len(shared) / min(len(ha), len(hb)), len(shared),
                      frozenset(line for h in shared for line in a.lines.get(h, ())),
                      frozenset(line for h in shared for line in b.lines.get(h, ())))


def containment(answer: Fingerprint, reference: Fingerprint) -> Similarity:
    """How much of ``answer`` is found in ``reference`` (a library function may do more than asked)."""
    if not answer.hashes:
        return Similarity(0.0, 0)
    shared = answer.hashes & reference.hashes
    return Similarity(len(shared) / len(answer.hashes), len(shared),
                      frozenset(line for h in shared for line in answer.lines.get(h, ())),
                      frozenset(line for h in shared for line in reference.lines.get(h, ())))


def common_fingerprints(prints: list[Fingerprint], *, fraction: float = 0.25, at_least: int = 3) -> frozenset:
    """Fingerprints present in more than max(at_least, fraction of the answers): the usual way to
    write something, not evidence of copying (as MOSS ignores code shared by many)."""
    counts: dict[int, int] = {}
    for fp in prints:
        for h in fp.hashes:
            counts[h] = counts.get(h, 0) + 1
    limit = max(at_least, int(fraction * len(prints)))
    return frozenset(h for h, n in counts.items() if n > limit)


# -- finding answers ---------------------------------------------------------------------------------------
def function_source(code: str, name: str) -> str | None:
    """The source of the last top-level ``def name`` (or ``class name``) in ``code``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            found = node
    return ast.get_source_segment(code, found) if found is not None else None


def _top_level_defs(code: str) -> dict[str, str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    return {node.name: ast.get_source_segment(code, node) or "" for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _called_names(source: str) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def with_helpers(name: str, defs: dict[str, str], *, depth: int = 3) -> str | None:
    """The source of ``name`` followed by the functions of ``defs`` it calls, transitively: code pasted in as
    a helper and called from a thin wrapper is part of the answer."""
    if name not in defs:
        return None
    seen, order, todo = {name}, [name], [(name, 0)]
    while todo:
        current, level = todo.pop(0)
        if level >= depth:
            continue
        for callee in sorted(_called_names(defs[current])):
            if callee in defs and callee not in seen:
                seen.add(callee)
                order.append(callee)
                todo.append((callee, level + 1))
    return "\n\n".join(defs[n] for n in order)


def answers_of(cells: list[str], functions) -> dict[str, str]:
    """{function: its source and the student's functions it calls} from a notebook's code cells (the last
    definition of each name wins, as when run)."""
    defs: dict[str, str] = {}
    for code in cells:
        defs.update(_top_level_defs(code))
    out = {}
    for name in functions:
        source = with_helpers(name, defs)
        if source is not None:
            out[name] = source
    return out


def _without_solution_markers(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


# -- the reference corpus -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def mlp_lib_sources(root: Path = MLP_LIB) -> dict[str, str]:
    """{"mlp_lib.<module>.<name>": source} of every top-level function and class of mlp_lib (parsed, not imported)."""
    out = {}
    for path in sorted(root.glob("*.py")):
        code = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out[f"mlp_lib.{path.stem}.{node.name}"] = ast.get_source_segment(code, node)
    return out


def library_references(function: str, forbid=()) -> list[Reference]:
    """mlp_lib's implementations an answer of ``function`` must not be: the mlp_lib function or class
    of that name and the ``forbid`` names of its part, each with the module's functions it calls (its
    private kernel, say); no course needed: a grading worker can call it."""
    library = mlp_lib_sources()
    labels = [label for label in library if label.rsplit(".", 1)[1] == function]
    labels += [f for f in forbid if f in library and f not in labels]
    refs = []
    for label in labels:
        module = label.rsplit(".", 1)[0]
        defs = {l.rsplit(".", 1)[1]: src for l, src in library.items() if l.rsplit(".", 1)[0] == module}
        refs.append(Reference(label, function, fingerprint(with_helpers(label.rsplit(".", 1)[1], defs))))
    return refs


def solution_references(course, assignment: str, functions) -> dict[str, Reference]:
    """function -> the solution's answer (from the source notebook's answer cells)."""
    from . import notebooks

    code = []
    for path in course.source_notebooks(assignment):
        for cell in notebooks.read_trusted(path)["cells"]:
            if cell.get("cell_type") == "code" and notebooks.is_solution_cell(cell):
                code.append(_without_solution_markers(notebooks.source_text(cell)))
    return {name: Reference(f"solutions/{assignment}", name, fingerprint(src))
            for name, src in answers_of(code, functions).items()}


def reference_corpus(course, spec) -> dict[str, list[Reference]]:
    """function name -> every reference an answer of it is compared with: :func:`library_references`
    (with the part's ``forbid``) and the solution (``spec``: an AssignmentSpec, or anything with
    ``name`` and ``parts`` having ``function`` and ``forbid``)."""
    solutions = solution_references(course, spec.name, [p.function for p in spec.parts])
    corpus: dict[str, list[Reference]] = {}
    for part in spec.parts:
        refs = corpus.setdefault(part.function, [])
        known = {r.label for r in refs}
        refs += [r for r in library_references(part.function, part.forbid) if r.label not in known]
        if part.function in solutions and solutions[part.function].label not in known:
            refs.append(solutions[part.function])
    return corpus


def starter_code(course, assignment: str, functions) -> dict[str, str]:
    """{function: its released stub} from the release notebooks (subtracted from every answer)."""
    import json

    from . import notebooks

    code = []
    for path in sorted((course.release_dir / assignment).glob("*.ipynb")):
        for cell in json.loads(path.read_text()).get("cells", []):
            if cell.get("cell_type") == "code" and notebooks.is_solution_cell(cell):
                code.append(notebooks.source_text(cell))
    return answers_of(code, functions)
