"""Judge a part: compare what the student's function returned with the references, and say what is wrong.

Runs in the grader process only. Everything about the student's outputs is checked here: real
numeric (or string) ndarrays of the expected shape and dtype kind, values within tolerance. When
a part is wrong the feedback tries, in order:

1. **a known mistake** — the student's outputs are compared with the outputs of every mistake in
   the spec's catalogue on the same inputs (computed in the grader); a match names the mistake in
   the student's language, per output ("dx and dW are right; db ..."), saying plainly when several
   mistakes match or one matches only some cases;
2. **a provable property** of the difference — a constant factor over every entry and case (N when
   it is the batch size of each case), the transpose, the reference along the other axis, the
   opposite sign, NaN/inf where the result is finite, the same difference in every row — stated as
   a fact, never as a guess at its cause;
3. **where it differs** — the first differing entry, and patterns such as "only where x == 0",
   "only in the last row", "from row 3 on" — with the tolerance test and how far outside it the
   answer is; "no specific cause was found" when nothing more can be said truthfully.

Messages never contain expected values.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

# Generic findings: facts about the difference, not guesses about its cause. Catalogued mutants of a
# spec may name one with ``Mutant(diagnosis=...)``: the test suite then checks the grader finds it.
DIAGNOSES = {
    "transposed": "{name} is the transpose of the expected result",
    "scaled": "{name} is the expected result times {c:.4g}, in every entry of every case",
    "extra_factor_n": "{name} is N times the expected result in every case (N = the batch size of each case, "
                      "e.g. {n}): a sum where a mean is expected?",
    "missing_factor_n": "{name} is the expected result divided by N in every case (N = the batch size of "
                        "each case, e.g. {n}): a mean where a sum is expected?",
    "sign_flip": "{name} has the opposite sign of the expected result",
    "wrong_axis": "{name} equals the expected computation carried out along the other axis",
    "reduced_other_axis": "{name} has the shape of {c} reduced over another axis than the one expected: a sum "
                          "or mean over the wrong axis?",
    "row_offset": "{name} differs from the expected result by the same row vector in every row",
    "unstable": "{name} has NaN or inf where the expected result is finite",
    "mutated_input": "{name} was changed in place: the grader hands inputs over read-only, since the "
                     "statement asks that they be left unchanged; compute the result in a new array",
    "returned_input": "{name} is (a view of) an input array where the statement asks for a new array: "
                      "return a copy",
    "warning": "numpy warned while computing {name} ({c}), and the statement asks for a numerically "
               "stable computation",
}
STABILITY_WARNINGS = ("overflow", "invalid value", "divide by zero")


@dataclass
class CaseOutput:
    """What the student's process handed back for one case (already safely loaded)."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None          # exception raised by the student's function, or a bad return value
    warnings: list[str] = field(default_factory=list)


