"""Judge a part: compare what the student's function returned with the references, and say why it differs.

Runs in the grader process only. Everything about the student's outputs is checked here: real
numeric ndarrays of the expected shape and dtype kind, values within tolerance, inputs left
untouched. Messages name the quantity, the shapes and the size of the error, and a likely cause
(a cheap transform of the expected output that matches what the student returned) — never the
expected values themselves.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

# code -> message template ({name}: the output, {n}: batch size, {c}: a constant factor)
DIAGNOSES = {
    "transposed": "{name} is the transpose of the expected result (swapped axes, or W.T where W was meant?)",
    "missing_bias": "{name} differs from the expected result by the same row in every row: "
                    "a bias added zero times or twice?",
    "extra_factor_n": "{name} is N = {n} times too large: a sum over the batch where a mean was expected (missing 1/N)?",
    "missing_factor_n": "{name} is N = {n} times too small: an extra 1/N (a mean where a sum was expected)?",
    "scaled": "{name} is off by a constant factor of about {c:.4g}",
    "sign_flip": "{name} has the opposite sign of the expected result",
    "wrong_axis": "{name} looks computed along the other axis (sum, mean or normalisation over the wrong axis?)",
    "unstable": "{name} has NaN or inf where a finite value was expected: not numerically stable for "
                "large inputs (exp overflows: subtract the maximum before exp, use log-sum-exp, "
                "np.logaddexp, or branch on the sign as the chapter shows)",
    "mutated_input": "the function modified its input {name} in place (copy it before changing it)",
}


@dataclass
class CaseOutput:
    """What the student's process handed back for one case (already safely loaded)."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    inputs_after: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None          # exception raised by the student's function, or a bad return value
    warnings: list[str] = field(default_factory=list)


@dataclass
class CaseData:
    """What the grader knows about one case: inputs, expected outputs and 'wrong but typical' outputs."""

    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    alternatives: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)   # diagnosis -> outputs


@dataclass
class PartVerdict:
    id: str
    points: float
    max_points: float
    status: str                       # passed | failed | error | missing | flagged
    messages: list[str] = field(default_factory=list)
    diagnoses: list[str] = field(default_factory=list)
    failed_cases: int = 0
    cases: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> "PartVerdict":
        return cls(**data)


def judge_part(plan, cases: list[CaseData], got: list[CaseOutput] | None, *, label: str = "hidden",
               part_error: str | None = None) -> PartVerdict:
    """Full points iff every case returns every graded output correctly and (if pure) leaves its inputs alone."""
    max_points = float(plan.points)
    if got is None or part_error is not None:
        msg = part_error or f"no outputs were recorded for {plan.function} (the notebook stopped before this part?)"
        return PartVerdict(plan.id, 0.0, max_points, "missing", [msg], cases=len(cases), failed_cases=len(cases))
    errors: list[str] = []
    failures: dict[str, list[tuple[int, str, Diagnosis | None]]] = {}   # output -> [(case, message, diagnosis)]
    failed_cases = 0
    for i, (case, out) in enumerate(zip(cases, got)):
        case_failed = False
        if out.error is not None:
            errors.append(f"case {i + 1}: {out.error}")
            failed_cases += 1
            continue
        for name in plan.graded_outputs:
            msg, diag = check_output(name, case, out, rtol=plan.rtol, atol=plan.atol)
            if msg is not None:
                failures.setdefault(name, []).append((i, msg, diag))
                case_failed = True
        if plan.pure:
            for name, before in case.inputs.items():
                after = out.inputs_after.get(name)
                if after is None or after.shape != before.shape or not np.array_equal(after, before, equal_nan=True):
                    failures.setdefault(f"input {name}", []).append(
                        (i, f"input {name} was modified in place", Diagnosis("mutated_input", name)))
                    case_failed = True
        failed_cases += case_failed
    total = len(cases)
    if len(got) < total:
        errors.append(f"only {len(got)} of {total} cases ran (the notebook stopped or the part was interrupted)")
        failed_cases += total - len(got)
    if not errors and not failures:
        return PartVerdict(plan.id, max_points, max_points, "passed", [f"all {total} {label} cases match"],
                           cases=total)
    messages, diagnoses = [], []
    if errors:
        count = sum(1 for e in errors if e.startswith("case ")) + (total - len(got) if len(got) < total else 0)
        messages.append(f"{plan.function} failed in {count} of {total} {label} cases; first: {errors[0]}")
    for name, items in failures.items():
        first_case, first_msg, _ = items[0]
        line = f"{first_msg} in {len(items)} of {total} {label} cases"
        codes = Counter(d.code for _, _, d in items if d is not None)
        if codes:
            code = codes.most_common(1)[0][0]
            diag = next(d for _, _, d in items if d is not None and d.code == code)
            diagnoses.append(code)
            line += f". Likely cause: {diag.text()}"
        messages.append(line)
    status = "error" if errors and not failures else "failed"
    return PartVerdict(plan.id, 0.0, max_points, status, messages, diagnoses, failed_cases=failed_cases, cases=total)


@dataclass(frozen=True)
class Diagnosis:
    code: str
    name: str
    n: int = 1
    factor: float = 0.0

    def text(self) -> str:
        return DIAGNOSES[self.code].format(name=self.name, n=self.n, c=self.factor)


def batch_size(inputs: dict[str, np.ndarray]) -> int:
    """N = the leading dimension of the first array input with one."""
    for arr in inputs.values():
        if arr.ndim >= 1:
            return int(arr.shape[0])
    return 1


