"""The autograder's trusted core, in-process: restoring cells, static checks, judging, diagnosis, safe loading.

End-to-end runs through the real sandbox live in test_autograder_e2e.py (slow).
"""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from autograder import compare, harness, notebooks, pipeline, references, sandbox, static_checks  # noqa: E402
from autograder.compare import CaseData, CaseOutput, check_output  # noqa: E402
from autograder.compare import CaseData, CaseOutput  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.spec import Mutant, Part, SpecError, load_spec  # noqa: E402


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return agtools.make_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def spec(course):
    return load_spec(course, agtools.ASSIGNMENT)


@pytest.fixture(scope="module")
def plans(spec):
    return {p.id: p for p in spec.plans()}


@pytest.fixture(scope="module")
def hidden(spec):
    return references.compute(spec, 0xC0FFEE, "cpu")


def source_cells():
    return agtools.source_nb()["cells"]


def restore(nb):
    return notebooks.restore(source_cells(), nb["cells"], set(agtools.TEST_IDS))


# -- restoring instructor cells ------------------------------------------------------------
def test_restore_reinserts_deleted_test_cells_after_their_answer():
    nb = agtools.filled()
    nb["cells"] = [c for c in nb["cells"] if agtools.gid(c) not in agtools.TEST_IDS]
    restored = restore(nb)
    order = [c.grade_id for c in restored.cells]
    for answer, test in zip(agtools.SOLUTION_IDS, agtools.TEST_IDS):
        assert order.index(test) == order.index(answer) + 1
    assert sum("re-inserted" in n for n in restored.notes) == len(agtools.TEST_IDS)
    parts = [c.part for c in restored.cells if c.part]
    assert parts == list(agtools.TEST_IDS)


def test_restore_replaces_edited_test_cells_with_the_source():
    nb = agtools.blank()
    for cell in nb["cells"]:
        if agtools.gid(cell) in agtools.TEST_IDS:
            cell["source"] = "print('all tests passed')"
    restored = restore(nb)
    by_id = {c.grade_id: c for c in restored.cells}
    for test_id in agtools.TEST_IDS:
        assert by_id[test_id].origin == "instructor"
        assert "all tests passed" not in by_id[test_id].source
        assert notebooks.HIDDEN_BEGIN in by_id[test_id].source     # the source version, hidden part included
    assert any("had been changed" in n for n in restored.notes)


def test_restore_ignores_retagged_cells_and_wrong_schema_versions():
    nb = agtools.filled()
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta is None:
            continue
        meta["schema_version"] = 1
        if meta["grade_id"] in agtools.TEST_IDS:     # re-tagged as an answer cell with another id
            meta.update(grade_id=meta["grade_id"] + "_mine", solution=True, grade=False, locked=False)
            cell["source"] = "pass"
    restored = restore(nb)
    tests = [c for c in restored.cells if c.part]
    assert [c.part for c in tests] == list(agtools.TEST_IDS)
    assert all(c.origin == "instructor" for c in tests)
    mine = [c for c in restored.cells if c.grade_id and c.grade_id.endswith("_mine")]
    assert len(mine) == len(agtools.TEST_IDS) and all(c.origin == "student" for c in mine)


def test_restore_keeps_the_students_extra_cells_in_place():
    nb = agtools.with_cell(agtools.filled(), "helper = 1", after="softmax-impl")
    cells = restore(nb).cells
    at = [c.source for c in cells].index("helper = 1")
    assert cells[at - 1].grade_id == "softmax-impl" and cells[at].origin == "student"


def test_restore_drops_duplicated_instructor_cells():
    nb = agtools.filled()
    test = next(c for c in nb["cells"] if agtools.gid(c) == "softmax")
    nb["cells"].append(dict(test))
    restored = restore(nb)
    assert [c.part for c in restored.cells].count("softmax") == 1
    assert any("duplicate" in n for n in restored.notes)


def test_local_hidden_test_stripping_agrees_with_nbgraders_clear_hidden_tests():
    import nbformat
    from nbgrader.preprocessors import ClearHiddenTests

    for cell in source_cells():
        node = nbformat.from_dict(cell)
        node.source = agtools.text(cell)
        ClearHiddenTests()._remove_hidden_test_region(node)
        assert notebooks.strip_hidden_tests(agtools.text(cell)) == node.source


