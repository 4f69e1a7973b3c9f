"""A determined student against the sealed grader, on real chapters (ch03, ch07, ch09), graded as root with the real CLI.

Written after the mechanism, one family of attacks per kind the red team found (names instructor
cells leave behind, files the job could read, holes in "numpy only", student-reported data, state
crossing students, faults charged to students, hidden cases that never change), several cases per
kind. Each must earn nothing it did not earn, get a status and a message, cost no honest student
anything, and let the batch finish.
"""
from __future__ import annotations

import copy
import csv
import json
import marshal
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder import notebooks, references, results, rounds, sandbox
from autograder.cli import main
from autograder.course import Course

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder-hostile"),
              pytest.mark.skipif(bool(sandbox.sealing_problems()), reason="the sealed grader needs root")]

REPO = Path(__file__).resolve().parents[1]
CH03, CH07, CH09 = "ch03_backpropagation", "ch07_batch_normalization", "ch09_dropout"
LIMITS = {"cell_timeout": 20.0, "notebook_timeout": 60.0, "interrupt_grace": 1.0, "memory_mb": 1024, "nproc": 32,
          "disk_mb": 64, "analysis_seconds": 5.0}


# -- notebooks a student would make -------------------------------------------------------------------
def source(assignment):
    return json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text())


def release(assignment):
    return json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text())


def answer(assignment, gid):
    cell = next(c for c in source(assignment)["cells"] if notebooks.grade_id(c) == gid)
    return "\n".join(l for l in notebooks.source_text(cell).split("\n") if "### " not in l)


def solved(assignment, overrides=None):
    nb = release(assignment)
    for cell in nb["cells"]:
        gid = notebooks.grade_id(cell)
        if notebooks.is_solution_cell(cell):
            cell["source"] = (overrides or {}).get(gid, answer(assignment, gid))
    return nb


def add_cell(nb, code, *, after=None):
    nb = copy.deepcopy(nb)
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": code,
            "id": f"added{len(nb['cells'])}"}
    at = 0 if after is None else next(i for i, c in enumerate(nb["cells"]) if notebooks.grade_id(c) == after) + 1
    nb["cells"].insert(at, cell)
    return nb


def points(assignment):
    return {p["metadata"]["nbgrader"]["grade_id"]: float(p["metadata"]["nbgrader"]["points"])
            for p in source(assignment)["cells"] if notebooks.is_test_cell(p)}


def full(assignment):
    return sum(points(assignment).values())


def but(assignment, *lost):
    return full(assignment) - sum(points(assignment)[p] for p in lost)


# -- the class ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    os.chmod(root, 0o755)
    for sub in ("solutions", "exercises"):
        shutil_copy(REPO / sub, root / sub)
    (root / "autograder.toml").write_text("[limits]\n" + "".join(f"{k} = {v!r}\n" for k, v in LIMITS.items()))
    c = Course.open(root)
    assert cli(c, "references", "--device", "cpu", "--assignment", CH03, "--assignment", CH07,
               "--assignment", CH09) == 0
    return c


def shutil_copy(src, dst):
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)


def cli(c, *args):
    return main(["--course", str(c.root), *args])


