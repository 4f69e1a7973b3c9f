"""Kernel side of the trusted grader: run the student's functions on the grading inputs, hand back outputs.

This module runs *inside the student's process*, so it decides nothing: it calls the graded
function on each case's inputs and writes what came back as ``.npy`` files (``allow_pickle=False``)
into the job's output directory, with exceptions written as short messages. The grader process,
which the student's code never touches, loads those files and judges them. Patching numpy,
torch or this module can therefore only change what is handed back, never the verdict.

``record(part_id, fn)`` is what a source notebook's hidden test section calls; outside a grading
run (a student's own Jupyter, plain ``nbgrader autograde``) it does nothing.

Imports: the standard library and numpy only (the student's process must not load torch).
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np

MAX_MESSAGE = 300
_JOB = None          # set by autograder.kernel during a grading run


def record(part_id, fn=None):
    """Hand the outputs of ``fn`` on part ``part_id``'s grading inputs to the grader (no-op otherwise)."""
    job = _JOB
    if job is None:
        return None
    namespace = {job.parts[part_id]["function"]: fn} if part_id in job.parts and fn is not None else {}
    job.run_part(part_id, namespace)
    return None


def input_file(part_id: str, case: int, name: str) -> str:
    return f"{part_id}__{case}__in__{name}.npy"


def output_file(part_id: str, case: int, name: str) -> str:
    return f"{part_id}__{case}__out__{name}.npy"


def after_file(part_id: str, case: int, name: str) -> str:
    return f"{part_id}__{case}__after__{name}.npy"


def case_meta_file(part_id: str, case: int) -> str:
    return f"{part_id}__{case}.json"


def part_meta_file(part_id: str) -> str:
    return f"{part_id}.json"


class StudentFunctions:
    """Attribute access to the student's namespace (what a part's ``call`` adapter receives)."""

    def __init__(self, namespace):
        self._namespace = namespace

    def __getattr__(self, name):
        try:
            return self._namespace[name]
        except KeyError:
            raise NameError(f"name {name!r} is not defined in the notebook") from None


# -- for the ``call`` adapters of grading specs ---------------------------------------------------------
# Cases are dicts of arrays, so a list of arrays (a network's weights, its gradients) travels as one
# flat vector plus the shape of each array: ``rows[i]`` and ``cols[i]``, with ``cols[i] == 0`` for a
# 1-D array. Adapters (and references, on tensors) turn it back into the list with these.

def unpack_arrays(flat, rows, cols) -> list:
    """The arrays packed in ``flat``, as views (so an in-place change by the student shows in the
    inputs the grader checks). Works on numpy arrays and on torch tensors alike."""
    arrays, start = [], 0
    for r, c in zip(rows.tolist(), cols.tolist()):
        size = r * c if c > 0 else r
        view = flat[start:start + size]
        arrays.append(view.reshape(r, c) if c > 0 else view)
        start += size
    return arrays


def pack_arrays(arrays, like: list, name: str) -> np.ndarray:
    """A returned list of arrays, checked against the shapes of ``like``, as one float64 vector."""
    arrays = list(arrays)
    if len(arrays) != len(like):
        raise ValueError(f"{name} has {len(arrays)} arrays, expected {len(like)} (one per input array)")
    for i, (a, ref) in enumerate(zip(arrays, like)):
        if np.shape(a) != ref.shape:
            raise ValueError(f"{name}[{i}] has shape {np.shape(a)}, expected {ref.shape}")
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def returned_pair(returned, function: str, what: str) -> tuple:
    """``returned`` as a pair, or a clear error naming what ``function`` should return."""
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise TypeError(f"{function} must return a pair {what}")
    return returned[0], returned[1]


def make_caller(part: dict, namespace) -> tuple:
    """(callable taking the case's inputs as keywords, {function name: module it comes from})."""
    student = StudentFunctions(namespace)
    modules = {}
    for name in [part["function"], *part.get("uses", [])]:
        fn = namespace.get(name) if hasattr(namespace, "get") else None
        modules[name] = None if fn is None else str(getattr(fn, "__module__", None))[:100]
    if part.get("call_source"):
        scope = {"np": np, "numpy": np}
        exec(compile(part["call_source"], f"<autograder call {part['call_name']}>", "exec"), scope)
        adapter = scope[part["call_name"]]
        return (lambda **inputs: adapter(student, **inputs)), modules
    fn = namespace.get(part["function"]) if hasattr(namespace, "get") else None
    if fn is None:
        raise NameError(f"function {part['function']!r} is not defined in the notebook")
    if not callable(fn):
        raise TypeError(f"{part['function']} is a {type(fn).__name__}, not a function")
    return fn, modules