@pytest.mark.parametrize("data, why", [
    (b"{not json", "not valid notebook JSON"),
    (b"[1, 2]", "not a notebook"),
    (json.dumps({"nbformat": 2, "cells": []}).encode(), "unsupported notebook format"),
    (json.dumps({"nbformat": 4}).encode(), "no list of cells"),
    (b"\xff\xfe", "not valid notebook JSON"),
])
def test_unreadable_submissions_are_reported_not_raised(data, why):
    with pytest.raises(notebooks.Unreadable, match=why):
        notebooks.read_submission(data, max_bytes=1 << 20)


def test_oversized_submissions_are_unreadable():
    with pytest.raises(notebooks.Unreadable, match="limit"):
        notebooks.read_submission(b" " * 2048, max_bytes=1024)


# -- static checks ---------------------------------------------------------------------------
def student_cells(*sources):
    return [notebooks.Cell("code", s, origin="student", index=i) for i, s in enumerate(sources)]


def flags_of(plans, *sources):
    return {(f.part, f.reason.split(" (")[0]) for f in static_checks.check_cells(student_cells(*sources),
                                                                              list(plans.values()))}


def test_torch_inside_a_graded_function_flags_that_part_only(plans):
    flags = flags_of(plans, "def relu_forward(x):\n    import torch\n    return torch.relu(torch.tensor(x)).numpy(), x")
    assert {p for p, _ in flags} == {"relu_forward"}


def test_torch_anywhere_else_in_the_answers_flags_every_part(plans):
    for code in ("import torch", "from torch.nn import functional as F", "t = __import__('torch')",
                 "import importlib\nm = importlib.import_module('jax.numpy')", "import tensorflow as tf"):
        flags = flags_of(plans, code)
        assert {p for p, _ in flags} == {static_checks.ALL_PARTS}, code


def test_mlp_libs_own_implementation_is_flagged_for_its_part(plans):
    cases = {
        "from mlp_lib.layers import relu_forward": {"relu_forward"},
        "from mlp_lib.layers import relu_forward as mine\ndef relu_forward(x):\n    return mine(x)": {"relu_forward"},
        "import mlp_lib.layers as L\ndef softmax(x):\n    return L.softmax(x)": {"softmax"},
        "import mlp_lib\ndef affine_forward(x, W, b):\n    return mlp_lib.layers.linear_forward(x, W, b)": {"affine_forward"},
        "from mlp_lib import layers\nf = layers.affine_backward": {"affine_backward"},
        "from mlp_lib.layers import *": {static_checks.ALL_PARTS},
    }
    for code, expected in cases.items():
        assert {p for p, _ in flags_of(plans, code)} == expected, code


def test_numpy_answers_and_other_mlp_lib_helpers_are_not_flagged(plans):
    code = [agtools.solution_code(g) for g in agtools.SOLUTION_IDS]
    code.append("from mlp_lib.gradcheck import rel_error\nimport numpy as np\n%time x = 1\n!echo hi")
    assert static_checks.check_cells(student_cells(*code), list(plans.values())) == []


def test_runtime_reports_flag_torch_imports_and_library_functions(plans):
    outs = {"relu_forward": sandbox.PartOutputs(modules={"relu_forward": "mlp_lib.layers"}),
            "softmax": sandbox.PartOutputs(modules={"softmax": "__main__"})}
    flags = static_checks.runtime_flags(outs, list(plans.values()), ["torch"])
    assert {f.part for f in flags} == {static_checks.ALL_PARTS, "relu_forward"}


# -- the kernel-side harness --------------------------------------------------------------------
class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class LyingArray:
    def __array__(self, dtype=None, copy=None):
        return np.array([AlwaysEqual()], dtype=object)


def test_harness_refuses_objects_that_are_not_numeric_arrays():
    for value in (AlwaysEqual(), LyingArray(), [AlwaysEqual()]):
        outputs, error, _ = harness.call_case(lambda x: value, {"x": np.ones(2)}, ["out"])
        assert outputs == {} and "must be a numeric array" in error