def max_errors(expected: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """(max |got - expected|, max |got - expected| / max(1e-8, |got| + |expected|)) — CS231n's rel_error."""
    with np.errstate(all="ignore"):
        a, b = got.astype(np.float64), expected.astype(np.float64)
        diff = np.abs(a - b)
        if not np.isfinite(diff).all():
            return float("inf"), float("inf")
        rel = diff / np.maximum(1e-8, np.abs(a) + np.abs(b))
    return float(diff.max(initial=0.0)), float(rel.max(initial=0.0))


def _shape(s) -> str:
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def check_output(name: str, case: CaseData, out: CaseOutput, *, rtol: float, atol: float
                 ) -> tuple[str | None, Diagnosis | None]:
    """(message, diagnosis code) for a wrong output, (None, None) when it matches."""
    expected = case.expected[name]
    got = out.outputs.get(name)
    if got is None:
        return f"{name}: not returned", None
    if not isinstance(got, np.ndarray) or got.dtype.hasobject:
        return f"{name}: not a numeric array", None
    want_kind = "f" if expected.dtype.kind == "f" else ("iu" if expected.dtype.kind in "iu" else expected.dtype.kind)
    if got.dtype.kind not in want_kind:
        kind = {"f": "a float", "iu": "an integer", "b": "a boolean", "U": "a string"}.get(want_kind, want_kind)
        return f"{name}: dtype {got.dtype}, expected {kind} array", None
    if got.shape != expected.shape:
        diag = diagnose_shape(expected, got, case, name)
        return f"{name}: expected shape {_shape(expected.shape)}, got {_shape(got.shape)}", diag
    if close(expected, got, rtol=rtol, atol=atol):
        return None, None
    if expected.dtype.kind == "U":
        shown = repr(got.item())[:60] if got.size == 1 else f"{int((got != expected).sum())} wrong entries"
        return f"{name}: not the right answer ({shown})", None
    abs_err, rel_err = max_errors(expected, got)
    diag = diagnose_values(expected, got, case, name)
    return (f"{name}: wrong values (shape {_shape(got.shape)}, max abs error {abs_err:.2e}, "
            f"max rel error {rel_err:.2e})"), diag


def close(expected: np.ndarray, got: np.ndarray, *, rtol: float, atol: float) -> bool:
    if expected.dtype.kind != "f":
        return bool(np.array_equal(expected, got))
    with np.errstate(all="ignore"):
        return bool(np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True))


def _allclose(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(a, b, rtol=1e-6, atol=1e-9 * max(1.0, float(np.max(np.abs(b), initial=0.0)))))


def diagnose_shape(expected: np.ndarray, got: np.ndarray, case: CaseData, name: str) -> Diagnosis | None:
    if expected.ndim == 2 and got.shape == expected.T.shape and _allclose(got.T, expected):
        return Diagnosis("transposed", name)
    alt = case.alternatives.get("wrong_axis", {}).get(name)
    if alt is not None and _allclose(got, alt):
        return Diagnosis("wrong_axis", name)
    # a reduction over the other axis of some 2-D input: (B,) expected, (A,) returned or vice versa
    for arr in case.inputs.values():
        if arr.ndim == 2 and arr.shape[0] != arr.shape[1]:
            a, b = arr.shape
            shapes = {((a,), (b,)), ((b,), (a,)), ((1, b), (a, 1)), ((a, 1), (1, b))}
            if (expected.shape, got.shape) in shapes:
                return Diagnosis("wrong_axis", name)
    return None


def diagnose_values(expected: np.ndarray, got: np.ndarray, case: CaseData, name: str) -> Diagnosis | None:
    """The cheapest transform of the expected output that explains what the student returned."""
    if expected.dtype.kind != "f":
        return None
    n = batch_size(case.inputs)
    if (np.isfinite(expected) & ~np.isfinite(got)).any():
        return Diagnosis("unstable", name)
    if expected.ndim == 2 and expected.shape[0] == expected.shape[1] and _allclose(got, expected.T):
        return Diagnosis("transposed", name)
    alt = case.alternatives.get("wrong_axis", {}).get(name)
    if alt is not None and _allclose(got, alt):
        return Diagnosis("wrong_axis", name)
    factor = _constant_factor(expected, got)
    if factor is not None:
        if np.isclose(factor, -1.0, rtol=1e-6):
            return Diagnosis("sign_flip", name)
        if n > 1 and np.isclose(factor, n, rtol=1e-6):
            return Diagnosis("extra_factor_n", name, n=n)
        if n > 1 and np.isclose(factor, 1.0 / n, rtol=1e-6):
            return Diagnosis("missing_factor_n", name, n=n)
        if expected.size > 1:
            return Diagnosis("scaled", name, factor=factor)
    if expected.ndim == 2 and expected.shape[0] > 1:
        diff = expected - got
        if np.abs(diff[0]).max() > 0 and _allclose(diff, np.broadcast_to(diff[0], diff.shape)):
            return Diagnosis("missing_bias", name)
    return None


def _constant_factor(expected: np.ndarray, got: np.ndarray) -> float | None:
    """c such that got ≈ c * expected (c != 1), or None."""
    scale = float(np.max(np.abs(expected), initial=0.0))
    if scale == 0.0:
        return None
    mask = np.abs(expected) > 1e-6 * scale
    if not mask.any():
        return None
    with np.errstate(all="ignore"):
        ratios = got[mask] / expected[mask]
    c = float(np.median(ratios))
    if not np.isfinite(c) or c == 0.0 or np.isclose(c, 1.0, rtol=1e-6):
        return None
    if _allclose(got, c * expected):
        return c
    return None
