"""Static checks of the student's code (ast), run in the grader before execution.

A part is *flagged* (0 points, with the reason) when

- a graded function uses torch, tensorflow or jax (import, name, ``__import__``/``import_module``);
  the same use anywhere else in the student's cells flags every part of the notebook, since an
  imported framework can reach any function;
- the answer uses mlp_lib's own implementation of the function being graded
  (``mlp_lib.layers.linear_forward``, ``from mlp_lib.layers import linear_forward``, an alias of
  either), or one of the part's ``forbid`` names; a star import from mlp_lib flags every part.

This is a deterrent, not a proof: code built at run time (``exec`` of a string) escapes it. The
kernel's audit hook (torch imported at run time) and the reported module of each graded function
back it up.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

BANNED = ("torch", "tensorflow", "jax")
ALL_PARTS = "*"


@dataclass(frozen=True)
class Flag:
    part: str            # a part id, or "*" for every part of the notebook
    reason: str


def _parse(source: str):
    """The cell's AST; magics and shell escapes are first transformed the way IPython runs them."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(source))


def check_cells(cells, plans) -> list[Flag]:
    """Flags for the student's code cells (``cells``: notebooks.Cell with origin 'student')."""
    flags: list[Flag] = []
    graded = {}
    for plan in plans:
        for fname in plan.functions:
            graded.setdefault(fname, []).append(plan.id)
    for cell in cells:
        if cell.cell_type != "code" or cell.origin != "student":
            continue
        try:
            tree = _parse(cell.source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue          # it fails the same way when executed: nothing of it runs
        where = f"cell {cell.index + 1}"
        flags += _banned_frameworks(tree, graded, where)
        flags += _mlp_lib_implementations(tree, plans, where)
    unique = []
    for f in flags:
        if f not in unique:
            unique.append(f)
    return unique


def _banned_root(node) -> str | None:
    """The banned framework a node refers to, if any."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.partition(".")[0] in BANNED:
                return alias.name.partition(".")[0]
    elif isinstance(node, ast.ImportFrom):
        if node.module and node.level == 0 and node.module.partition(".")[0] in BANNED:
            return node.module.partition(".")[0]
    elif isinstance(node, ast.Name) and node.id in BANNED:
        return node.id
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name in ("__import__", "import_module") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and \
                    arg.value.partition(".")[0] in BANNED:
                return arg.value.partition(".")[0]
    return None


def _banned_frameworks(tree, graded: dict, where: str) -> list[Flag]:
    flags = []
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in graded:
            for sub in ast.walk(node):
                inside.add(id(sub))
                lib = _banned_root(sub)
                if lib:
                    for pid in graded[node.name]:
                        flags.append(Flag(pid, f"{node.name} uses {lib} ({where}, line {sub.lineno}); "
                                               f"answers must be numpy only"))
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
        lib = _banned_root(node)
        if lib:
            flags.append(Flag(ALL_PARTS, f"the notebook uses {lib} ({where}, line {node.lineno}); "
                                         f"answers must be numpy only"))
    return flags


def _mlp_lib_implementations(tree, plans, where: str) -> list[Flag]:
    aliases: dict[str, str] = {}        # local name -> dotted mlp_lib path it stands for
    flags = []

    def forbidden(dotted: str) -> list[str]:
        hits = []
        leaf = dotted.rpartition(".")[2]
        for plan in plans:
            if (dotted.startswith("mlp_lib.") and leaf == plan.function) or dotted in plan.forbid:
                hits.append(plan.id)
        return hits

    def flag(dotted: str, line: int):
        for pid in forbidden(dotted):
            flags.append(Flag(pid, f"uses {dotted}, the library's own implementation of what this part grades "
                                   f"({where}, line {line})"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "mlp_lib" or alias.name.startswith("mlp_lib."):
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases["mlp_lib"] = "mlp_lib"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                (node.module == "mlp_lib" or node.module.startswith("mlp_lib.")):
            for alias in node.names:
                if alias.name == "*":
                    flags.append(Flag(ALL_PARTS, f"'from {node.module} import *' hides which implementation "
                                                 f"is graded ({where}, line {node.lineno})"))
                    continue
                dotted = f"{node.module}.{alias.name}"
                aliases[alias.asname or alias.name] = dotted
                flag(dotted, node.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node, aliases)
            if dotted:
                flag(dotted, node.lineno)
    return flags


def _dotted(node: ast.Attribute, aliases: dict) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def runtime_flags(part_outputs, plans, banned_imports) -> list[Flag]:
    """Flags from what the kernel reported: torch imported at run time, mlp_lib's function graded."""
    flags = []
    for lib in banned_imports:
        flags.append(Flag(ALL_PARTS, f"{lib} was imported while the notebook ran; answers must be numpy only"))
    for plan in plans:
        outs = part_outputs.get(plan.id)
        if outs is None:
            continue
        for fname, module in outs.modules.items():
            if module and module.partition(".")[0] in ("mlp_lib", *BANNED):
                flags.append(Flag(plan.id, f"{fname} is {module}'s own function, not yours"))
    return flags