def test_a_string_where_a_number_is_expected_is_judged_wrong_by_its_dtype():
    outputs, error, _ = harness.call_case(lambda x: "text", {"x": np.ones(2)}, ["out"])
    assert error is None and outputs["out"].dtype.kind == "U"
    case = CaseData(inputs={"x": np.ones(2)}, expected={"out": np.ones(2)})
    message, _ = check_output("out", case, CaseOutput(outputs=outputs), rtol=1e-7, atol=0.0)
    assert message == "out: dtype <U4, expected a float array"


def test_a_diagnosis_part_with_two_dimensional_inputs_gets_string_references_compared_exactly():
    """A decision part (curves of several runs in, one diagnosis per run out): the reference is a string
    array, no 'other axis' alternative is computed for it, and only the exact strings pass."""
    def verdicts(curves):
        return np.array(["diverges" if row[-1] > row[0] else "converges" for row in curves.numpy()])

    part = Part(id="verdicts", points=1, function="verdicts", cases=lambda rng: [{"curves": rng.random((3, 5))}],
                reference=verdicts)
    case = references.make_inputs(part, np.random.default_rng(0))[0]
    expected = references.reference_outputs(part, case, "cpu")["out"]
    assert expected.dtype.kind == "U" and references._wrong_axis(part, case, "cpu", {"out": expected}) is None
    data = CaseData(inputs=case, expected={"out": expected})
    right, _, _ = harness.call_case(lambda curves: list(expected), case, ["out"])
    wrong, _, _ = harness.call_case(lambda curves: ["converges"] * 3 if expected[0] == "diverges"
                                    else ["diverges"] * 3, case, ["out"])
    assert check_output("out", data, CaseOutput(outputs=right), rtol=1e-7, atol=0.0) == (None, None)
    assert check_output("out", data, CaseOutput(outputs=wrong), rtol=1e-7, atol=0.0)[0].startswith(
        "out: not the right answer")


def test_harness_reports_exceptions_and_wrong_tuples_as_messages():
    def boom(x):
        raise ValueError("shapes do not match")

    _, error, _ = harness.call_case(boom, {"x": np.ones(2)}, ["out"])
    assert error == "raised ValueError: shapes do not match"
    _, error, _ = harness.call_case(lambda x: x, {"x": np.ones(2)}, ["out", "_"])
    assert "expected a tuple (out, _)" in error
    _, error, _ = harness.call_case(lambda x: exit(), {"x": np.ones(2)}, ["out"])
    assert error.startswith("raised SystemExit")


def test_harness_warnings_never_fail_a_correct_answer():
    import warnings

    def noisy(x):
        warnings.warn("careful", UserWarning)
        np.log(np.zeros(1))                         # a RuntimeWarning from numpy too
        return x * 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")              # even when the student turned warnings into errors
        outputs, error, caught = harness.call_case(noisy, {"x": np.ones(3)}, ["out"])
    assert error is None and np.array_equal(outputs["out"], np.full(3, 2.0))
    assert any("careful" in w for w in caught)


def test_record_is_a_no_op_outside_a_grading_run():
    assert harness._JOB is None
    assert harness.record("softmax", lambda x: x) is None


# -- judging and diagnosis ------------------------------------------------------------------------
def test_solution_scores_every_part_in_process(spec, plans, hidden):
    ns = solution_namespace()
    for pid, plan in plans.items():
        verdict = pipeline.judge_in_process(plan, ns, hidden[pid].cases)
        assert (verdict.status, verdict.points) == ("passed", agtools.POINTS[pid]), verdict.messages


def solution_namespace():
    ns: dict = {}
    for code in notebooks.solution_namespace_cells(source_cells()):
        exec(code, ns)
    return ns


def case_of(expected, inputs=None, alternatives=None):
    inputs = inputs if inputs is not None else {"x": np.ones((expected.shape[0] if expected.ndim else 1, 2))}
    return CaseData(inputs=inputs, expected={"out": expected}, alternatives=alternatives or {})


