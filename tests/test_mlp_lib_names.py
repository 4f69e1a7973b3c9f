"""The names of mlp_lib that others rely on keep resolving.

The grading specs forbid mlp_lib functions by dotted name (a name that no longer
exists forbids nothing), and the book, the exercises and the specs import from
mlp_lib. Every such name, collected from the files themselves, must still be
an attribute of mlp_lib.
"""
from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

from autograder.course import Course
from autograder.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
DOTTED = re.compile(r"\bmlp_lib(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def resolve(dotted: str):
    """The object a dotted name refers to: its longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def _forbidden_names() -> list[tuple[str, str, str]]:
    course = Course.open(ROOT)
    return [(assignment, part.id, dotted) for assignment in course.assignments()
            for part in load_spec(course, assignment).parts for dotted in part.forbid]


FORBIDDEN = _forbidden_names()


def test_the_specs_forbid_mlp_lib_names():
    assert sum(dotted.startswith("mlp_lib.") for _, _, dotted in FORBIDDEN) >= 20


@pytest.mark.parametrize("assignment, part, dotted", FORBIDDEN, ids=[f"{a}:{p}:{d}" for a, p, d in FORBIDDEN])
def test_every_forbidden_name_resolves(assignment, part, dotted):
    resolve(dotted)


def _sources():
    """(file, Python source) of the book's and the exercises' code, and of the grading specs."""
    notebooks = [*ROOT.glob("book/*.ipynb"), *ROOT.glob("solutions/*/*.ipynb"), *ROOT.glob("exercises/*/*.ipynb")]
    for path in sorted(notebooks):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        # IPython magics and shell escapes are not Python
        yield path, "\n".join(line for cell in code for line in cell.splitlines()
                              if not line.lstrip().startswith(("%", "!")))
    for path in sorted(ROOT.glob("solutions/*/grading.py")):
        yield path, path.read_text(encoding="utf-8")


def _used_names() -> set[str]:
    names = set()
    for _, source in _sources():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mlp_lib":
                names.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names if alias.name.split(".")[0] == "mlp_lib")
        names.update(DOTTED.findall(source))  # also inside strings: forbid lists, messages
    return names


USED = sorted(_used_names())


def test_the_book_and_the_exercises_use_mlp_lib_names():
    assert "mlp_lib.modules.Perceptron" in USED and len(USED) >= 50


@pytest.mark.parametrize("dotted", USED)
def test_every_name_the_book_exercises_and_specs_use_resolves(dotted):
    resolve(dotted)


def test_perceptron_lives_in_its_own_module_and_is_still_importable_from_modules():
    from mlp_lib.modules import Perceptron
    from mlp_lib.perceptron import Perceptron as P

    assert Perceptron is P
    from mlp_lib import modules

    assert "Perceptron" not in modules.__all__  # not a Module


def test_unchecked_kernels_are_private():
    from mlp_lib import layers, normalization

    for module in (layers, normalization):
        assert not [name for name in module.__all__ if "kernel" in name or name.startswith("affine")]
        assert all(not name.startswith("_") for name in module.__all__)
