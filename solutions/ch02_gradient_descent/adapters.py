"""Kernel-side helpers of Chapter 2's grading spec: numpy and the standard library only.

This module is sent to the student's process, where the spec's adapters run, and can be imported
there: it must never compute a graded answer. It holds the one loop that drives a student's
optimizer step over a case's gradients, for the four step functions (Parts 3 to 6).
"""
import numpy as np


def run_steps(step, name, w, state, grads, lrs, **options):
    """Call ``step`` once per gradient of ``grads`` (T, *w.shape), with the learning rate ``lrs[k]``
    and ``options``; return (the iterates stacked, shape (T, *w.shape), the final state dict).

    The first call gets the case's own arrays, which are read-only: an update in place fails there.
    Each call gets a fresh dict, and must leave it as it was: a step that stores its new values in
    the dict it was given (new arrays, old dict) is reported as an error.
    """
    trajectory = []
    for k in range(grads.shape[0]):
        given = dict(state)
        returned = step(w, grads[k], state, lr=float(lrs[k]), **options)
        if not isinstance(returned, (tuple, list)) or len(returned) != 2 or not isinstance(returned[1], dict):
            raise TypeError(f"{name} must return a pair (new_w, new_state) with new_state a dict")
        if state.keys() != given.keys() or any(state[key] is not given[key] for key in given):
            raise ValueError(f"{name} changed the state dict it was given (step {k + 1}): return a new dict "
                             "and leave the old one as it was")
        w, state = returned[0], dict(returned[1])
        trajectory.append(np.array(w, dtype=np.float64, copy=True))
    return np.stack(trajectory), state


def momentum_call(student, w, velocity, grads, lrs, momentum, nesterov):
    trajectory, state = run_steps(student.sgd_momentum_step, "sgd_momentum_step", w, {"velocity": velocity},
                                  grads, lrs, momentum=momentum, nesterov=nesterov)
    return trajectory, state["velocity"]


def adagrad_call(student, w, sum_sq, grads, lrs, eps):
    trajectory, state = run_steps(student.adagrad_step, "adagrad_step", w, {"sum_sq": sum_sq}, grads, lrs, eps=eps)
    return trajectory, state["sum_sq"]


def rmsprop_call(student, w, square_avg, grads, lrs, alpha, eps):
    trajectory, state = run_steps(student.rmsprop_step, "rmsprop_step", w, {"square_avg": square_avg}, grads, lrs,
                                  alpha=alpha, eps=eps)
    return trajectory, state["square_avg"]


def adam_call(student, w, m, v, t, grads, lrs, beta1, beta2, eps):
    trajectory, state = run_steps(student.adam_step, "adam_step", w, {"t": int(t), "m": m, "v": v}, grads, lrs,
                                  beta1=beta1, beta2=beta2, eps=eps)
    return trajectory, state["m"], state["v"], state["t"]