def call_case(fn, inputs: dict, outputs: list) -> tuple[dict, str | None, list]:
    """Run ``fn(**inputs)`` once: ({graded output name: ndarray}, error message or None, warnings)."""
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"):
            warnings.simplefilter("always")
            returned = fn(**inputs)
    except KeyboardInterrupt:
        return {}, "interrupted: the time limit for this part was reached", _warning_texts(caught)
    except BaseException as exc:   # noqa: BLE001 - the student's code may raise anything, SystemExit included
        detail = _safe_str(exc)
        return {}, _message(f"raised {type(exc).__name__}" + (f": {detail}" if detail else "")), _warning_texts(caught)
    try:
        return _graded_values(returned, outputs), None, _warning_texts(caught)
    except BaseException as exc:   # noqa: BLE001
        return {}, _message(_safe_str(exc)), _warning_texts(caught)


def _graded_values(returned, outputs: list) -> dict:
    if len(outputs) == 1:
        values = [returned]
    else:
        if not isinstance(returned, (tuple, list)) or len(returned) != len(outputs):
            got = f"a {type(returned).__name__}" + (f" of length {len(returned)}"
                                                     if isinstance(returned, (tuple, list)) else "")
            raise TypeError(f"returned {got}; expected a tuple ({', '.join(outputs)})")
        values = list(returned)
    graded = {}
    for name, value in zip(outputs, values):
        if name == "_":
            continue
        try:
            arr = np.asarray(value)
        except BaseException as exc:   # noqa: BLE001
            raise TypeError(f"output {name} could not be converted to an array ({type(exc).__name__})") from None
        if type(arr) is not np.ndarray or arr.dtype.kind not in "biufU":
            raise TypeError(f"output {name} must be a numeric array or a string, got {type(value).__name__}"
                            f" (dtype {getattr(arr, 'dtype', '?')})")
        graded[name] = np.array(arr, copy=True, order="C")
    return graded


def _warning_texts(caught) -> list:
    return [_message(f"{w.category.__name__}: {_safe_str(w.message)}") for w in (caught or [])[:5]]


def _safe_str(obj) -> str:
    try:
        return str(obj)
    except BaseException:   # noqa: BLE001 - __str__ is the student's code too
        return "<unprintable>"


def _message(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


class Job:
    """The part plans of one grading run and the directories it reads inputs from and writes outputs to."""

    def __init__(self, job_dir: str, parts: dict):
        self.inputs_dir = os.path.join(job_dir, "inputs")
        self.outputs_dir = os.path.join(job_dir, "outputs")
        self.parts = parts

    def run_part(self, part_id: str, namespace) -> None:
        part = self.parts.get(part_id)
        if part is None:
            return
        try:
            fn, modules = make_caller(part, namespace)
        except BaseException as exc:   # noqa: BLE001
            self._write_json(part_meta_file(part_id), {"error": _message(_safe_str(exc)), "modules": {}})
            return
        self._write_json(part_meta_file(part_id), {"error": None, "modules": modules})
        for case in range(part["n_cases"]):
            try:
                inputs = {name: np.load(os.path.join(self.inputs_dir, input_file(part_id, case, name)),
                                        allow_pickle=False)
                          for name in part["inputs"]}
            except BaseException as exc:   # noqa: BLE001
                self._write_json(case_meta_file(part_id, case), {
                    "error": _message(f"could not load the grading inputs ({type(exc).__name__})"), "warnings": []})
                continue
            outputs, error, caught = call_case(fn, inputs, part["outputs"])
            if error is None:
                try:
                    for name, arr in outputs.items():
                        np.save(os.path.join(self.outputs_dir, output_file(part_id, case, name)), arr,
                                allow_pickle=False)
                    for name, arr in inputs.items():
                        np.save(os.path.join(self.outputs_dir, after_file(part_id, case, name)),
                                np.asarray(arr), allow_pickle=False)
                except BaseException as exc:   # noqa: BLE001 - e.g. the file-size limit
                    error = _message(f"could not hand the output back ({type(exc).__name__}: {_safe_str(exc)})")
            self._write_json(case_meta_file(part_id, case), {"error": error, "warnings": caught})
            if error is not None and error.startswith("interrupted"):
                break

    def _write_json(self, name: str, data: dict) -> None:
        try:
            with open(os.path.join(self.outputs_dir, name), "w") as fh:
                json.dump(data, fh)
        except BaseException:   # noqa: BLE001
            pass