@dataclass
class MutantOutcome:
    """What a catalogued mistake hands back on a case: outputs, or the error it raises."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None


@dataclass
class CaseData:
    """What the grader knows about one case: inputs, expected outputs, what typical mistakes return."""

    inputs: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    alternatives: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)   # finding -> outputs
    mutants: dict[str, MutantOutcome] = field(default_factory=dict)               # mutant name -> outcome


@dataclass
class PartVerdict:
    id: str
    points: float
    max_points: float
    status: str                       # passed | failed | error | missing
    messages: list[str] = field(default_factory=list)
    diagnoses: list[str] = field(default_factory=list)    # "mutant:<name>", a DIAGNOSES code, or "unknown"
    failed_cases: int = 0
    cases: int = 0
    book: list[str] = field(default_factory=list)          # labels of the book sections the messages point to

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> "PartVerdict":
        return cls(**data)


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    n: int = 1
    factor: float | str = 0.0

    def text(self) -> str:
        return DIAGNOSES[self.code].format(name=self.name, n=self.n, c=self.factor)


# -- comparing one output -------------------------------------------------------------------------
def _shape(s) -> str:
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def close(expected: np.ndarray, got: np.ndarray, *, rtol: float, atol: float) -> bool:
    if expected.dtype.kind != "f":
        return bool(np.array_equal(expected, got))
    with np.errstate(all="ignore"):
        return bool(np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True))


def output_problem(name: str, expected: np.ndarray, got: np.ndarray | None) -> str | None:
    """Why ``got`` cannot even be compared with ``expected`` (missing, type, dtype kind, shape), or None."""
    if got is None:
        return f"{name}: not returned"
    if not isinstance(got, np.ndarray) or got.dtype.hasobject:
        return f"{name}: not a numeric array"
    want = "f" if expected.dtype.kind == "f" else ("iu" if expected.dtype.kind in "iu" else expected.dtype.kind)
    if got.dtype.kind not in want:
        kind = {"f": "a float", "iu": "an integer", "b": "a boolean", "U": "a string"}.get(want, want)
        return f"{name}: dtype {got.dtype}, expected {kind} array"
    if got.shape != expected.shape:
        return f"{name}: expected shape {_shape(expected.shape)}, got {_shape(got.shape)}"
    return None


def check_output(name: str, case: CaseData, out: CaseOutput, *, rtol: float, atol: float
                 ) -> tuple[str | None, Finding | None]:
    """(message, finding) for a wrong output of one case, (None, None) when it matches."""
    expected = case.expected[name]
    got = out.outputs.get(name)
    problem = output_problem(name, expected, got)
    if problem is not None:
        return problem, (shape_finding(expected, got, case, name) if got is not None and
                         isinstance(got, np.ndarray) and got.shape != expected.shape else None)
    if close(expected, got, rtol=rtol, atol=atol):
        return None, None
    if expected.dtype.kind == "U":
        shown = repr(got.item())[:60] if got.size == 1 else f"{int((got != expected).sum())} wrong entries"
        return f"{name}: not the right answer ({shown})", None
    return f"{name}: wrong values", None


def tolerance_excess(expected: np.ndarray, got: np.ndarray, *, rtol: float, atol: float) -> tuple[float, tuple]:
    """(max over entries of |got - expected| / (atol + rtol |expected|), the index where it is largest)."""
    with np.errstate(all="ignore"):
        ratio = np.abs(got.astype(np.float64) - expected) / (atol + rtol * np.abs(expected))
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
    if ratio.size == 0:
        return 0.0, ()
    flat = int(np.argmax(ratio))
    return float(ratio.flat[flat]), tuple(int(i) for i in np.unravel_index(flat, ratio.shape))


def batch_size(inputs: dict[str, np.ndarray]) -> int:
    """N = the leading dimension of the first array input with one."""
    for arr in inputs.values():
        if arr.ndim >= 1:
            return int(arr.shape[0])
    return 1


def _near(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(a, b, rtol=1e-6, atol=1e-9 * max(1.0, _finite_max(b)), equal_nan=True))


def _finite_max(a: np.ndarray) -> float:
    finite = np.abs(a[np.isfinite(a)])
    return float(finite.max(initial=0.0))


def shape_finding(expected: np.ndarray, got: np.ndarray, case: CaseData, name: str) -> Finding | None:
    if expected.ndim == 2 and got.shape == expected.T.shape and _near(got.T, expected):
        return Finding("transposed", name)
    alt = case.alternatives.get("wrong_axis", {}).get(name)
    if alt is not None and _near(got, alt):
        return Finding("wrong_axis", name)
    for arg, x in case.inputs.items():
        if x.ndim < 2:
            continue
        reductions = [x.shape[:a] + x.shape[a + 1:] for a in range(x.ndim)]
        if expected.shape in reductions and got.shape in reductions and got.shape != expected.shape \
                and reductions.count(got.shape) == 1 and reductions.count(expected.shape) == 1:
            return Finding("reduced_other_axis", name, factor=arg)
    return None


def value_finding(expected: np.ndarray, got: np.ndarray, case: CaseData, name: str) -> Finding | None:
    """A provable property of ``got`` against ``expected`` in one case (the caller checks it holds in every case)."""
    if expected.dtype.kind != "f" or got.shape != expected.shape:
        return None
    if (np.isfinite(expected) & ~np.isfinite(got)).any():
        return Finding("unstable", name)
    if expected.ndim == 2 and expected.shape[0] == expected.shape[1] and _near(got, expected.T):
        return Finding("transposed", name)
    alt = case.alternatives.get("wrong_axis", {}).get(name)
    if alt is not None and _near(got, alt):
        return Finding("wrong_axis", name)
    factor = constant_factor(expected, got)
    if factor is not None:
        n = batch_size(case.inputs)
        if np.isclose(factor, -1.0, rtol=1e-6):
            return Finding("sign_flip", name)
        if n > 1 and np.isclose(factor, n, rtol=1e-6):
            return Finding("extra_factor_n", name, n=n)
        if n > 1 and np.isclose(factor, 1.0 / n, rtol=1e-6):
            return Finding("missing_factor_n", name, n=n)
        if expected.size > 1:
            return Finding("scaled", name, factor=factor)
    if expected.ndim == 2 and expected.shape[0] > 1:
        with np.errstate(all="ignore"):
            diff = got - expected
        if np.abs(diff[0]).max() > 0 and _near(diff, np.broadcast_to(diff[0], diff.shape)):
            return Finding("row_offset", name)
    return None


def constant_factor(expected: np.ndarray, got: np.ndarray) -> float | None:
    """c such that got ≈ c * expected in every entry (c != 1), or None."""
    scale = float(np.max(np.abs(expected), initial=0.0))
    if scale == 0.0 or not np.isfinite(scale):
        return None
    mask = np.abs(expected) > 1e-6 * scale
    if not mask.any():
        return None
    with np.errstate(all="ignore"):
        ratios = got[mask] / expected[mask]
    c = float(np.median(ratios))
    if not np.isfinite(c) or c == 0.0 or np.isclose(c, 1.0, rtol=1e-6):
        return None
    return c if _near(got, c * expected) else None


def where_it_differs(expected: np.ndarray, got: np.ndarray, inputs: dict, *, rtol: float, atol: float) -> list[str]:
    """Facts about where ``got`` differs: only where an input is 0 / negative / positive, only in some rows."""
    with np.errstate(all="ignore"):
        wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not wrong.any() or wrong.all():
        return []
    facts = []
    for arg, x in inputs.items():
        if x.shape != wrong.shape or x.dtype.kind != "f":
            continue
        for test, words in ((x == 0, f"where {arg} == 0"), (x < 0, f"where {arg} < 0"), (x > 0, f"where {arg} > 0")):
            if test.any() and np.array_equal(wrong, test):
                facts.append(f"it differs exactly {words}")
                break
        else:
            for test, words in ((x == 0, f"{arg} == 0"), (x < 0, f"{arg} < 0"), (x > 0, f"{arg} > 0")):
                if test.any() and not (wrong & ~test).any():
                    facts.append(f"it differs only at entries where {words}")
                    break
    if wrong.ndim >= 1 and wrong.shape[0] > 1:
        rows = np.flatnonzero(wrong.reshape(wrong.shape[0], -1).any(axis=1))
        n = wrong.shape[0]
        if len(rows) == 1 and rows[0] == n - 1:
            facts.append("only the last row differs")
        elif len(rows) == 1 and rows[0] == 0:
            facts.append("only the first row differs")
        elif len(rows) < n and np.array_equal(rows, np.arange(rows[0], n)) and rows[0] > 0:
            facts.append(f"rows 1 to {rows[0]} are right; it differs from row {rows[0] + 1} on")
    return facts


# -- matching the catalogue --------------------------------------------------------------------------
def _agrees(student: CaseOutput, mutant: MutantOutcome, name: str, rtol: float, atol: float) -> bool:
    """The student's output ``name`` (or their error) is what the mistake gives on this case."""
    if student.error is not None or mutant.error is not None:
        return student.error is not None and mutant.error is not None and _same_error(student.error, mutant.error)
    got, want = student.outputs.get(name), mutant.outputs.get(name)
    if got is None or want is None or not isinstance(got, np.ndarray) or got.shape != want.shape:
        return False
    if want.dtype.kind != "f" or got.dtype.kind != "f":
        return bool(np.array_equal(got, want))
    scale = _finite_max(want)
    with np.errstate(all="ignore"):
        return bool(np.allclose(got, want, rtol=max(rtol, 1e-6), atol=max(atol, 1e-9 * max(scale, 1.0)),
                                equal_nan=True))


