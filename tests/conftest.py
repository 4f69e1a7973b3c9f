"""Shared test setup.

numpy and torch run in one process here: with default thread pools on a small
machine they fight for cores (4-8x slower), so both get one thread. This must
happen before either library is imported.
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's name: reproducible, different per test."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


def to_torch(a, requires_grad=False):
    """float64 (or the array's float dtype) tensor sharing no memory with ``a``."""
    t = torch.tensor(np.array(a, copy=True))
    return t.requires_grad_(requires_grad)
