"""mlp_lib: a small numpy library for multilayer perceptrons, verified against torch.

Conventions (stated once; the book's notation table repeats them):

* A batch is a float array of shape (N, D): N examples, D features.
* A linear layer computes ``out = x @ W + b`` with ``W`` of shape (D_in, D_out)
  and ``b`` of shape (D_out,). torch's ``nn.Linear`` stores the transpose
  (out, in); :mod:`mlp_lib.interop` is the one place that translates.
* Functional core: pure ``*_forward(...) -> (out, cache)`` and
  ``*_backward(dout, cache) -> grads`` pairs. Backward never mutates its inputs.
* Losses return ``(loss, dscores)``; classification losses average over the batch.
* Randomness is explicit: anything that samples takes ``rng`` (a
  ``np.random.Generator`` or an int seed). Nothing touches numpy's global state.
* float32 and float64 are both supported and preserved; other dtypes, NaN/inf and
  wrong shapes raise ``TypeError``/``ValueError`` naming the argument.
"""
__version__ = "0.1.0"