def _same_error(a: str, b: str) -> bool:
    """Two case errors are the same mistake when they say the same thing (an in-place write on a read-only
    input, a returned input, the same exception with the same message)."""
    for marker in ("read-only", "returned its input array", "not writeable"):
        if marker in a and marker in b:
            return True
    return a == b


@dataclass
class _Match:
    name: str
    outputs: tuple            # the graded outputs it explains
    cases: int                # failing cases it explains
    feedback: str
    book: str | None
    explained: tuple = ()     # the failing cases it explains


def match_catalogue(plan, cases, got, failing: list[int], wrong_outputs: dict, catalogue: dict) -> list[_Match]:
    """Mistakes whose outputs agree with the student's in every case on the outputs the student got wrong."""
    matches = []
    for name, (feedback, book) in catalogue.items():
        explained_outputs = []
        for out_name, wrong_cases in wrong_outputs.items():
            agree_all = all(_agrees(got[i], cases[i].mutants[name], out_name, plan.rtol, plan.atol)
                            for i in range(len(got)) if name in cases[i].mutants)
            if agree_all and any(name in cases[i].mutants for i in wrong_cases):
                explained_outputs.append(out_name)
        explained_cases = [i for i in failing if name in cases[i].mutants and
                           all(_agrees(got[i], cases[i].mutants[name], o, plan.rtol, plan.atol)
                               for o in plan.graded_outputs)]
        if explained_outputs or explained_cases:
            matches.append(_Match(name, tuple(explained_outputs), len(explained_cases), feedback, book,
                                  tuple(explained_cases)))
    return matches


