"""Chapter 7's adapters: run in the student's process (numpy and the standard library only).

The two modes of ``batchnorm_forward`` are graded as two parts through one adapter; the backward
pass is graded on a cache built here from the case, so that it never depends on the student's
forward pass.
"""
import numpy as np

from autograder.inside.harness import require_new_arrays

CACHE_KEYS = ("training", "xc", "gamma", "inv_std")


def _forward_outputs(student, training, x, gamma, beta, running_mean, running_var, momentum, eps):
    """(out, cache['xc'], cache['inv_std'], new_running_mean, new_running_var) of the student's forward pass."""
    result = student.batchnorm_forward(x, gamma, beta, running_mean, running_var, training=training,
                                       momentum=float(momentum), eps=float(eps))
    if not isinstance(result, tuple) or len(result) != 4:
        raise TypeError("batchnorm_forward must return the tuple (out, cache, new_running_mean, new_running_var)")
    out, cache, new_running_mean, new_running_var = result
    if not isinstance(cache, dict) or not set(CACHE_KEYS) <= set(cache):
        raise TypeError("the cache must be a dict with the keys 'training', 'xc', 'gamma' and 'inv_std'")
    # the statement asks for new running statistics (copies in inference mode), never the arrays given
    require_new_arrays((new_running_mean, new_running_var), (running_mean, running_var), "batchnorm_forward")
    return out, cache["xc"], cache["inv_std"], new_running_mean, new_running_var


def bn_forward_train(student, x, gamma, beta, running_mean, running_var, momentum, eps):
    return _forward_outputs(student, True, x, gamma, beta, running_mean, running_var, momentum, eps)


def bn_forward_eval(student, x, gamma, beta, running_mean, running_var, momentum, eps):
    return _forward_outputs(student, False, x, gamma, beta, running_mean, running_var, momentum, eps)


def backward_cache(x, gamma, running_mean, running_var, eps, training):
    """The cache of Part 3's statement (mlp_lib's), for x in either mode; its arrays are read-only, like
    every input: the statement asks that the backward pass leave the cache alone."""
    if training:
        xc = x - x.mean(axis=0)
        inv_std = 1.0 / np.sqrt((xc * xc).mean(axis=0) + eps)
    else:
        xc = x - running_mean
        inv_std = 1.0 / np.sqrt(running_var + eps)
    for a in (xc, inv_std):
        a.setflags(write=False)
    return {"training": training, "xc": xc, "gamma": gamma, "inv_std": inv_std}


def bn_backward(student, dout, x, gamma, running_mean, running_var, eps, mode):
    cache = backward_cache(x, gamma, running_mean, running_var, float(eps), mode == "training")
    return student.batchnorm_backward(dout, cache)
