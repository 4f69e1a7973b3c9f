"""How Chapter 4's parts call the student's functions (runs in the student's process: numpy and the stdlib).

* The initializers are random, so the adapters draw at least ``MIN_SAMPLES`` weights with the
  student's function from seeded Generators and hand back statistics of them (see grading.py).
* Parts 3 and 5 take lists of gradient arrays: a case carries them as one flat vector and the
  shape of each array (``rows``, ``cols``: autograder.inside.harness.unpack_arrays).
"""
import numpy as np

from autograder.inside.harness import pack_arrays, require_new_arrays, returned_pair, unpack_arrays

MIN_SAMPLES = 1_000_000          # weights drawn per initializer case


def weight_statistics(draw, shape, seed, *, name):
    """Statistics of the weights ``draw(generator)`` returns: (shape of one draw, rms, std / rms,
    largest magnitude, kurtosis, 1 if the same seed gives the same matrix and another seed another one)."""
    def one(generator):
        return np.asarray(draw(generator), dtype=np.float64)

    first = one(np.random.default_rng(seed))
    if first.ndim != 2 or first.size == 0:
        raise ValueError(f"{name}{shape} returned an array of shape {first.shape}, expected {shape}")
    reproducible = np.array_equal(first, one(np.random.default_rng(seed))) and \
        not np.array_equal(first, one(np.random.default_rng(seed + 1)))
    generator = np.random.default_rng(seed + 2)
    samples, total = [first.ravel()], first.size
    while total < MIN_SAMPLES:
        w = one(generator).ravel()
        samples.append(w)
        total += w.size
    x = np.concatenate(samples)
    m2 = np.mean(x * x)
    return (np.array(first.shape, dtype=np.int64), np.sqrt(m2), np.std(x) / np.sqrt(m2), np.max(np.abs(x)),
            np.mean(x ** 4) / m2 ** 2, np.int64(reproducible))


def xavier_statistics(student, d_in, d_out, gain, seed):
    shape = (d_in, d_out)
    return weight_statistics(lambda g: student.xavier_uniform(shape, gain=gain, rng=g), shape, seed,
                             name="xavier_uniform")


def kaiming_statistics(student, d_in, d_out, a, mode, seed):
    shape = (d_in, d_out)
    shape_, rms, std_over_rms, _, kurtosis, reproducible = weight_statistics(
        lambda g: student.kaiming_normal(shape, a=a, mode=mode, rng=g), shape, seed, name="kaiming_normal")
    return shape_, rms, std_over_rms, kurtosis, reproducible


def layers_of(flat, rows, cols, layer):
    """The list of layers, each the list of its gradient arrays (views of ``flat``): array k is in layer[k]."""
    layers = [[] for _ in range(int(layer.max()) + 1)]
    for arr, l in zip(unpack_arrays(flat, rows, cols), layer.tolist()):
        layers[l].append(arr)
    return layers


def layer_norms(student, flat, rows, cols, layer):
    return student.layer_gradient_norms(layers_of(flat, rows, cols, layer))


def clip(student, flat, rows, cols, max_norm):
    """clip_grad_norm on the arrays of ``flat``; the clipped arrays must be new ones (the statement says so)."""
    grads = unpack_arrays(flat, rows, cols)
    clipped, total_norm = returned_pair(student.clip_grad_norm(grads, max_norm), "clip_grad_norm",
                                        "(clipped, total_norm)")
    clipped = list(clipped)
    require_new_arrays(clipped, grads, "clip_grad_norm")
    return pack_arrays(clipped, grads, "clipped"), total_norm
