"""Call the student's functions on the grading inputs and hand the outputs back (runs in the student's process).

This module decides nothing: for each case it calls the graded function (through the spec's
adapter when the part has one) and writes what came back as ``.npy`` files (``allow_pickle=False``)
into the job's output directory, with exceptions as short messages. The grader judges those files
against references this process never holds, so patching numpy or this module can only change
what is handed back.

Inputs of a pure part are mapped read-only from files the job cannot write: an in-place change
fails in the call itself (``ValueError: assignment destination is read-only``), which is a fact the
student's process cannot talk its way around. Parts whose statement asks for in-place work get
private writable copies, and what they must leave behind is graded by its consequences (the
adapter calls again on the same array).

Imports: the standard library and numpy only.
"""
from __future__ import annotations

import json
import mmap
import os
import warnings

import numpy as np

MAX_MESSAGE = 300
JOB = None          # set by autograder.inside.kernel during a grading run


def record(part_id, fn=None):
    """What a source notebook's hidden test section calls; the kernel records every part itself, so this
    only matters outside a grading run, where it does nothing."""
    return None


def output_file(part_id: str, case: int, name: str) -> str:
    return f"{part_id}__{case}__out__{name}.npy"


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
    """The arrays packed in ``flat``, as views. Works on numpy arrays and on torch tensors alike."""
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


def require_new_arrays(returned, inputs, function: str) -> None:
    """Raise when ``function`` handed back (a view of) one of its input arrays where the statement asks
    for a new array."""
    values = returned if isinstance(returned, (tuple, list)) else [returned]
    arrays = [a for a in inputs if isinstance(a, np.ndarray)]
    for value in values:
        for item in (value if isinstance(value, (tuple, list)) else [value]):
            if isinstance(item, np.ndarray) and any(np.shares_memory(item, a) for a in arrays):
                raise ValueError(f"{function} returned its input array (or a view of it) where the statement "
                                 "asks for a new array: return a copy")


def make_caller(part: dict, namespace, adapters: dict) -> callable:
    """A callable taking the case's inputs as keywords: the adapter when the part has one."""
    student = StudentFunctions(namespace)
    if part.get("call_name"):
        adapter = adapters[part["call_name"]]
        return lambda **inputs: adapter(student, **inputs)
    fn = namespace.get(part["function"]) if hasattr(namespace, "get") else None
    if fn is None:
        raise NameError(f"function {part['function']!r} is not defined in the notebook")
    if not callable(fn):
        raise TypeError(f"{part['function']} is a {type(fn).__name__}, not a function")
    if part.get("new_arrays"):
        def checked(**inputs):
            returned = fn(**inputs)
            require_new_arrays(returned, inputs.values(), part["function"])
            return returned
        return checked
    return fn


def load_adapters(helpers: dict, calls: dict) -> dict:
    """The spec's adapters, built from source: helper modules first (importable by adapters), then
    the ``call`` functions ({name: source or 'module:function'})."""
    import sys
    import types

    for name, source in helpers.items():
        module = types.ModuleType(name)
        module.__file__ = f"<grading helper {name}>"
        sys.modules[name] = module
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    adapters = {}
    for name, source in calls.items():
        if source.startswith("module:"):
            module_name, _, fn_name = source[len("module:"):].partition(":")
            adapters[name] = getattr(sys.modules[module_name], fn_name)
        else:
            scope = {"np": np, "numpy": np}
            exec(compile(source, f"<autograder call {name}>", "exec"), scope)
            adapters[name] = scope[name]
    return adapters


FIXED_SEED = 20240229


class _Deterministic:
    """Every call starts from the same random state: numpy's and Python's global generators are seeded,
    and a Generator made without a seed gets a fixed one. Randomness that does not come from the ``rng``
    a part passes in is then the same in every grading — and the same as the catalogued mistake that
    makes it, which the grader can therefore recognise."""

    def __enter__(self):
        import random

        self._default_rng = np.random.default_rng

        def default_rng(seed=None):
            return self._default_rng(FIXED_SEED if seed is None else seed)

        np.random.default_rng = default_rng
        np.random.seed(FIXED_SEED)
        random.seed(FIXED_SEED)
        return self

    def __exit__(self, *exc):
        np.random.default_rng = self._default_rng
        return False


def call_case(fn, inputs: dict, outputs: list) -> tuple[dict, str | None, list]:
    """Run ``fn(**inputs)`` once: ({graded output name: ndarray}, error message or None, warnings)."""
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"), \
                _Deterministic():
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


INPUTS_BLOB, INPUTS_INDEX = "inputs.bin", "inputs.json"


def pack_inputs(inputs: dict) -> tuple[bytes, dict]:
    """Every case's arrays in one blob (each at a 64-byte boundary) and its index
    {part id: [{name: [offset, dtype, shape]}]} — one file to write and map instead of thousands."""
    blob, index = bytearray(), {}
    for part_id, cases in inputs.items():
        index[part_id] = []
        for case in cases:
            entry = {}
            for name, arr in case.items():
                arr = np.asarray(arr)
                blob += b"\0" * (-len(blob) % 64)
                entry[name] = [len(blob), arr.dtype.str, list(arr.shape)]
                blob += arr.tobytes(order="C")
            index[part_id].append(entry)
    return bytes(blob), index


class Inputs:
    """The packed inputs, mapped read-only: an array taken from here cannot be written, nor made writable."""

    def __init__(self, directory: str):
        with open(os.path.join(directory, INPUTS_INDEX)) as fh:
            self.index = json.load(fh)
        with open(os.path.join(directory, INPUTS_BLOB), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self.mapped = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) if size else b""

    def array(self, part_id: str, case: int, name: str) -> np.ndarray:
        offset, dtype, shape = self.index[part_id][case][name]
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            arr = np.empty(shape, dtype=dtype)
            arr.setflags(write=False)
            return arr
        return np.frombuffer(self.mapped, dtype=dtype, count=count, offset=offset).reshape(tuple(shape))


class Job:
    """The parts of one recording, where their inputs are read and their outputs written."""

    def __init__(self, inputs_dir: str, outputs_dir: str, parts: dict, adapters: dict):
        self.inputs, self.outputs_dir = Inputs(inputs_dir), outputs_dir
        self.parts, self.adapters = parts, adapters

    def load_inputs(self, part_id: str, case: int) -> dict:
        """The case's arguments: scalar and string options as Python values, arrays read-only unless the
        part's statement asks for in-place work (then a private writable copy)."""
        part = self.parts[part_id]
        args = {}
        for name in part["inputs"]:
            arr = self.inputs.array(part_id, case, name)
            if arr.ndim == 0:
                args[name] = arr.item()
            else:
                args[name] = np.array(arr, copy=True) if part["writable_inputs"] else arr
        return args

    def run_part(self, part_id: str, namespace) -> None:
        part = self.parts.get(part_id)
        if part is None:
            return
        try:
            fn = make_caller(part, namespace, self.adapters)
        except BaseException as exc:   # noqa: BLE001
            self._write_json(part_meta_file(part_id), {"error": _message(_safe_str(exc))})
            return
        self._write_json(part_meta_file(part_id), {"error": None})
        for case in range(part["n_cases"]):
            try:
                inputs = self.load_inputs(part_id, case)
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
                except BaseException as exc:   # noqa: BLE001 - e.g. the job's disk is full
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
