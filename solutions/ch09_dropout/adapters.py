"""Chapter 9's adapters: run in the student's process (numpy and the standard library only).

Every argument arrives read-only (an in-place change fails in the call). The parts that draw
from a Generator call the student's function several times in a row on one Generator made from
the case's seed, and hand back every call's result: the grader reproduces the same stream of
masks, so each call is checked exactly and nothing that depends on the call count can pass.
"""
import numpy as np

from autograder.inside.harness import require_new_arrays, returned_pair

CALLS = 3           # consecutive calls on one Generator (the sampling parts)


def _out_and_keep(returned, x, mode):
    """(out, the mask of the cache) of a ``dropout_forward`` call; ``out`` must be a new array."""
    out, cache = returned_pair(returned, "dropout_forward", "(out, cache)")
    if not isinstance(cache, tuple) or len(cache) != 2:
        raise TypeError("the cache must be the pair (keep, p)")
    if np.shape(out) != x.shape:
        raise ValueError(f"out has shape {np.shape(out)}, expected the shape of x {x.shape}")
    require_new_arrays(out, (x,), "dropout_forward")       # evaluation mode too: a copy of x, never x
    keep = cache[0]
    if mode == "inference":
        return out, np.array(keep is None)                 # the cache holds no mask: (None, p)
    keep = np.asarray(keep)
    if keep.shape != x.shape:
        raise ValueError(f"the mask in the cache has shape {keep.shape}, expected the shape of x {x.shape}")
    return out, keep != 0


def dropout_given_mask(student, x, p, mode, mask):
    """Part 1: training mode with the mask given, or evaluation mode."""
    if mode == "training":
        returned = student.dropout_forward(x, p=float(p), training=True, mask=mask)
    else:
        returned = student.dropout_forward(x, p=float(p), training=False)
    return _out_and_keep(returned, x, mode)


def dropout_from_rng(student, x, p, seed):
    """Part 2: CALLS consecutive training-mode calls drawing their masks from one Generator."""
    gen = np.random.default_rng(int(seed))
    outs, keeps = [], []
    for _ in range(CALLS):
        out, keep = _out_and_keep(student.dropout_forward(x, p=float(p), training=True, rng=gen), x, "training")
        outs.append(np.asarray(out, dtype=np.float64))
        keeps.append(keep)
    return np.stack(outs), np.stack(keeps)


def dropout_backward(student, dout, mask, p, mode):
    """Part 3, on the cache that Part 1 specifies, built here: a forward mistake never costs this part."""
    cache = (mask, float(p)) if mode == "training" else (None, float(p))
    dx = student.dropout_backward(dout, cache)
    require_new_arrays(dx, (dout,), "dropout_backward")    # evaluation mode: a copy of dout, never dout
    return dx


def mlp_given_masks(student, x, W1, b1, W2, b2, W3, b3, m0, m1, m2, p_input, p_hidden, mode):
    """Part 5: training mode with the masks given, or evaluation mode."""
    params = [(W1, b1), (W2, b2), (W3, b3)]
    if mode == "training":
        return student.mlp_forward(x, params, p_input=float(p_input), p_hidden=float(p_hidden), training=True,
                                   masks=[m0, m1, m2])
    return student.mlp_forward(x, params, p_input=float(p_input), p_hidden=float(p_hidden), training=False)


def mlp_from_rng(student, x, W1, b1, W2, b2, W3, b3, p_input, p_hidden, seed):
    """Part 6: the scores of CALLS consecutive training-mode calls drawing their masks from one Generator."""
    params = [(W1, b1), (W2, b2), (W3, b3)]
    gen = np.random.default_rng(int(seed))
    return np.stack([np.asarray(student.mlp_forward(x, params, p_input=float(p_input), p_hidden=float(p_hidden),
                                                    training=True, rng=gen), dtype=np.float64)
                     for _ in range(CALLS)])