def judge_one(expected, got, *, inputs=None, pure=False, inputs_after=None):
    plan = type("Plan", (), {"id": "p", "points": 1.0, "function": "f", "graded_outputs": ("out",),
                             "rtol": 1e-7, "atol": 1e-10, "pure": pure})()
    case = case_of(expected, inputs)
    out = CaseOutput(outputs={"out": got}, inputs_after=inputs_after or dict(case.inputs))
    return compare.judge_part(plan, [case], [out])


def test_outputs_must_have_the_exact_shape_and_a_float_dtype(rng):
    expected = rng.standard_normal((4, 3))
    assert judge_one(expected, expected.copy()).status == "passed"
    v = judge_one(expected, expected[:, :2])
    assert v.points == 0 and "expected shape (4, 3), got (4, 2)" in v.messages[0]
    v = judge_one(expected, expected.astype(np.int64))
    assert v.points == 0 and "expected a float array" in v.messages[0]
    v = judge_one(expected, expected[None])
    assert v.points == 0 and "(1, 4, 3)" in v.messages[0]


def test_tolerance_is_relative_and_tight(rng):
    expected = rng.standard_normal((5, 5))
    assert judge_one(expected, expected * (1 + 1e-9)).status == "passed"
    v = judge_one(expected, expected * (1 + 1e-5))
    assert v.status == "failed" and "max rel error" in v.messages[0]


def test_messages_never_contain_expected_values(rng):
    expected = rng.standard_normal((3, 4)) * 1000
    v = judge_one(expected, expected + 1.0)
    text = " ".join(v.messages)
    for value in expected.ravel():
        assert f"{value:.3f}" not in text and repr(float(value))[:8] not in text


@pytest.mark.parametrize("transform, code", [
    (lambda e, x: e.T.copy(), "transposed"),
    (lambda e, x: -e, "sign_flip"),
    (lambda e, x: e * e.shape[0], "extra_factor_n"),
    (lambda e, x: e / e.shape[0], "missing_factor_n"),
    (lambda e, x: 3.5 * e, "scaled"),
    (lambda e, x: e - np.arange(e.shape[1]), "missing_bias"),
    (lambda e, x: np.where(np.abs(e) > 1, np.inf, e), "unstable"),
])
def test_diagnosis_names_the_transform_that_explains_the_output(rng, transform, code):
    expected = rng.standard_normal((5, 3)) * 2
    x = rng.standard_normal((5, 2))
    v = judge_one(expected, transform(expected, x), inputs={"x": x})
    assert v.points == 0 and v.diagnoses == [code], v.messages
    assert "Likely cause" in v.messages[0]


def test_diagnosis_of_a_reduction_over_the_other_axis(rng):
    x = rng.standard_normal((6, 3))
    v = judge_one(x.sum(axis=0), x.sum(axis=1), inputs={"x": x})
    assert v.diagnoses == ["wrong_axis"]


def test_in_place_modification_of_an_input_costs_the_part(rng):
    x = rng.standard_normal((3, 2))
    x[0, 0] = -1.0
    mutated = {"x": np.maximum(x, 0)}
    v = judge_one(np.maximum(x, 0), np.maximum(x, 0), inputs={"x": x}, pure=True, inputs_after=mutated)
    assert v.points == 0 and v.diagnoses == ["mutated_input"] and "input x" in v.messages[0]


def test_a_part_without_outputs_scores_zero_with_a_message(plans, hidden):
    v = compare.judge_part(plans["softmax"], hidden["softmax"].cases, None, part_error="function 'softmax' is not defined")
    assert (v.points, v.status) == (0.0, "missing") and "not defined" in v.messages[0]
    v = compare.judge_part(plans["softmax"], hidden["softmax"].cases, [])
    assert v.points == 0 and "only 0 of" in v.messages[0]


