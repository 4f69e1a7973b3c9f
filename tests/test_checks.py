"""mlp_lib._checks: the one validation vocabulary every module uses."""
import math

import numpy as np
import pytest

from mlp_lib import _checks as C


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_flag_accepts_python_and_numpy_booleans(value):
    assert C.flag("shuffle", value) is bool(value)


@pytest.mark.parametrize("value", [0, 1, "yes", None, np.array([True])])
def test_flag_refuses_anything_else_naming_the_argument(value):
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        C.flag("shuffle", value)


@pytest.mark.parametrize("value, expected", [(3, 3.0), (-2.5, -2.5), (np.float32(0.5), 0.5), (np.array(7), 7.0)])
def test_real_number_returns_a_float(value, expected):
    result = C.real_number("x", value)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", [True, np.bool_(False), "1.0", None, [1.0], np.array([1.0]), 1j])
def test_real_number_refuses_what_is_not_a_real_number(value):
    with pytest.raises(TypeError, match="x must be a finite real number"):
        C.real_number("x", value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_real_number_is_finite_unless_told_otherwise(value):
    with pytest.raises(TypeError, match="finite"):
        C.real_number("x", value)
    result = C.real_number("x", value, allow_nonfinite=True)
    assert result == value or (math.isnan(result) and math.isnan(value))


def test_positive_and_probability_check_the_range_after_the_kind():
    assert C.positive("lr", 0, allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="lr must be > 0"):
        C.positive("lr", 0)
    with pytest.raises(TypeError, match="lr must be a finite real number"):
        C.positive("lr", math.inf)
    assert C.probability("p", 1, allow_one=True) == 1.0
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
            C.probability("p", bad)


def test_integer_and_positive_int_refuse_bools_and_floats():
    assert C.integer("axis", np.int64(-2)) == -2 and C.positive_int("n", 3) == 3
    for bad in (True, 2.0, "2"):
        with pytest.raises(TypeError, match="must be an int"):
            C.positive_int("n", bad)
    with pytest.raises(ValueError, match="n must be >= 0"):
        C.positive_int("n", -1, allow_zero=True)


@pytest.mark.parametrize("dtype", [np.float32, "float64", np.dtype(np.float64), float])
def test_float_dtype_accepts_the_two_float_types_in_any_spelling(dtype):
    assert C.float_dtype("dtype", dtype) in (np.float32, np.float64)


@pytest.mark.parametrize("dtype", [None, np.int32, "float16", "no such type", object])
def test_float_dtype_refuses_the_rest_and_none(dtype):
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        C.float_dtype("dtype", dtype)


def test_array_list_checks_every_array_and_refuses_a_bare_array():
    arrays = C.array_list("weights", [np.ones((2, 3)), [1.0, 2.0]])
    assert [a.shape for a in arrays] == [(2, 3), (2,)]
    with pytest.raises(TypeError, match="list of arrays"):
        C.array_list("weights", np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"weights\[1\] must be a float32 or float64"):
        C.array_list("weights", [np.ones(2), np.ones(2, dtype=int)])


def test_upstream_gradient_must_match_the_forward_output():
    dout = np.ones((4, 3))
    assert C.upstream_gradient(dout, shape=(4, 3), dtype=np.float64) is dout
    assert C.upstream_gradient(0.5, shape=(), dtype=np.float64).shape == ()  # a 0-d output's gradient
    with pytest.raises(TypeError, match="dout must be a numpy array, got list"):
        C.upstream_gradient(dout.tolist(), shape=(4, 3), dtype=np.float64)
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 2\), got shape \(4, 3\)"):
        C.upstream_gradient(dout, shape=(4, 2), dtype=np.float64)
    with pytest.raises(TypeError, match="dout: float32, cache: float64"):
        C.upstream_gradient(dout.astype(np.float32), shape=(4, 3), dtype=np.float64)
    bad = dout.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="dout contains NaN"):
        C.upstream_gradient(bad, shape=(4, 3), dtype=np.float64)
    assert C.upstream_gradient(bad, shape=(4, 3), dtype=np.float64, allow_nonfinite=True) is bad