# -- the verdict ------------------------------------------------------------------------------------
def judge_part(plan, cases: list[CaseData], got: list[CaseOutput] | None, *, label: str = "hidden",
               part_error: str | None = None, catalogue: dict | None = None) -> PartVerdict:
    """Full points iff every case returns every graded output correctly (and, if the statement requires
    stability, without an overflow or invalid-value warning). ``catalogue``: {mutant name: (feedback,
    book label)} of the part's known mistakes."""
    max_points, total = float(plan.points), len(cases)
    if got is None or part_error is not None:
        msg = part_error or f"no outputs were recorded for {plan.function} (the notebook stopped before this part?)"
        return PartVerdict(plan.id, 0.0, max_points, "missing", [msg], cases=total, failed_cases=total)
    got = list(got)[:total]
    errors: dict[int, str] = {}
    wrong: dict[str, list[int]] = {}           # output -> cases where it is wrong
    problems: dict[str, list[tuple[int, str, Finding | None]]] = {}
    warned: dict[int, str] = {}
    for i, out in enumerate(got):
        if out.error is not None:
            errors[i] = out.error
            continue
        for name in plan.graded_outputs:
            msg, finding = check_output(name, cases[i], out, rtol=plan.rtol, atol=plan.atol)
            if msg is not None:
                wrong.setdefault(name, []).append(i)
                problems.setdefault(name, []).append((i, msg, finding))
        if plan.stable:
            hits = [w for w in out.warnings if any(k in w for k in STABILITY_WARNINGS)]
            if hits:
                warned[i] = hits[0]
    missing_cases = list(range(len(got), total))
    failing = sorted(set(errors) | {i for v in wrong.values() for i in v} | set(warned))
    if not failing and not missing_cases:
        return PartVerdict(plan.id, max_points, max_points, "passed", [f"all {total} {label} cases match"],
                           cases=total)
    messages, diagnoses, book = [], [], []
    right = [o for o in plan.graded_outputs if o not in wrong]
    if wrong and right and len(plan.graded_outputs) > 1:
        messages.append(f"{_names(right)} {'is' if len(right) == 1 else 'are'} right; "
                        f"{_names(list(wrong))} {'is' if len(wrong) == 1 else 'are'} not.")
    matches = match_catalogue(plan, cases, got, failing, wrong, catalogue or {}) if failing else []
    explained, explained_cases = _explain_by_catalogue(matches, wrong, errors, failing, label, messages,
                                                       diagnoses, book)
    if errors:
        kinds = Counter(_error_kind(e) for e in errors.values())
        first = errors[min(errors)]
        if not explained:
            finding = _error_finding(first, plan)
            if finding is not None:
                messages.append(finding.text() + ".")
                diagnoses.append(finding.code)
        messages.append(f"{plan.function} failed in {len(errors)} of {total} {label} cases; first (case "
                        f"{min(errors) + 1}): {first}" + ("" if len(kinds) == 1 else " (and other errors)"))
    if missing_cases:
        messages.append(f"only {len(got)} of {total} cases ran (the notebook stopped or the part was interrupted)")
    for name, items in problems.items():
        if name in explained:
            continue
        rest = [item for item in items if item[0] not in explained_cases]
        if rest:
            messages.append(_generic(name, rest, cases, got, plan, total, label, diagnoses,
                                     others=bool(explained_cases)))
    for i, warning in sorted(warned.items())[:1]:
        messages.append(Finding("warning", plan.function, factor=warning).text() +
                        f" (in {len(warned)} of {total} {label} cases).")
        diagnoses.append("warning")
    if not diagnoses:
        diagnoses.append("unknown")
    status = "error" if errors and not wrong and not warned else "failed"
    return PartVerdict(plan.id, 0.0, max_points, status, messages, diagnoses, failed_cases=len(failing) + len(missing_cases),
                       cases=total, book=book)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _error_kind(error: str) -> str:
    return error.split(":")[0]


