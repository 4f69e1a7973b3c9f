"""Chapter 8's adapters: run in the student's process (numpy and the standard library only).

A list of arrays (weights, gradients, parameters) travels as one flat vector and its layout
(``rows``, ``cols``; ``cols == 0`` is a 1-D array): the student gets read-only *views* of the flat
vector, so an in-place change fails in the call, and hands back lists that are packed the same way.
"""
import numpy as np

from autograder.inside.harness import pack_arrays, require_new_arrays, returned_pair, unpack_arrays


def _penalty(student, function, flat, rows, cols, *options):
    """(value, grads packed) of the student's penalty ``function(weights, *options)``; grads must be new arrays."""
    weights = unpack_arrays(flat, rows, cols)
    returned = getattr(student, function)(weights, *(float(o) for o in options))
    value, grads = returned_pair(returned, function, "(value, grads)")
    require_new_arrays(grads, weights, function)
    return value, pack_arrays(grads, weights, "grads")


def l2_penalty(student, flat, rows, cols, lam):
    return _penalty(student, "l2_penalty", flat, rows, cols, lam)


def l1_penalty(student, flat, rows, cols, lam):
    return _penalty(student, "l1_penalty", flat, rows, cols, lam)


def elastic_net_penalty(student, flat, rows, cols, lam, l1_ratio):
    return _penalty(student, "elastic_net_penalty", flat, rows, cols, lam, l1_ratio)


def early_stopping(student, val_losses, patience, min_delta):
    returned = student.early_stopping([float(v) for v in val_losses], patience=int(patience),
                                      min_delta=float(min_delta))
    return returned_pair(returned, "early_stopping", "(stop_epoch, best_epoch)")


def _read_only(arrays):
    """Read-only copies: what the caller passes back to the next step must not be changed in place either."""
    copies = [np.array(a, dtype=np.float64) for a in arrays]
    for a in copies:
        a.setflags(write=False)
    return copies


def sgd_trajectory(student, flat, rows, cols, velocities, grad_seq, lr, momentum, weight_decay):
    """The parameters after each of ``len(grad_seq)`` steps, from the given velocities (zeros, or those a
    previous run left), feeding the student's parameters and velocities back to the next step."""
    params = unpack_arrays(flat, rows, cols)
    state = unpack_arrays(velocities, rows, cols)
    trajectory = []
    for grads in grad_seq:
        new_params, new_velocities = returned_pair(
            student.sgd_step(params, unpack_arrays(grads, rows, cols), state, lr=float(lr),
                             momentum=float(momentum), weight_decay=float(weight_decay)),
            "sgd_step", "(new_params, new_velocities)")
        trajectory.append(pack_arrays(new_params, params, "new_params"))
        pack_arrays(new_velocities, params, "new_velocities")           # checks the shapes
        params, state = _read_only(new_params), _read_only(new_velocities)
    return np.stack(trajectory)
