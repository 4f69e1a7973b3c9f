"""The autograder's trusted core, in-process: restoring cells, analysing code, judging, explaining, safe loading.

The sealed job itself is tested in test_autograder_sandbox.py; whole classes through the real CLI in
test_autograder_e2e.py (slow).
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
from autograder import analysis, compare, jobs, notebooks, pipeline, references, rounds, sandbox  # noqa: E402
from autograder.compare import CaseData, CaseOutput, MutantOutcome, check_output  # noqa: E402
from autograder.inside import harness  # noqa: E402
from autograder.status import Status, most_serious  # noqa: E402
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


def test_restore_recognises_instructor_cells_by_their_text_when_the_metadata_is_lost():
    nb = agtools.filled()
    for cell in nb["cells"]:
        cell["metadata"] = {}
    restored = restore(nb)
    assert restored.anchored
    assert [c.part for c in restored.cells if c.part] == list(agtools.TEST_IDS)
    assert sum(c.origin == "student" for c in restored.cells if c.cell_type == "code") == len(agtools.SOLUTION_IDS)
    assert any("metadata was lost" in n for n in restored.notes)


def test_a_notebook_with_nothing_of_the_assignment_is_not_anchored():
    nb = {"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}}]}
    assert not restore(nb).anchored


# -- analysing the student's code --------------------------------------------------------------
def test_analysis_rewrites_magics_and_lists_imports_and_functions():
    cells = analysis.analyse(["%matplotlib inline\nimport mlp_lib.layers as L\nfrom numpy import linalg\n"
                              "def f(x):\n    return g(x) + h(1)\n!pip install torch", "def broken(:\n"])
    first, second = cells
    assert "get_ipython().run_line_magic('matplotlib', 'inline')" in first.source
    assert "get_ipython().system('pip install torch')" in first.source
    assert first.imports == ["mlp_lib.layers", "numpy"]
    assert first.functions["f"]["calls"] == ["g", "h"] and first.functions["f"]["source"].startswith("def f(x):")
    assert second.syntax_error is not None and not second.functions


def test_code_the_grader_cannot_analyse_within_its_limits_fails_closed():
    long_sum = "x = " + "+".join(["1"] * 4000)             # ast.parse recurses once per term
    with pytest.raises(analysis.AnalysisFailed, match="could not be parsed"):
        analysis.analyse([long_sum])
    with pytest.raises(analysis.AnalysisFailed, match="at most"):
        analysis.analyse(["x = 1\n" * 80_000])
    escapes = "!ls\n" * 500 + "y = '" + "x" * 120_000 + "'"
    with pytest.raises(analysis.AnalysisFailed):
        analysis.analyse([escapes], seconds=1.0)


def test_code_python_itself_rejects_is_a_syntax_error_not_a_failure():
    (cell,) = analysis.analyse(["x = " + "(" * 500 + ")" * 500])
    assert "too many nested parentheses" in cell.syntax_error


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
    assert harness.JOB is None
    assert harness.record("softmax", lambda x: x) is None


def write_inputs(directory, inputs):
    blob, index = harness.pack_inputs(inputs)
    (directory / harness.INPUTS_BLOB).write_bytes(blob)
    (directory / harness.INPUTS_INDEX).write_text(json.dumps(index))


def test_inputs_are_mapped_read_only_and_cannot_be_made_writable(tmp_path, rng):
    x = rng.standard_normal((3, 4))
    write_inputs(tmp_path, {"p": [{"x": x, "y": np.arange(5)}]})
    view = harness.Inputs(str(tmp_path)).array("p", 0, "x")
    assert np.array_equal(view, x) and not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0] = 1.0
    with pytest.raises(ValueError):
        view.setflags(write=True)
    _, error, _ = harness.call_case(lambda x: x.__imul__(2), {"x": view}, ["out"])
    assert "read-only" in error
    assert harness.Inputs(str(tmp_path)).array("p", 0, "y").tolist() == [0, 1, 2, 3, 4]


def test_scalar_and_string_options_reach_the_function_as_python_values(tmp_path):
    part = {"function": "f", "outputs": ["out"], "inputs": ["x", "p", "mode", "training"], "n_cases": 1,
            "call_name": None, "writable_inputs": False, "new_arrays": False}
    write_inputs(tmp_path, {"p1": [{"x": np.ones(2), "p": np.asarray(0.5), "mode": np.asarray("tanh"),
                                    "training": np.asarray(True)}]})
    args = harness.Job(str(tmp_path), str(tmp_path), {"p1": part}, {}).load_inputs("p1", 0)
    assert type(args["p"]) is float and args["mode"] == "tanh" and args["training"] is True
    assert isinstance(args["x"], np.ndarray) and not args["x"].flags.writeable
    writable = harness.Job(str(tmp_path), str(tmp_path), {"p1": {**part, "writable_inputs": True}}, {})
    assert writable.load_inputs("p1", 0)["x"].flags.writeable


def test_returning_an_input_where_a_new_array_is_asked_for_is_an_error():
    part = {"function": "f", "new_arrays": True}
    fn = harness.make_caller(part, {"f": lambda x: x}, {})
    x = np.ones(3)
    _, error, _ = harness.call_case(fn, {"x": x}, ["out"])
    assert "returned its input array" in error
    fn = harness.make_caller(part, {"f": lambda x: x.copy()}, {})
    assert harness.call_case(fn, {"x": x}, ["out"])[1] is None


def test_adapters_may_share_a_helper_module_sent_as_source():
    helpers = {"adapters": "import numpy as np\ndef twice(student, x):\n    return 2 * student.f(x)\n"}
    adapters = harness.load_adapters(helpers, {"p__twice": "module:adapters:twice"})
    fn = harness.make_caller({"function": "f", "call_name": "p__twice"}, {"f": lambda x: x + 1}, adapters)
    assert harness.call_case(fn, {"x": np.ones(2)}, ["out"])[0]["out"].tolist() == [4.0, 4.0]


# -- judging and diagnosis ------------------------------------------------------------------------
def test_solution_scores_every_part_in_process(spec, plans, hidden):
    ns = solution_namespace()
    for pid, plan in plans.items():
        verdict = pipeline.judge_in_process(spec, plan, ns, hidden[pid].cases)
        assert (verdict.status, verdict.points) == ("passed", agtools.POINTS[pid]), verdict.messages


def solution_namespace():
    ns: dict = {}
    for code in notebooks.solution_namespace_cells(source_cells()):
        exec(code, ns)
    return ns


class Plan:
    id, points, function, graded_outputs, rtol, atol, pure, stable = "p", 1.0, "f", ("out",), 1e-7, 1e-10, True, False

    def __init__(self, **changes):
        self.__dict__.update(changes)


def case_of(expected, inputs=None, alternatives=None, mutants=None):
    inputs = inputs if inputs is not None else {"x": np.ones((expected.shape[0] if expected.ndim else 1, 2))}
    return CaseData(inputs=inputs, expected={"out": expected}, alternatives=alternatives or {}, mutants=mutants or {})


def judge_one(expected, got, *, inputs=None, alternatives=None, **plan):
    case = case_of(expected, inputs, alternatives)
    return compare.judge_part(Plan(**plan), [case], [CaseOutput(outputs={"out": got})])


def test_outputs_must_have_the_exact_shape_and_a_float_dtype(rng):
    expected = rng.standard_normal((4, 3))
    assert judge_one(expected, expected.copy()).status == "passed"
    v = judge_one(expected, expected[:, :2])
    assert v.points == 0 and "expected shape (4, 3), got (4, 2)" in v.messages[0]
    v = judge_one(expected, expected.astype(np.int64))
    assert v.points == 0 and "expected a float array" in v.messages[0]
    v = judge_one(expected, expected[None])
    assert v.points == 0 and "(1, 4, 3)" in v.messages[0]


def test_the_message_states_the_tolerance_test_and_how_far_outside_it_the_answer_is(rng):
    expected = rng.standard_normal((5, 5))
    assert judge_one(expected, expected * (1 + 1e-9)).status == "passed"
    got = expected.copy()
    got[2, 3] += 1e-3
    v = judge_one(expected, got)
    assert v.status == "failed" and v.diagnoses == ["unknown"]
    text = v.messages[0]
    assert "No specific cause was found" in text and "at index (2, 3)" in text
    assert "|yours - expected| <= 1e-10 + 1e-07·|expected|" in text and "times what the tolerance allows" in text


def test_messages_never_contain_expected_values(rng):
    expected = rng.standard_normal((3, 4)) * 1000
    v = judge_one(expected, expected + 1.0)
    text = " ".join(v.messages)
    for value in expected.ravel():
        assert f"{value:.3f}" not in text and repr(float(value))[:8] not in text


@pytest.mark.parametrize("transform, code, words", [
    (lambda e, x: e.T.copy(), "transposed", "is the transpose"),
    (lambda e, x: -e, "sign_flip", "opposite sign"),
    (lambda e, x: e * e.shape[0], "extra_factor_n", "N times the expected result"),
    (lambda e, x: e / e.shape[0], "missing_factor_n", "divided by N"),
    (lambda e, x: 3.5 * e, "scaled", "times 3.5"),
    (lambda e, x: e - np.arange(e.shape[1]), "row_offset", "same row vector in every row"),
    (lambda e, x: np.where(np.abs(e) > 1, np.inf, e), "unstable", "NaN or inf"),
])
def test_a_property_that_provably_holds_is_stated_as_a_fact(rng, transform, code, words):
    expected = rng.standard_normal((5, 5)) * 2
    x = rng.standard_normal((5, 2))
    v = judge_one(expected, transform(expected, x), inputs={"x": x})
    assert v.points == 0 and v.diagnoses == [code], v.messages
    assert words in v.messages[0]


def test_a_constant_factor_is_named_only_when_it_is_the_same_in_every_case(rng):
    cases = [case_of(rng.standard_normal((4, 3))) for _ in range(2)]
    got = [CaseOutput(outputs={"out": 2.0 * cases[0].expected["out"]}),
           CaseOutput(outputs={"out": 3.0 * cases[1].expected["out"]})]
    v = compare.judge_part(Plan(), cases, got)
    assert v.diagnoses == ["unknown"] and "No specific cause" in " ".join(v.messages)


def test_n_times_too_large_is_recognised_with_a_different_batch_size_in_each_case(rng):
    cases = [case_of(rng.standard_normal((n, 3)), inputs={"x": rng.standard_normal((n, 2))}) for n in (4, 6)]
    got = [CaseOutput(outputs={"out": c.expected["out"] * c.expected["out"].shape[0]}) for c in cases]
    assert compare.judge_part(Plan(), cases, got).diagnoses == ["extra_factor_n"]


def test_the_other_axis_is_named_when_the_reference_along_it_matches(rng):
    x = rng.standard_normal((6, 3))
    v = judge_one(x.sum(axis=0), x.sum(axis=1), inputs={"x": x}, alternatives={"wrong_axis": {"out": x.sum(axis=1)}})
    assert v.diagnoses == ["wrong_axis"]


def test_where_it_differs_is_described_by_the_inputs(rng):
    x = rng.standard_normal((4, 5))
    x[1, 2] = x[3, 0] = 0.0
    expected = np.maximum(x, 0)
    got = np.where(x == 0, 0.5, expected)           # a wrong value exactly at x == 0
    v = judge_one(expected, got, inputs={"x": x})
    assert "it differs exactly where x == 0" in v.messages[0]
    got = expected.copy()
    got[-1] += 1.0
    assert "only the last row differs" in judge_one(expected, got, inputs={"x": x}).messages[0]


def test_an_in_place_write_on_the_read_only_inputs_is_explained(rng):
    case = case_of(rng.standard_normal((3, 2)))
    out = CaseOutput(error="raised ValueError: assignment destination is read-only")
    v = compare.judge_part(Plan(), [case], [out])
    assert v.points == 0 and v.diagnoses == ["mutated_input"] and "read-only" in " ".join(v.messages)


def test_an_overflow_warning_fails_a_part_whose_statement_asks_for_stability(rng):
    case = case_of(rng.standard_normal(3))
    out = CaseOutput(outputs={"out": case.expected["out"]}, warnings=["RuntimeWarning: overflow encountered in exp"])
    assert compare.judge_part(Plan(), [case], [out]).status == "passed"
    v = compare.judge_part(Plan(stable=True), [case], [out])
    assert v.points == 0 and v.diagnoses == ["warning"] and "overflow" in " ".join(v.messages)


# -- known mistakes --------------------------------------------------------------------------------
def catalogue_cases(rng, mistakes: dict, n=3):
    cases = []
    for _ in range(n):
        x = rng.standard_normal((4, 3))
        outcomes = {name: MutantOutcome(outputs={"out": fn(x)}) for name, fn in mistakes.items()}
        cases.append(CaseData(inputs={"x": x}, expected={"out": np.tanh(x)}, mutants=outcomes))
    return cases


MISTAKES = {"no square": lambda x: 1 - np.tanh(x), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
            "sigmoid again": lambda x: np.exp(x) / (1 + np.exp(x))}
FEEDBACK = {"no square": ("the square is missing", "ch03-local-gradients"),
            "sigmoid": ("this is the sigmoid", None), "sigmoid again": ("this is the sigmoid", None)}


def test_a_known_mistake_is_named_in_the_students_words(rng):
    cases = catalogue_cases(rng, MISTAKES)
    got = [CaseOutput(outputs={"out": 1 - np.tanh(c.inputs["x"])}) for c in cases]
    v = compare.judge_part(Plan(), cases, got, catalogue=FEEDBACK)
    assert v.diagnoses == ["mutant:no square"] and "known mistake: the square is missing" in v.messages[0]
    assert v.book == ["ch03-local-gradients"]


def test_mistakes_giving_the_same_values_are_named_together_plainly(rng):
    cases = catalogue_cases(rng, MISTAKES)
    got = [CaseOutput(outputs={"out": 0.5 * (1 + np.tanh(c.inputs["x"] / 2))}) for c in cases]   # the sigmoid
    v = compare.judge_part(Plan(), cases, got, catalogue=FEEDBACK)
    assert set(v.diagnoses) == {"mutant:sigmoid", "mutant:sigmoid again"}
    assert v.messages[0].count("this is the sigmoid") == 1


def test_a_mistake_that_explains_only_some_cases_is_said_to_do_so(rng):
    cases = catalogue_cases(rng, MISTAKES)
    got = [CaseOutput(outputs={"out": 1 - np.tanh(c.inputs["x"]) if i == 0 else 7 * c.inputs["x"]})
           for i, c in enumerate(cases)]
    v = compare.judge_part(Plan(), cases, got, catalogue=FEEDBACK)
    assert "partly:no square" in v.diagnoses and "In 1 of the 3 failing" in v.messages[0]


def test_two_mistakes_at_once_are_named_output_by_output(rng):
    plan = Plan(graded_outputs=("a", "b"))
    cases, got = [], []
    for _ in range(3):
        x = rng.standard_normal((4, 3))
        want = {"a": x.sum(0), "b": x.mean(0)}
        mutants = {"a twice": MutantOutcome(outputs={"a": 2 * x.sum(0), "b": x.mean(0)}),
                   "b negated": MutantOutcome(outputs={"a": x.sum(0), "b": -x.mean(0)})}
        cases.append(CaseData(inputs={"x": x}, expected=want, mutants=mutants))
        got.append(CaseOutput(outputs={"a": 2 * x.sum(0), "b": -x.mean(0)}))
    v = compare.judge_part(plan, cases, got, catalogue={"a twice": ("a is doubled", None),
                                                        "b negated": ("b has the wrong sign", None)})
    text = " ".join(v.messages)
    assert "For a, this is a known mistake: a is doubled" in text and "For b, this is a known mistake: b has" in text
    assert set(v.diagnoses) == {"mutant:a twice", "mutant:b negated"}


def test_right_and_wrong_outputs_are_told_apart(rng):
    plan = Plan(graded_outputs=("dx", "dW", "db"))
    x = rng.standard_normal((4, 3))
    want = {"dx": x, "dW": x.T @ x, "db": x.sum(0)}
    got = {**want, "db": x.mean(0)}
    v = compare.judge_part(plan, [CaseData(inputs={"x": x}, expected=want)], [CaseOutput(outputs=got)])
    assert v.messages[0] == "dx and dW are right; db is not."


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
    assert sandbox.read_npy(fd, "mine.npy", 65299, 1 << 20)[1] is None
    assert "not written by" in sandbox.read_npy(fd, "roots.npy", 65299, 1 << 20)[1]


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
    seed = rounds.hidden_seed(course)
    references.store(course, spec, references.compute(spec, seed, "cpu"), seed=seed, device="cpu", round_id="1")
    assert stat.S_IMODE(os.stat(course.references_dir / f"{spec.name}.npz").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(course.references_dir).st_mode) == 0o700
    loaded, why = references.load(course, spec, seed)
    assert loaded is not None, why
    fresh = references.compute(spec, seed, "cpu")
    for pid in fresh:
        for a, b in zip(loaded[pid].cases, fresh[pid].cases):
            for name in a.expected:
                np.testing.assert_array_equal(a.expected[name], b.expected[name])
            assert a.mutants.keys() == b.mutants.keys()
            for mutant, outcome in a.mutants.items():
                assert outcome.error == b.mutants[mutant].error
                for name, arr in outcome.outputs.items():
                    np.testing.assert_array_equal(arr, b.mutants[mutant].outputs[name])
    meta = json.loads((course.references_dir / f"{spec.name}.json").read_text())
    assert meta["device"] == "cpu" and meta["dtype"] == "float64" and "torch_version" in meta
    assert references.load(course, spec, seed + 1)[0] is None
    changed = type(spec)(**{**spec.__dict__, "fingerprint": "different"})
    assert references.load(course, changed, seed)[1].startswith("the grading spec changed")
    npz = course.references_dir / f"{spec.name}.npz"
    npz.write_bytes(npz.read_bytes()[:100])                  # a truncated file is recomputed, not fatal
    assert references.load(course, spec, seed) == (None, "the stored references are unreadable (BadZipFile)")


def test_hidden_cases_change_with_each_grading_round_and_stay_within_one(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SECRET", "abc")
    c = agtools.make_course(tmp_path / "c")
    first = rounds.hidden_seed(c)
    assert rounds.current(c) == "1" and rounds.hidden_seed(c) == first
    entry = rounds.start_new(c, "resubmission window")
    assert entry["id"] == "2" and rounds.current(c) == "2"
    assert rounds.hidden_seed(c) != first and rounds.hidden_seed(c, "1") == first
    assert stat.S_IMODE(os.stat(c.private_dir / "rounds.json").st_mode) == 0o600


def test_statuses_are_values_and_an_assignment_shows_its_most_serious_notebook():
    assert str(Status("timeout", "cell 3 ran past 60 s")) == "timeout: cell 3 ran past 60 s"
    worst = most_serious([Status("graded"), Status("held", "could not analyse"), Status("crashed", "x")],
                         labels=["a", "b", "c"])
    assert worst == Status("held", "b: could not analyse") and worst.pending
    with pytest.raises(ValueError):
        Status("flagged")


def test_a_submission_must_be_a_plain_file_not_a_link(tmp_path):
    base = tmp_path / "submitted"
    (base / "ann" / "a1").mkdir(parents=True)
    real = base / "ann" / "a1" / "nb.ipynb"
    real.write_text("{}")
    assert jobs.read_plain_file(real, base, 100) == b"{}"
    assert jobs.read_plain_file(base / "ann" / "a1" / "absent.ipynb", base, 100) is None
    (base / "bob").mkdir()
    os.symlink(base / "ann" / "a1", base / "bob" / "a1")                      # a linked assignment folder
    with pytest.raises(jobs.NotAFile, match="symbolic link"):
        jobs.read_plain_file(base / "bob" / "a1" / "nb.ipynb", base, 100)
    (base / "cy" / "a1").mkdir(parents=True)
    os.link(real, base / "cy" / "a1" / "nb.ipynb")                            # a hard link to someone's file
    with pytest.raises(jobs.NotAFile, match="hard link"):
        jobs.read_plain_file(base / "cy" / "a1" / "nb.ipynb", base, 100)
    (base / "dee" / "a1").mkdir(parents=True)
    os.mkfifo(base / "dee" / "a1" / "nb.ipynb")
    with pytest.raises(jobs.NotAFile, match="not a regular file"):
        jobs.read_plain_file(base / "dee" / "a1" / "nb.ipynb", base, 100)


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
                {"forbid": ("nodots",)}, {"allow": ("numpy.linalg",)}):
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


def test_a_sandbox_that_cannot_start_is_a_grader_side_error(monkeypatch):
    """No student code ran: the student must not be charged (the batch keeps the previous result)."""
    from autograder.limits import Limits

    monkeypatch.setattr(sandbox, "_rlimits", lambda limits, sealed: {"RLIMIT_NO_SUCH_LIMIT": 1})
    recording = sandbox.Recording(cells=[{"source": "x = 1", "kind": "student", "part": None, "label": "cell 1"}])
    with pytest.raises(sandbox.SandboxError, match="no student code ran"):
        sandbox.run(recording, Limits(), sealed=jobs.sealed_by_default())


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