def _error_finding(error: str, plan) -> Finding | None:
    if "read-only" in error or "not writeable" in error:
        return Finding("mutated_input", f"An input of {plan.function}")
    if "returned its input array" in error:
        return Finding("returned_input", f"What {plan.function} returned")
    return None


def _explain_by_catalogue(matches, wrong, errors, failing, label, messages, diagnoses, book) -> tuple[set, set]:
    """Add the catalogue's explanation to ``messages``; return (the outputs it explains in every case, the
    cases it explains when it explains only some)."""
    if not matches:
        return set(), set()
    explained = set()
    targets = set(wrong) | ({"*error*"} if errors else set())
    full = [m for m in matches if m.cases == len(failing)]
    if full:
        texts = list(dict.fromkeys(m.feedback for m in full))
        if len(texts) == 1:
            messages.append(f"This is a known mistake: {texts[0]}")
        else:
            messages.append("Your results match several known mistakes (they give the same values on these "
                            "inputs): " + " — or — ".join(texts))
        for m in full:
            diagnoses.append(f"mutant:{m.name}")
            if m.book and m.book not in book:
                book.append(m.book)
        return targets, set()
    by_output = {}
    for m in matches:
        for o in m.outputs:
            by_output.setdefault(o, []).append(m)
    if by_output and len(by_output) == len(wrong) and not errors:
        for o, ms in by_output.items():
            texts = list(dict.fromkeys(m.feedback for m in ms))
            messages.append(f"For {o}, this is a known mistake: " + " — or — ".join(texts))
            for m in ms:
                diagnoses.append(f"mutant:{m.name}")
                if m.book and m.book not in book:
                    book.append(m.book)
        if len(by_output) > 1:
            messages.insert(len(messages) - len(by_output), "Several mistakes at once:")
        return set(by_output), set()
    best = max(matches, key=lambda m: m.cases)
    if best.cases:
        messages.append(f"In {best.cases} of the {len(failing)} failing {label} cases your results match a known "
                        f"mistake: {best.feedback}")
        diagnoses.append(f"partly:{best.name}")
        if best.book and best.book not in book:
            book.append(best.book)
        return set(), set(best.explained)
    return set(), set()


def _generic(name, items, cases, got, plan, total, label, diagnoses, others=False) -> str:
    """The honest description of a wrong output: a property that holds in every failing case, else where it differs."""
    first_case, first_msg, _ = items[0]
    line = (f"{first_msg} in the other {len(items)} failing {label} case{'s' if len(items) > 1 else ''}" if others
            else f"{first_msg} in {len(items)} of {total} {label} cases")
    findings = []
    for i, msg, finding in items:
        if finding is None and msg.endswith("wrong values"):
            finding = value_finding(cases[i].expected[name], got[i].outputs[name], cases[i], name)
        findings.append(finding)
    codes = {f.code if f else None for f in findings}
    if len(codes) == 1 and None not in codes:
        f = findings[0]
        if f.code == "scaled":
            factors = [fi.factor for fi in findings]
            if not np.allclose(factors, factors[0], rtol=1e-6):
                f = None
        if f is not None:
            diagnoses.append(f.code)
            return line + f". {f.text()}."
    if first_msg.endswith("wrong values"):
        expected, out = cases[first_case].expected[name], got[first_case].outputs[name]
        excess, index = tolerance_excess(expected, out, rtol=plan.rtol, atol=plan.atol)
        facts = where_it_differs(expected, out, cases[first_case].inputs, rtol=plan.rtol, atol=plan.atol)
        where = f" at index {index}" if index else ""
        detail = (f". No specific cause was found. In case {first_case + 1} the largest difference is"
                  f"{where}: {excess:.2g} times what the tolerance allows (every entry must satisfy "
                  f"|yours - expected| <= {plan.atol:g} + {plan.rtol:g}·|expected|)")
        if facts:
            detail += "; " + "; ".join(facts)
        return line + detail + "."
    return line + "."
