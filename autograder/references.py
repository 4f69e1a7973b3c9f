"""Grading inputs (from a seed) and what the grader compares with: references (torch, float64) and the
outputs of every catalogued mistake on the same inputs.

Hidden cases come from the instructor's secret and the current grading round
(:func:`autograder.rounds.hidden_seed`), public cases (``check``) from the spec's ``PUBLIC_SEED``;
each part draws from its own stream ``SeedSequence(seed, spawn_key=(crc32(assignment),
crc32(part)))``, so adding a part never changes the others' inputs.

References are computed in this (the grader's) process: with torch in float64, TF32 off, on
``cpu`` or ``cuda`` (``auto`` = cuda when available). The catalogued mutants of each part run here
too — in numpy, through the part's adapter, with the instructor's own functions for the other
functions the part uses, and with read-only inputs exactly as the student's function gets them —
so that a wrong answer can be matched to a known mistake. ``references`` stores all of it in
``private/references/<assignment>.npz`` (0600) with a JSON sidecar naming the seed fingerprint,
the round, the spec fingerprint, a hash of the inputs, the torch version and the device; ``grade``
uses them when they match and recomputes them otherwise (a corrupt file included). Nothing of it
ever leaves this process: workers and the student's process get inputs only.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import json
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from .compare import CaseData, MutantOutcome
from .course import ensure_private_dir, write_private

FORMAT_VERSION = 2


def part_rng(seed: int, assignment: str, part_id: str) -> np.random.Generator:
    key = (zlib.crc32(assignment.encode()), zlib.crc32(part_id.encode()))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def make_inputs(part, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """The part's cases, validated: a non-empty list of dicts of arrays (numeric or string) with the same keys."""
    cases = part.cases(rng)
    if not isinstance(cases, (list, tuple)) or not cases:
        raise ValueError(f"part {part.id}: cases(rng) must return a non-empty list of dicts")
    names = None
    out = []
    for i, case in enumerate(cases):
        if not isinstance(case, dict) or not case:
            raise ValueError(f"part {part.id}: case {i} must be a non-empty dict of arrays")
        if names is None:
            names = list(case)
        elif list(case) != names:
            raise ValueError(f"part {part.id}: every case needs the same arguments {names}, case {i} has {list(case)}")
        arrays = {}
        for name, value in case.items():
            arr = np.asarray(value)
            if arr.dtype.kind not in "biufU" or (arr.dtype.kind == "U" and arr.ndim != 0):
                raise ValueError(f"part {part.id}: case {i} argument {name} must be numeric or a string, "
                                 f"got dtype {arr.dtype}")
            if not name.isidentifier():
                raise ValueError(f"part {part.id}: argument name {name!r} is not an identifier")
            arrays[name] = np.array(arr, order="C", copy=True)
        out.append(arrays)
    return out


def resolve_device(device: str) -> str:
    import torch

    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    return device