def submit(c, student, assignment, nb):
    folder = c.submission_dir(student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    path.write_bytes(nb if isinstance(nb, bytes) else json.dumps(nb).encode())
    return path


def grade(c, students, *extra):
    args = ["grade", "--workers", "2", "--no-progress", "--regrade", *extra]
    for s in students:
        args += ["--student", s]
    return cli(c, *args)


def result(c, student, assignment):
    return results.load(c, student, assignment)


# attack -> (assignment, notebook or a callable(course, student) that submits, expected score, status kind)
def attacks():
    via_sys_modules = ('def max_norm(W, c):\n'
                       '    import sys\n    return sys.modules["mlp_lib.regularization"].max_norm(W, c)\n')
    solution_code = compile(answer(CH07, "standardizer-fit-impl"), "<pasted>", "exec")
    fn_code = next(c for c in solution_code.co_consts if hasattr(c, "co_code"))
    marshalled = ("import marshal, types\nimport numpy as np\n"
                  f"standardizer_fit = types.FunctionType(marshal.loads({marshal.dumps(fn_code)!r}), globals())\n")
    return {
        # 1. names the instructor's cells leave behind
        "n_reference_ce": (CH03, solved(CH03, {"softmax-ce-impl":
                           "def softmax_cross_entropy(logits, y):\n    return _reference_ce(logits, y)"}),
                           but(CH03, "softmax_cross_entropy"), "graded"),
        "n_experiment_first": (CH03, _experiment_first(), but(CH03, "affine_backward"), "graded"),
        "n_globals_of_test_import": (CH03, solved(CH03, {"affine-backward-impl":
                                     "def affine_backward(dout, cache):\n"
                                     "    return _linear_forward.__globals__['linear_backward'](dout, cache)"}),
                                     but(CH03, "affine_backward"), "graded"),
        "n_standardizer_alias": (CH07, solved(CH07, {"standardizer-fit-impl":
                                 "def standardizer_fit(X):\n    s = _Standardizer().fit(X)\n"
                                 "    return s.mean_, s.scale_"}), but(CH07, "standardizer_fit"), "graded"),
        "n_reg_alias": (CH09, solved(CH09, {"max-norm-impl": "def max_norm(W, c):\n    return _reg.max_norm(W, c)"}),
                        but(CH09, "max_norm"), "graded"),
        # 2. files the job could read
        "f_solutions_on_disk": (CH03, add_cell(release(CH03),
                                "import json\nnb = json.load(open('" + str(REPO / "solutions" / CH03 / f"{CH03}.ipynb")
                                + "'))\nfor c in nb['cells']:\n    exec(''.join(c['source']))", after="setup"),
                                0.0, "graded"),
        "f_next_to_mlp_lib": (CH03, add_cell(release(CH03),
                              "import os, mlp_lib\nexec(open(os.path.dirname(mlp_lib.__file__) + "
                              "'/../solutions/x.py').read())", after="setup"), 0.0, "graded"),
        "f_symlink_to_source": (CH07, _symlink_to_source, 0.0, "unreadable"),
        "f_hardlink_to_source": (CH07, _hardlink_to_source, 0.0, "unreadable"),
        "f_linked_folder": (CH09, _linked_folder, 0.0, "unreadable"),
        # 3. "numpy only"
        "o_scipy": (CH03, solved(CH03, {"softmax-ce-impl":
                    "from scipy.special import log_softmax\n" + answer(CH03, "softmax-ce-impl")}),
                    but(CH03, "softmax_cross_entropy"), "graded"),
        "o_sys_modules": (CH09, solved(CH09, {"max-norm-impl": via_sys_modules}), but(CH09, "max_norm"), "graded"),
        "o_importlib_getattr": (CH03, solved(CH03, {"affine-backward-impl":
                                "import importlib\nL = importlib.import_module('mlp_lib.' + 'layers')\n"
                                "affine_backward = getattr(L, 'linear_' + 'backward')"}),
                                but(CH03, "affine_backward"), "graded"),
        "o_exec_torch": (CH09, add_cell(solved(CH09), "exec('import torch')", after="setup"), full(CH09), "graded"),
        "o_run_magic": (CH03, solved(CH03, {"tanh-backward-impl":
                        f"%run {REPO / 'solutions' / CH03}/helpers.py"}), but(CH03, "tanh_backward"), "graded"),
        "o_getsource": (CH07, solved(CH07, {"standardizer-fit-impl":
                        "import inspect, mlp_lib.normalization as N\nexec(inspect.getsource(N.Standardizer))\n"
                        "def standardizer_fit(X):\n    s = Standardizer().fit(X)\n    return s.mean_, s.scale_"}),
                        but(CH07, "standardizer_fit"), "graded"),
        "o_marshal": (CH07, solved(CH07, {"standardizer-fit-impl": marshalled}), full(CH07), "graded"),
        "o_huge_expression": (CH03, add_cell(solved(CH03), "x = " + "+".join(["1"] * 4000), after="setup"),
                              0.0, "held"),
        # 4. student-reported data
        "r_outputs_without_function": (CH07, _outputs_without_function(), but(CH07, "standardizer_fit"), "graded"),
        "r_in_place_and_patched_save": (CH09, add_cell(solved(CH09, {"dropout-backward-impl":
                                        "def dropout_backward(dout, cache):\n    keep, p = cache\n"
                                        "    if keep is None:\n        return dout\n"
                                        "    dout *= keep / (1 - p)\n    return dout"}),
                                        "import numpy as np\n_save = np.save\n"
                                        "np.save = lambda f, a, **k: _save(f, a, **k)", after="setup"),
                                        but(CH09, "dropout_backward"), "graded"),
        # 5. state crossing students
        "s_fork_memory": (CH07, add_cell(solved(CH07), "import os, time\nfor _ in range(5):\n"
                          "    if os.fork() == 0:\n        b = bytearray(400 << 20)\n"
                          "        for i in range(0, len(b), 4096):\n            b[i] = 1\n"
                          "        time.sleep(2)\n        os._exit(0)\n"
                          "for _ in range(5):\n    os.wait()", after="setup"), full(CH07), "graded"),
        "s_fill_the_disk": (CH09, add_cell(solved(CH09), "try:\n    with open('/tmp/fill', 'wb') as f:\n"
                            "        while True:\n            f.write(b'x' * (1 << 20))\nexcept OSError:\n    pass",
                            after="setup"), full(CH09), "graded"),
        # 6. faults that must not be charged to the student
        "t_metadata_lost": (CH09, _without_metadata(solved(CH09)), full(CH09), "graded"),
        "t_shell_escapes": (CH03, add_cell(solved(CH03), "!ls\n" * 500 + "y = '" + "x" * 120_000 + "'",
                            after="setup"), 0.0, "held"),
    }


def _experiment_first():
    nb = solved(CH03, {"affine-backward-impl": "def affine_backward(dout, cache):\n"
                                               "    return layers.linear_backward(dout, cache)"})
    experiment = next(c for c in nb["cells"] if notebooks.grade_id(c) == "experiment")
    nb["cells"].remove(experiment)
    nb["cells"].insert(0, experiment)
    return nb


def _outputs_without_function():
    nb = solved(CH07)
    for cell in nb["cells"]:
        if notebooks.grade_id(cell) == "standardizer-fit-impl":
            cell["source"] = ("import json, numpy as np\n"
                              "idx = json.load(open('/sealed/inputs/inputs.json'))\n"
                              "for i in range(len(idx['standardizer_fit'])):\n"
                              "    np.save(f'/sealed/outputs/standardizer_fit__{i}__out__mean.npy', np.zeros(3))\n"
                              "    json.dump({'error': None, 'warnings': []}, "
                              "open(f'/sealed/outputs/standardizer_fit__{i}.json', 'w'))\n"
                              "json.dump({'error': None}, open('/sealed/outputs/standardizer_fit.json', 'w'))\n")
    return nb


def _without_metadata(nb):
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell["metadata"] = {}
    nb["metadata"] = {}
    return nb


def _symlink_to_source(c, student, assignment):
    folder = c.submission_dir(student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink(c.source_dir / assignment / f"{assignment}.ipynb", folder / f"{assignment}.ipynb")


def _hardlink_to_source(c, student, assignment):
    folder = c.submission_dir(student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    os.link(c.source_dir / assignment / f"{assignment}.ipynb", folder / f"{assignment}.ipynb")


def _linked_folder(c, student, assignment):
    (c.submitted_dir / student).mkdir(parents=True, exist_ok=True)
    os.symlink(c.source_dir / assignment, c.submission_dir(student, assignment))


def test_every_attack_earns_nothing_it_did_not_earn_and_honest_students_lose_nothing(course):
    cases = attacks()
    for student, (assignment, nb, _, _) in cases.items():
        if callable(nb):
            nb(course, student, assignment)
        else:
            submit(course, student, assignment, nb)
    honest = {f"honest_{a}": a for a in (CH03, CH07, CH09)}
    for student, assignment in honest.items():
        submit(course, student, assignment, solved(assignment))
    submit(course, ".dotted", CH09, solved(CH09))                 # a dot-named student is a student
    assert grade(course, [*cases, *honest, ".dotted"]) == 0

    problems = []
    for student, (assignment, _, score, kind) in cases.items():
        r = result(course, student, assignment)
        if r is None:
            problems.append(f"{student}: no result")
            continue
        got = None if r.status.pending else r.score
        want = None if kind == "held" else score
        if got != want or r.status.kind != kind:
            problems.append(f"{student}: {got} ({r.status}), expected {want} ({kind})")
        if r.status.kind != "graded" and not r.status.reason:
            problems.append(f"{student}: status {r.status.kind} without a reason")
    for student, assignment in [*honest.items(), (".dotted", CH09)]:
        r = result(course, student, assignment)
        if (r.score, r.status.kind) != (full(assignment), "graded"):
            problems.append(f"honest {student}: {r.score} ({r.status})")
    assert not problems, "\n".join(problems)

    nb = {s: result(course, s, a).notebooks[a] for s, (a, *_) in cases.items()}
    assert "symbolic link" in nb["f_symlink_to_source"].status.reason
    assert "hard link" in nb["f_hardlink_to_source"].status.reason
    assert "symbolic link" in nb["f_linked_folder"].status.reason
    assert any(r["kind"] == "code built at run time" for r in nb["o_marshal"].review)
    assert any(r["kind"] == "code built at run time" for r in nb["o_exec_torch"].review)
    assert "not defined in your notebook" in " ".join(nb["r_outputs_without_function"].parts["standardizer_fit"].messages)
    assert "read-only" in " ".join(nb["r_in_place_and_patched_save"].parts["dropout_backward"].messages)
    assert any("metadata was lost" in n for n in nb["t_metadata_lost"].notes)
    assert "could not analyse" in nb["t_shell_escapes"].status.reason
    assert any("imports scipy.special, which is not available" in n for n in nb["o_scipy"].notes)
    out = Path(course.work / "grades.csv")
    assert cli(course, "export", "--output", str(out)) == 0
    rows = list(csv.DictReader(out.open()))
    assert any(r["student"] == ".dotted" and r["assignment"] == CH09 and r["status"] == "graded" for r in rows)
    assert [r for r in rows if r["student"] == "o_huge_expression" and r["assignment"] == CH03][0]["score"] == "pending"


def test_files_left_by_one_student_never_reach_the_next(course):
    writer = add_cell(release(CH03), "open('/tmp/answers.py', 'w').write(" + repr(
        "\n".join(answer(CH03, g) for g in ("affine-backward-impl", "sigmoid-backward-impl"))) + ")\n"
        "open('/var/tmp/answers.py', 'w').write('x')\nopen('/dev/shm/answers.py', 'w').write('x')", after="setup")
    reader = add_cell(release(CH03), "import os, sys\nfor d in ('/tmp', '/var/tmp', '/dev/shm'):\n"
                                     "    if os.path.exists(d + '/answers.py'):\n        print('FOUND', d)\n"
                                     "        sys.path.insert(0, d)\n        from answers import *", after="setup")
    submit(course, "writer", CH03, writer)
    submit(course, "reader", CH03, reader)
    assert grade(course, ["writer"]) == 0
    assert grade(course, ["reader"]) == 0
    r = result(course, "reader", CH03)
    assert r.score == 0 and "FOUND" not in r.notebooks[CH03].log


def test_a_broken_spec_or_a_corrupt_references_file_costs_its_own_assignment_only(course, tmp_path, capsys):
    import shutil

    root = tmp_path / "faulty"
    shutil.copytree(course.root, root, symlinks=True, ignore=shutil.ignore_patterns("submitted", "autograded"))
    c = Course.open(root)
    with open(c.spec_path(CH07), "a") as fh:
        fh.write("\nthis is not python\n")
    npz = c.references_dir / f"{CH03}.npz"
    npz.write_bytes(npz.read_bytes()[:200])
    for a in (CH03, CH07, CH09):
        submit(c, "ann", a, solved(a))
    code = cli(c, "grade", "--workers", "2", "--no-progress")
    err = capsys.readouterr().err
    assert code == 2 and f"{CH07}: not graded: SpecError" in err and "Traceback" not in err
    assert result(c, "ann", CH03).score == full(CH03)              # references recomputed
    assert "the stored references are unreadable" in result(c, "ann", CH03).references
    assert result(c, "ann", CH09).score == full(CH09)
    assert result(c, "ann", CH07) is None


def test_what_a_round_reveals_is_useless_in_the_next_round(course, monkeypatch):
    """A lookup table of the hidden cases' answers (the most a round's feedback could ever leak) scores in its
    round and nothing in the next: hidden cases change with each round, and stay within one."""
    from autograder.spec import load_spec

    spec = load_spec(course, CH03)
    seed = rounds.hidden_seed(course)
    data = references.compute(spec, seed, "cpu", with_mutants=False)
    table = {case.inputs["dout"].tobytes().hex(): case.expected["dx"].tolist()
             for case in data["sigmoid_backward"].cases}
    cheat = ("import numpy as np\nTABLE = " + repr(table) + "\n"
             "def sigmoid_backward(dout, cache):\n"
             "    key = np.ascontiguousarray(dout).tobytes().hex()\n"
             "    return np.array(TABLE[key]) if key in TABLE else np.zeros_like(dout)\n")
    submit(course, "lookup", CH03, solved(CH03, {"sigmoid-backward-impl": cheat}))
    assert grade(course, ["lookup"]) == 0
    first = result(course, "lookup", CH03)
    rounds.start_new(course, "resubmission")
    try:
        assert grade(course, ["lookup"]) == 0
        second = result(course, "lookup", CH03)
        assert second.round == "2" and second.notebooks[CH03].parts["sigmoid_backward"].points == 0
        assert first.notebooks[CH03].parts["sigmoid_backward"].points == 1.0          # within its own round
        again = json.loads(course.result_path("lookup", CH03).read_text())
        assert grade(course, ["lookup"]) == 0                          # within a round: the same verdicts
        assert json.loads(course.result_path("lookup", CH03).read_text())["score"] == again["score"]
    finally:
        path = course.private_dir / "rounds.json"
        path.unlink()


def _renamed(source: str, prefix: str) -> str:
    """``source`` with every local variable renamed and its layout redone (what a copier does).

    Parameters keep their names: callers may pass them by keyword."""
    import ast

    tree = ast.parse(source)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in bound:
            node.id = prefix + node.id
    return ast.unparse(tree)


def test_copies_of_the_library_or_of_another_student_are_flagged_for_review_and_scores_unchanged(course):
    import inspect

    from mlp_lib import normalization

    train = _renamed(inspect.getsource(normalization._batchnorm_train), "my_").replace(
        "def _batchnorm_train", "def train_kernel")
    infer = _renamed(inspect.getsource(normalization._batchnorm_eval), "my_").replace(
        "def _batchnorm_eval", "def eval_kernel")
    wrapper = ("def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, "
               "eps=1e-5):\n    if training:\n        return train_kernel(x, gamma, beta, running_mean, running_var, "
               "momentum, eps)\n    return eval_kernel(x, gamma, beta, running_mean, running_var, eps)\n")
    submit(course, "copier_lib", CH07, solved(CH07, {"batchnorm-forward-impl": "\n\n".join([train, infer, wrapper])}))
    # copier_a's own answer, unlike the solution that many students of this course submit (code most of
    # the class wrote alike is no evidence), and copier_b's renamed, re-laid-out copy of it
    own = (
        "def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5):\n"
        "    if not training:\n"
        "        stats = {'mu': running_mean, 'sigma2': running_var}\n"
        "        updated = (np.array(running_mean, copy=True), np.array(running_var, copy=True))\n"
        "    else:\n"
        "        batch = x.shape[0]\n"
        "        stats = {'mu': np.mean(x, axis=0), 'sigma2': np.var(x, axis=0)}\n"
        "        unbiased = np.var(x, axis=0, ddof=1)\n"
        "        updated = (momentum * stats['mu'] + (1 - momentum) * running_mean,\n"
        "                   momentum * unbiased + (1 - momentum) * running_var)\n"
        "    centred = x - stats['mu']\n"
        "    scale = (stats['sigma2'] + eps) ** -0.5\n"
        "    normalised = centred * scale\n"
        "    result = normalised * gamma + beta\n"
        "    return result, {'training': training, 'xc': centred, 'gamma': gamma, 'inv_std': scale}, *updated\n")
    submit(course, "copier_a", CH07, solved(CH07, {"batchnorm-forward-impl": own}))
    submit(course, "copier_b", CH07, solved(CH07, {"batchnorm-forward-impl": _renamed(own, "z_")}))
    assert grade(course, ["copier_lib", "copier_a", "copier_b"]) == 0
    assert result(course, "copier_lib", CH07).status.kind == "graded"
    review = {s: [r for nb in result(course, s, CH07).notebooks.values() for r in nb.review if r["kind"] == "copy"]
              for s in ("copier_a", "copier_b")}
    assert any(r["alike_to"] == "copier_b" for r in review["copier_a"])
    assert any(r["alike_to"] == "copier_a" for r in review["copier_b"])
    assert all(result(course, s, CH07).score == full(CH07) for s in ("copier_a", "copier_b"))
    pasted = [r for nb in result(course, "copier_lib", CH07).notebooks.values() for r in nb.review
              if r["kind"] == "copy" and r["alike_to"].startswith("mlp_lib.")]
    assert pasted, "mlp_lib's kernel pasted in as a helper must be flagged"