# -- safe loading of what the student's process wrote ------------------------------------------------
@pytest.fixture
def outdir(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def test_read_npy_loads_plain_numeric_arrays(outdir, rng):
    path, fd = outdir
    a = rng.standard_normal((3, 2))
    np.save(path / "a.npy", a)
    got, problem = sandbox.read_npy(fd, "a.npy", None, 1 << 20)
    assert problem is None and np.array_equal(got, a)


def test_read_npy_refuses_pickles_symlinks_fifos_and_oversized_files(outdir, rng):
    path, fd = outdir
    np.save(path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (path / "secret.npy").write_bytes(b"")
    np.save(path / "real.npy", np.ones(3))
    os.symlink(path / "real.npy", path / "link.npy")
    os.mkfifo(path / "fifo.npy")
    np.save(path / "big.npy", np.ones(1000))
    assert "not a plain numeric or string dtype" in sandbox.read_npy(fd, "obj.npy", None, 1 << 20)[1]
    assert "unreadable" in sandbox.read_npy(fd, "link.npy", None, 1 << 20)[1]
    assert "not a regular file" in sandbox.read_npy(fd, "fifo.npy", None, 1 << 20)[1]
    assert "too large" in sandbox.read_npy(fd, "big.npy", None, 1000)[1]
    assert "malformed" in sandbox.read_npy(fd, "secret.npy", None, 1 << 20)[1]
    assert sandbox.read_npy(fd, "absent.npy", None, 1 << 20) == (None, "missing")


@pytest.mark.skipif(os.geteuid() != 0, reason="file ownership checks need root")
def test_read_npy_refuses_files_not_written_by_the_sandbox_user(outdir):
    path, fd = outdir
    np.save(path / "mine.npy", np.ones(2))
    os.chown(path / "mine.npy", 65299, 65299)
    np.save(path / "roots.npy", np.ones(2))
    assert sandbox.read_npy(fd, "mine.npy", (65299, 65299), 1 << 20)[1] is None
    assert "not written by" in sandbox.read_npy(fd, "roots.npy", (65299, 65299), 1 << 20)[1]


# -- specs, seeds and references -----------------------------------------------------------------------
def test_hidden_inputs_depend_on_the_secret_and_differ_from_public_ones(spec):
    part = spec.part("softmax")
    a = references.make_inputs(part, references.part_rng(1, spec.name, part.id))
    b = references.make_inputs(part, references.part_rng(1, spec.name, part.id))
    c = references.make_inputs(part, references.part_rng(2, spec.name, part.id))
    pub = references.make_inputs(part, references.part_rng(spec.public_seed, spec.name, part.id))
    assert all(np.array_equal(x["x"], y["x"]) for x, y in zip(a, b))
    assert not np.array_equal(a[0]["x"], c[0]["x"]) and not np.array_equal(a[0]["x"], pub[0]["x"])


def test_references_are_float64_and_match_a_direct_torch_computation(spec, hidden):
    import torch

    for case in hidden["softmax"].cases:
        want = torch.softmax(torch.tensor(case.inputs["x"], dtype=torch.float64), dim=1).numpy()
        assert case.expected["probs"].dtype == np.float64
        np.testing.assert_allclose(case.expected["probs"], want, rtol=1e-12)
    loss = hidden["softmax_cross_entropy"].cases[0].expected["loss"]
    assert loss.shape == () and loss.dtype == np.float64


def test_stored_references_round_trip_and_go_stale_when_the_spec_changes(course, spec, hidden, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SECRET", "c0ffee")
    seed = course.secret()
    references.store(course, spec, references.compute(spec, seed, "cpu"), seed=seed, device="cpu")
    assert stat.S_IMODE(os.stat(course.references_dir / f"{spec.name}.npz").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(course.references_dir).st_mode) == 0o700
    loaded, why = references.load(course, spec, seed)
    assert loaded is not None, why
    fresh = references.compute(spec, seed, "cpu")
    for pid in fresh:
        for a, b in zip(loaded[pid].cases, fresh[pid].cases):
            for name in a.expected:
                np.testing.assert_array_equal(a.expected[name], b.expected[name])
    meta = json.loads((course.references_dir / f"{spec.name}.json").read_text())
    assert meta["device"] == "cpu" and meta["dtype"] == "float64" and "torch_version" in meta
    assert references.load(course, spec, seed + 1)[0] is None
    changed = type(spec)(**{**spec.__dict__, "fingerprint": "different"})
    assert references.load(course, changed, seed)[1].startswith("the grading spec changed")


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_references_agree(spec):
    cpu = references.compute(spec, 99, "cpu")
    cuda = references.compute(spec, 99, "cuda")
    for pid in cpu:
        for a, b in zip(cpu[pid].cases, cuda[pid].cases):
            for name in a.expected:
                np.testing.assert_allclose(b.expected[name], a.expected[name], rtol=1e-10, atol=1e-12)


def test_the_secret_is_created_once_private_and_overridable(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOGRADER_SECRET", raising=False)
    c = Course.open(tmp_path)
    first = c.secret()
    assert c.secret() == first
    path = c.private_dir / "secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(c.private_dir).st_mode) == 0o700
    monkeypatch.setenv("AUTOGRADER_SECRET", "ff")
    assert c.secret() == 255


def test_part_definitions_are_validated():
    ok = dict(id="p", points=1, function="f", cases=lambda rng: [], reference=lambda x: x)
    Part(**ok)
    for bad in ({"id": "has space"}, {"points": 0}, {"function": "not-ident"}, {"outputs": ()},
                {"outputs": ("_",)}, {"outputs": ("a", "a")}, {"rtol": 0}, {"call": lambda student: 1},
                {"forbid": ("nodots",)}):
        with pytest.raises((ValueError, TypeError)):
            Part(**{**ok, **bad})
    with pytest.raises(ValueError):
        Mutant(lambda x: x, diagnosis="not a code")


def test_a_spec_must_match_its_source_notebook(tmp_path):
    c = agtools.make_course(tmp_path / "c")
    path = c.spec_path(agtools.ASSIGNMENT)
    path.write_text(path.read_text().replace('Part(id="relu_forward", points=1', 'Part(id="relu_forward", points=5'))
    with pytest.raises(SpecError, match="points"):
        load_spec(c, agtools.ASSIGNMENT)
    path.write_text(path.read_text().replace('id="relu_forward"', 'id="relu_typo"'))
    with pytest.raises(SpecError, match="relu_typo"):
        load_spec(c, agtools.ASSIGNMENT)


def test_a_sandbox_that_cannot_start_is_a_grader_side_error(spec, plans, hidden, monkeypatch):
    """No student code ran: the student must not be charged (the batch keeps the previous result)."""
    from autograder.limits import Limits

    monkeypatch.setattr(sandbox, "_rlimits", lambda limits, ident: {"RLIMIT_NO_SUCH_LIMIT": 1})
    cells = notebooks.restore(source_cells(), agtools.filled()["cells"], set(agtools.TEST_IDS)).cells
    ids = list(plans)
    with pytest.raises(sandbox.SandboxError, match="no student code ran"):
        sandbox.run_notebook(cells, [plans[i] for i in ids], {i: hidden[i].inputs for i in ids}, Limits())


def test_a_list_of_arrays_travels_as_one_flat_vector_and_comes_back_checked():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 2)), rng.standard_normal(4), rng.standard_normal((1, 5))]
    flat = np.concatenate([a.ravel() for a in arrays])
    rows, cols = np.array([3, 4, 1]), np.array([2, 0, 5])
    views = harness.unpack_arrays(flat, rows, cols)
    assert [v.shape for v in views] == [(3, 2), (4,), (1, 5)]
    assert all(np.array_equal(v, a) for v, a in zip(views, arrays))
    views[1][0] = 99.0                                   # a view: an in-place change shows in the input
    assert flat[6] == 99.0
    np.testing.assert_array_equal(harness.pack_arrays(views, views, "grads"), flat)
    with pytest.raises(ValueError, match=r"grads\[2\] has shape \(5,\), expected \(1, 5\)"):
        harness.pack_arrays([views[0], views[1], views[2].ravel()], views, "grads")
    with pytest.raises(ValueError, match="grads has 2 arrays, expected 3"):
        harness.pack_arrays(views[:2], views, "grads")
    with pytest.raises(TypeError, match=r"l2_penalty must return a pair \(value, grads\)"):
        harness.returned_pair(1.0, "l2_penalty", "(value, grads)")