def reference_outputs(part, inputs: dict[str, np.ndarray], device: str) -> dict[str, np.ndarray]:
    """Run the spec's torch reference in float64 on ``device``; {graded output name: ndarray}."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tensors = {}
    for name, arr in inputs.items():
        if arr.dtype.kind == "f":
            tensors[name] = torch.tensor(arr, dtype=torch.float64, device=device)
        elif arr.dtype.kind == "b":
            tensors[name] = torch.tensor(arr, dtype=torch.bool, device=device)
        elif arr.dtype.kind == "U":
            tensors[name] = str(arr.item())
        else:
            tensors[name] = torch.tensor(arr, dtype=torch.int64, device=device)
    kwargs = dict(tensors)
    if "device" in inspect.signature(part.reference).parameters:
        kwargs["device"] = torch.device(device)
    result = part.reference(**kwargs)
    names = part.graded_outputs
    values = [result] if len(names) == 1 else list(result)
    if len(values) != len(names):
        raise ValueError(f"part {part.id}: reference returned {len(values)} values, expected {len(names)} ({names})")
    out = {}
    for name, value in zip(names, values):
        if isinstance(value, torch.Tensor):
            value = value.detach().to("cpu")
            arr = value.numpy().astype(np.float64) if value.is_floating_point() else value.numpy()
        else:
            arr = np.asarray(value, dtype=np.float64 if isinstance(value, float) else None)
        out[name] = np.array(arr, order="C", copy=True)
    return out


def _wrong_axis(part, inputs, device, expected):
    """The reference on transposed 2-D inputs, transposed back — 'computed along the other axis'.

    Only for float outputs: a label, a count or a diagnosis (a string) has no "other axis".
    """
    if not any(a.ndim == 2 for a in inputs.values()) or any(v.dtype.kind != "f" for v in expected.values()):
        return None
    swapped = {k: (np.array(v.T, order="C") if v.ndim == 2 else v) for k, v in inputs.items()}
    try:
        alt = reference_outputs(part, swapped, device)
    except Exception:   # noqa: BLE001 - shapes that do not fit transposed: no such alternative
        return None
    alt = {k: (np.array(v.T, order="C") if v.ndim == 2 else v) for k, v in alt.items()}
    if all(alt[k].shape == expected[k].shape and np.allclose(alt[k], expected[k]) for k in expected):
        return None
    return alt


# -- the catalogue's outputs ---------------------------------------------------------------------
def solution_namespace(spec) -> dict:
    """The instructor's answers (source notebooks' answer cells and the locked code before them)."""
    from . import notebooks

    namespace: dict = {}
    for path in sorted(spec.path.parent.glob("*.ipynb")):
        cells = notebooks.read_trusted(path)["cells"]
        for code in notebooks.solution_namespace_cells(cells):
            exec(compile(code, f"<{path.name}>", "exec"), namespace)
    return namespace


def mutant_outcomes(spec, part, plan, case: dict, solution: dict) -> dict[str, MutantOutcome]:
    """{mutant name: what it hands back on ``case``}, run the way the student's function is run."""
    from .inside import harness

    adapters = harness.load_adapters(spec.helpers, {plan.call_name: plan.call_source} if plan.call_name else {})
    kernel_part = plan.kernel_part([case])
    out = {}
    for name, mutant in part.mutants.items():
        namespace = dict(solution)
        namespace[part.function] = mutant.fn
        fn = harness.make_caller(kernel_part, namespace, adapters)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            values, error, _ = harness.call_case(fn, student_arguments(case, writable=not part.pure),
                                                 list(part.outputs))
        out[name] = MutantOutcome(outputs=values, error=error)
    return out


def student_arguments(case: dict, *, writable: bool) -> dict:
    """The arguments as the student's function receives them: scalars and strings as Python values,
    arrays read-only unless the part asks for in-place work."""
    args = {}
    for name, arr in case.items():
        if arr.ndim == 0:
            args[name] = arr.item()
            continue
        arr = np.array(arr, copy=True)
        if not writable:
            arr.setflags(write=False)
        args[name] = arr
    return args


@dataclass
class PartData:
    """Everything the grader needs about one part's cases (inputs, expected outputs, mutants' outputs)."""

    inputs: list[dict[str, np.ndarray]]
    cases: list[CaseData]


def compute(spec, seed: int, device: str, *, with_mutants: bool = True) -> dict[str, PartData]:
    device = resolve_device(device)
    plans = {p.id: p for p in spec.plans()}
    solution = solution_namespace(spec) if with_mutants and any(p.mutants for p in spec.parts) else {}
    data = {}
    for part in spec.parts:
        inputs = make_inputs(part, part_rng(seed, spec.name, part.id))
        cases = []
        for case in inputs:
            expected = reference_outputs(part, case, device)
            alts = {}
            wrong_axis = _wrong_axis(part, case, device, expected)
            if wrong_axis is not None:
                alts["wrong_axis"] = wrong_axis
            mutants = mutant_outcomes(spec, part, plans[part.id], case, solution) if with_mutants else {}
            cases.append(CaseData(inputs=case, expected=expected, alternatives=alts, mutants=mutants))
        data[part.id] = PartData(inputs=inputs, cases=cases)
    return data


