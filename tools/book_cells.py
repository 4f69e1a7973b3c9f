"""Keep the book's checks out of the reader's way: ``glue`` and ``assert`` cells are collapsed.

A chapter's code does two jobs. Some of it teaches (the model, the training loop, the
plot); some of it only checks the claims of the text and hands numbers to it
(``assert``, ``np.testing.assert_*``, ``glue``). The checks must run at every build, but
the reader should not have to read them between a figure and its discussion. The
convention, enforced by ``tests/test_book.py``:

* a code cell that only checks is tagged ``hide-input``: it runs, and its source is
  collapsed behind a "Show code cell source" toggle;
* a visible code cell does not *end* with checks: the trailing checks go into a
  collapsed cell of their own, right after it.

``python -m tools.book_cells split book/NN_<topic>.ipynb ...`` applies the convention
(splits the trailing checks off and tags check-only cells); ``check`` lists the cells
that break it. A trailing statement counts as part of the checks when it is an
``assert``, a ``glue(...)`` call, an ``np.testing.assert_*(...)`` call, a ``for``/``if``
whose body is only such statements, or an assignment whose names no later cell of the
notebook reads (a value computed for the checks alone).
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

HIDDEN_TAGS = ("hide-input", "remove-input", "remove-cell")
COLLAPSE_TAG = "hide-input"


def _is_check_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
        return False
    func = node.value.func
    if isinstance(func, ast.Name):
        return func.id == "glue"
    return isinstance(func, ast.Attribute) and func.attr.startswith("assert_")


def is_check(node: ast.stmt) -> bool:
    """An assert, a glue call, an np.testing.assert_* call, or a loop/if made only of those."""
    if isinstance(node, ast.Assert) or _is_check_call(node):
        return True
    if isinstance(node, (ast.For, ast.If)):
        body = list(node.body) + list(node.orelse)
        return bool(body) and all(is_check(n) for n in body)
    return False


#: Calls allowed on the right-hand side of an assignment that moves with the checks: arithmetic
#: on values already computed, never a model, a training run or a plot.
_CHEAP_FUNCTIONS = {"float", "int", "len", "min", "max", "abs", "sum", "sorted", "any", "all", "round", "list",
                    "tuple", "dict", "set", "zip", "range", "enumerate", "next", "str", "bool", "isinstance"}
_CHEAP_METHODS = {"mean", "std", "var", "max", "min", "sum", "argmax", "argmin", "index", "count", "item",
                  "copy", "ravel", "reshape", "tolist", "keys", "values", "items", "all", "any", "get"}
_CHEAP_MODULES = {"np", "math"}


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _cheap(expr: ast.AST) -> bool:
    for call in (n for n in ast.walk(expr) if isinstance(n, ast.Call)):
        func = call.func
        if isinstance(func, ast.Name) and func.id in _CHEAP_FUNCTIONS:
            continue
        if isinstance(func, ast.Attribute):
            root = _root(func)
            if isinstance(root, ast.Name) and root.id in _CHEAP_MODULES:
                continue
            if func.attr in _CHEAP_METHODS:
                continue
        return False
    return True


def _assigned_names(node: ast.stmt) -> set[str] | None:
    """Names bound by a plain assignment of a cheap value; None for any other statement."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None or not _cheap(node.value):
        return None
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = set()
    for target in targets:
        if not isinstance(target, (ast.Name, ast.Tuple, ast.List)):
            return None                                   # mutates an object: not a value of its own
        names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _names_read(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def check_suffix(source: str, later_reads: set[str]) -> int | None:
    """Line index (0-based) where the cell's trailing checks start; None when it has none.

    0 means the whole cell is checks. An assignment joins the checks only when its value is
    cheap arithmetic and no later cell reads its names (``later_reads``): a name the reader
    meets again stays visible.
    """
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    start = len(body)
    while start > 0:
        node = body[start - 1]
        names = _assigned_names(node)
        if not (is_check(node) or (names is not None and not (names & later_reads))):
            break
        start -= 1
    # A leading assignment belongs to the checks only if they read it (not a value nobody looks at).
    while start < len(body) and not is_check(body[start]):
        read_after = set().union(*(_names_read(ast.unparse(n)) for n in body[start + 1:]))
        if not (_assigned_names(body[start]) & read_after):
            start += 1
        elif not any(is_check(n) for n in body[start:]):
            return None
        else:
            break
    if start == len(body) or not any(is_check(n) for n in body[start:]):
        return None
    first = body[start]
    return min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])]) - 1


def violations(notebook: dict) -> list[str]:
    """Code cells that break the convention, as readable lines."""
    cells = notebook["cells"]
    code = [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    found = []
    for k, (i, cell) in enumerate(code):
        if any(t in _tags(cell) for t in HIDDEN_TAGS):
            continue
        later = set().union(*(_names_read(_source(c)) for _, c in code[k + 1:])) if k + 1 < len(code) else set()
        start = check_suffix(_source(cell), later)
        if start is None:
            continue
        what = "only checks: tag it hide-input" if start == 0 else f"ends with checks from line {start + 1}: split them off"
        found.append(f"cell {i} {what}: {_source(cell).splitlines()[start][:70]!r}")
    return found


def split_checks(notebook: dict) -> int:
    """Apply the convention in place; returns the number of cells changed."""
    cells = notebook["cells"]
    changed, i = 0, 0
    while i < len(cells):
        cell = cells[i]
        if cell["cell_type"] != "code" or any(t in _tags(cell) for t in HIDDEN_TAGS):
            i += 1
            continue
        later = set()
        for c in cells[i + 1:]:
            if c["cell_type"] == "code":
                later |= _names_read(_source(c))
        lines = _source(cell).splitlines(keepends=True)
        start = check_suffix("".join(lines), later)
        if start is None:
            i += 1
            continue
        changed += 1
        if start == 0 or not "".join(lines[:start]).strip():
            cell.setdefault("metadata", {})["tags"] = _tags(cell) + [COLLAPSE_TAG]
            i += 1
            continue
        teaching = "".join(lines[:start]).rstrip("\n")
        checks = "".join(lines[start:]).strip("\n")
        cell["source"] = _lines(teaching)
        cell["outputs"], cell["execution_count"] = [], None
        new = {"cell_type": "code", "execution_count": None, "id": _new_id(notebook, cell.get("id", "c")),
               "metadata": {"tags": [COLLAPSE_TAG]}, "outputs": [], "source": _lines(checks)}
        cells.insert(i + 1, new)
        i += 2
    return changed


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _new_id(notebook: dict, base: str) -> str:
    ids = {c.get("id") for c in notebook["cells"]}
    k = 1
    while f"{base}-checks{k if k > 1 else ''}" in ids:
        k += 1
    return f"{base}-checks{k if k > 1 else ''}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.book_cells", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["split", "check"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if args.command == "split":
            n = split_checks(notebook)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path}: {n} cell(s) changed")
        else:
            for line in violations(notebook):
                print(f"{path}: {line}")
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