def inputs_digest(spec, seed: int) -> str:
    h = hashlib.sha256()
    for part in spec.parts:
        for case in make_inputs(part, part_rng(seed, spec.name, part.id)):
            for name, arr in case.items():
                h.update(f"{part.id}/{name}/{arr.dtype}/{arr.shape}".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def seed_fingerprint(seed: int) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()[:16]


# -- storage --------------------------------------------------------------------------------
def store(course, spec, data: dict[str, PartData], *, seed: int, device: str, round_id: str) -> None:
    import torch

    arrays, errors = {}, {}
    for pid, pdata in data.items():
        part = spec.part(pid)
        names = list(part.mutants)
        for i, case in enumerate(pdata.cases):
            for name, arr in case.expected.items():
                arrays[f"{pid}/{i}/expected/{name}"] = arr
            for diag, outs in case.alternatives.items():
                for name, arr in outs.items():
                    arrays[f"{pid}/{i}/alt/{diag}/{name}"] = arr
            for mutant, outcome in case.mutants.items():
                k = names.index(mutant)
                if outcome.error is not None:
                    errors[f"{pid}/{i}/{k}"] = outcome.error
                for name, arr in outcome.outputs.items():
                    arrays[f"{pid}/{i}/mutant/{k}/{name}"] = arr
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    meta = {"format": FORMAT_VERSION, "assignment": spec.name, "round": round_id,
            "seed_fingerprint": seed_fingerprint(seed), "spec_fingerprint": spec.fingerprint,
            "inputs_digest": inputs_digest(spec, seed), "torch_version": torch.__version__,
            "numpy_version": np.__version__, "device": device, "dtype": "float64", "tf32": False,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mutants": {p.id: list(p.mutants) for p in spec.parts}, "mutant_errors": errors}
    ensure_private_dir(course.references_dir)
    write_private(course.references_dir / f"{spec.name}.npz", buf.getvalue())
    write_private(course.references_dir / f"{spec.name}.json", json.dumps(meta, indent=1).encode())


def load(course, spec, seed: int) -> tuple[dict[str, PartData] | None, str]:
    """Stored references if they match the current seed, spec and inputs; else (None, why)."""
    npz = course.references_dir / f"{spec.name}.npz"
    meta_path = course.references_dir / f"{spec.name}.json"
    if not npz.is_file() or not meta_path.is_file():
        return None, "no stored references"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            return None, "stored references have an old format"
        if meta.get("seed_fingerprint") != seed_fingerprint(seed):
            return None, "stored references were made with another secret or grading round"
        if meta.get("spec_fingerprint") != spec.fingerprint:
            return None, "the grading spec changed since the references were stored"
        if meta.get("mutants") != {p.id: list(p.mutants) for p in spec.parts}:
            return None, "the mutant catalogue changed since the references were stored"
        if meta.get("inputs_digest") != inputs_digest(spec, seed):
            return None, "the generated inputs changed (numpy version?) since the references were stored"
        with np.load(npz, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
        errors = meta.get("mutant_errors", {})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        return None, f"the stored references are unreadable ({type(exc).__name__})"
    data = {}
    for part in spec.parts:
        inputs = make_inputs(part, part_rng(seed, spec.name, part.id))
        names = list(part.mutants)
        cases = []
        for i, case in enumerate(inputs):
            expected = {name: stored.get(f"{part.id}/{i}/expected/{name}") for name in part.graded_outputs}
            if any(v is None for v in expected.values()):
                return None, f"stored references lack part {part.id}"
            alts: dict = {}
            mutants = {n: MutantOutcome(outputs={}, error=errors.get(f"{part.id}/{i}/{k}")) for k, n in enumerate(names)}
            prefix = f"{part.id}/{i}/"
            for key, arr in stored.items():
                if not key.startswith(prefix):
                    continue
                rest = key[len(prefix):].split("/")
                if rest[0] == "alt":
                    alts.setdefault(rest[1], {})[rest[2]] = arr
                elif rest[0] == "mutant":
                    mutants[names[int(rest[1])]].outputs[rest[2]] = arr
            cases.append(CaseData(inputs=case, expected=expected, alternatives=alts, mutants=mutants))
        data[part.id] = PartData(inputs=inputs, cases=cases)
    return data, f"stored references ({meta.get('device')}, torch {meta.get('torch_version')})"


def for_grading(course, spec, *, device: str | None = None) -> tuple[dict[str, PartData], str]:
    """Hidden cases of the current round with references: the stored ones when valid, else computed now."""
    from . import rounds

    seed = rounds.hidden_seed(course)
    data, why = load(course, spec, seed)
    if data is not None:
        return data, why
    dev = resolve_device(device or course.device)
    return compute(spec, seed, dev), f"computed in the grader on {dev} ({why})"


def for_checking(spec, *, device: str = "cpu") -> dict[str, PartData]:
    """Public cases (``PUBLIC_SEED``) with references, for a student's self-check."""
    return compute(spec, spec.public_seed, device)
