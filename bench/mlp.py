"""MLP benchmarks: mlp_lib against torch (CPU) in one process, same threads, same weights.

1. One training step of a 784-256-256-10 ReLU MLP (forward, softmax cross-entropy,
   backward, SGD update), float32 and float64, batch 64/128/512; plus the time of
   the step's matrix products alone in numpy (the machine's matmul rate at those
   shapes) and the fraction of it the whole step achieves.
2. Batch norm forward + backward, N=512, D=256 (torch: F.batch_norm + autograd).
3. Dropout forward + backward, N=512, D=256, p=0.5.
4. 50 epochs of Adam on digits (64-64-32-10 ReLU MLP, batch 32), the whole loop.

Every time is the median over interleaved repeats (mlp_lib, torch, mlp_lib, ...),
so that both sides see the same machine load.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from mlp_lib import interop, optim
from mlp_lib import modules as M
from mlp_lib.data import load_digits
from mlp_lib.losses import softmax_cross_entropy
from mlp_lib.training import fit

LAYERS = (784, 256, 256, 10)
BATCHES = (64, 128, 512)
DTYPES = (np.float32, np.float64)
TARGET_STEP_RATIO = 0.9     # MLP step time <= 0.9 x torch's
TARGET_MATMUL_FRACTION = 0.85
TARGET_BN_RATIO = 1.5


def _clock(kind: str):
    return time.perf_counter if kind == "wall" else time.process_time


def compare(fns: dict, *, repeats: int, clock: str, budget: float = 0.02) -> dict:
    """Median seconds per call of each function, measured in interleaved repeats."""
    now = _clock(clock)
    numbers = {}
    for name, f in fns.items():
        f()
        start = now()
        f()
        once = max(now() - start, 1e-7)
        numbers[name] = max(1, int(budget / once))
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            n = numbers[name]
            start = now()
            for _ in range(n):
                f()
            samples[name].append((now() - start) / n)
    return {name: statistics.median(ts) for name, ts in samples.items()}


def _mlp(dtype, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (d_in, d_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:])):
        layers.append(M.Linear(d_in, d_out, rng=rng, dtype=dtype))
        if i < len(LAYERS) - 2:
            layers.append(M.ReLU())
    return M.Sequential(*layers)


def mlp_step(dtype, n, *, repeats, clock):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, LAYERS[0])).astype(dtype)
    y = rng.integers(0, LAYERS[-1], n)
    model = _mlp(dtype)
    tmodel = interop.to_torch(model)
    params = model.parameters()
    opt = optim.SGD(lr=0.01)
    state = {"s": None}

    def ours():
        model.zero_grad()
        scores = model(X)
        _, dscores = softmax_cross_entropy(scores, y)
        model.backward(dscores, input_grad=False)
        state["s"] = optim.apply_step(opt, params, state["s"])

    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def theirs():
        topt.zero_grad()
        F.cross_entropy(tmodel(Xt), yt).backward()
        topt.step()

    # The step's matrix products alone, at the same shapes: 3 forward, 3 dW, and the dx of
    # every layer but the first (neither library computes the gradient of the input).
    Ws = [rng.standard_normal((a, b)).astype(dtype) for a, b in zip(LAYERS[:-1], LAYERS[1:])]
    ins = [X] + [rng.standard_normal((n, d)).astype(dtype) for d in LAYERS[1:-1]]
    douts = [rng.standard_normal((n, d)).astype(dtype) for d in LAYERS[1:]]

    def matmuls():
        for x, W in zip(ins, Ws):
            x @ W
        for i, (x, W, d) in enumerate(zip(ins, Ws, douts)):
            x.T @ d
            if i > 0:
                d @ W.T

    t = compare({"mlp_lib": ours, "torch": theirs, "matmul": matmuls}, repeats=repeats, clock=clock)
    sum_dd = sum(a * b for a, b in zip(LAYERS[:-1], LAYERS[1:]))
    nominal = 3 * 2 * n * sum_dd                          # the FLOP count
    executed = nominal - 2 * n * LAYERS[0] * LAYERS[1]    # minus the first layer's dx, which nobody computes
    rate = executed / t["matmul"]
    return {
        "dtype": np.dtype(dtype).name, "batch": n, "mlp_lib_ms": t["mlp_lib"] * 1e3, "torch_ms": t["torch"] * 1e3,
        "ratio": t["mlp_lib"] / t["torch"], "matmul_gflops": rate / 1e9,
        "nominal_fraction": nominal / t["mlp_lib"] / rate, "executed_fraction": t["matmul"] / t["mlp_lib"],
        "torch_executed_fraction": t["matmul"] / t["torch"],
    }


def batchnorm(dtype, *, repeats, clock, n=512, d=256):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((n, d)) * 3 + 1).astype(dtype)
    dout = rng.standard_normal((n, d)).astype(dtype)
    bn = M.BatchNorm1d(d, dtype=dtype)

    def ours():
        bn(x)
        bn.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    w = torch.ones(d, dtype=xt.dtype, requires_grad=True)
    b = torch.zeros(d, dtype=xt.dtype, requires_grad=True)
    rm, rv = torch.zeros(d, dtype=xt.dtype), torch.ones(d, dtype=xt.dtype)
    dt = torch.from_numpy(dout)

    def theirs():
        xt.grad = w.grad = b.grad = None
        F.batch_norm(xt, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5).backward(dt)

    t = compare({"mlp_lib": ours, "torch": theirs}, repeats=repeats, clock=clock)
    return {"dtype": np.dtype(dtype).name, "mlp_lib_us": t["mlp_lib"] * 1e6, "torch_us": t["torch"] * 1e6,
            "ratio": t["mlp_lib"] / t["torch"]}


def dropout(dtype, *, repeats, clock, n=512, d=256, p=0.5):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, d)).astype(dtype)
    dout = rng.standard_normal((n, d)).astype(dtype)
    layer = M.Dropout(p, rng=rng)

    def ours():
        layer(x)
        layer.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    dt = torch.from_numpy(dout)

    def theirs():
        xt.grad = None
        F.dropout(xt, p=p, training=True).backward(dt)

    t = compare({"mlp_lib": ours, "torch": theirs}, repeats=repeats, clock=clock)
    return {"dtype": np.dtype(dtype).name, "mlp_lib_us": t["mlp_lib"] * 1e6, "torch_us": t["torch"] * 1e6,
            "ratio": t["mlp_lib"] / t["torch"]}


def adam_digits(*, repeats, clock, epochs=50, batch_size=32, sizes=(64, 64, 32, 10), lr=1e-3):
    digits = load_digits(seed=0)
    X, y = digits.X_train, digits.y_train
    now = _clock(clock)

    def build():
        rng = np.random.default_rng(4)
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(M.Linear(a, b, rng=rng))
            if i < len(sizes) - 2:
                layers.append(M.ReLU())
        return M.Sequential(*layers)

    def ours():
        model = build()
        start = now()
        fit(model, loss=softmax_cross_entropy, optimizer=optim.Adam(lr=lr), X=X, y=y, epochs=epochs,
            batch_size=batch_size, rng=5)
        elapsed = now() - start
        return elapsed, float((model.eval()(digits.X_test).argmax(1) == digits.y_test).mean())

    def theirs():
        tmodel = interop.to_torch(build())
        topt = torch.optim.Adam(tmodel.parameters(), lr=lr)
        gen = np.random.default_rng(5)
        start = now()
        for _ in range(epochs):  # the same work per batch as fit: loss and accuracy bookkeeping
            total, correct = 0.0, 0
            order = gen.permutation(len(y))  # the batches of minibatches(..., rng=5): same draws
            Xp, yp = torch.from_numpy(X[order]), torch.from_numpy(y[order])
            for begin in range(0, len(y), batch_size):
                xb, yb = Xp[begin:begin + batch_size], yp[begin:begin + batch_size]
                topt.zero_grad()
                scores = tmodel(xb)
                loss = F.cross_entropy(scores, yb)
                loss.backward()
                topt.step()
                total += loss.item() * xb.shape[0]
                correct += int((scores.argmax(1) == yb).sum())
        elapsed = now() - start
        with torch.no_grad():
            acc = float((tmodel(torch.from_numpy(digits.X_test)).argmax(1).numpy() == digits.y_test).mean())
        return elapsed, acc

    runs = {"mlp_lib": [], "torch": []}
    for _ in range(repeats):
        runs["mlp_lib"].append(ours())
        runs["torch"].append(theirs())
    med = {k: statistics.median(t for t, _ in v) for k, v in runs.items()}
    return {"mlp_lib_s": med["mlp_lib"], "torch_s": med["torch"], "ratio": med["mlp_lib"] / med["torch"],
            "mlp_lib_acc": runs["mlp_lib"][0][1], "torch_acc": runs["torch"][0][1]}


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def run(*, threads: int, repeats: int, clock: str) -> None:
    print(f"mlp_lib vs torch {torch.__version__} (CPU), numpy {np.__version__}; threads={threads} for both "
          f"(OMP/OPENBLAS/MKL_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch.get_num_threads()="
          f"{torch.get_num_threads()}); median of {repeats} interleaved repeats, {clock} clock")

    print("\n1. MLP 784-256-256-10 ReLU, one training step (forward, softmax-CE, backward, SGD update)")
    print("   matmul GF/s: np.matmul alone at the step's shapes (the machine's rate); '% of matmul':\n"
          "   the step's nominal FLOPs 3*2*N*sum(D_in*D_out) per second over that rate ('nominal'), and the\n"
          "   products' time over the step's time ('executed': both libraries skip the first layer's dx).")
    header = (f"   {'dtype':8} {'N':>4} {'mlp_lib ms':>10} {'torch ms':>9} {'ratio':>6} {'matmul GF/s':>11} "
              f"{'nominal':>8} {'executed':>8} {'torch exec':>10}  {'<=0.9x':>6} {'>=85%':>5}")
    print(header)
    for dtype in DTYPES:
        for n in BATCHES:
            r = mlp_step(dtype, n, repeats=repeats, clock=clock)
            print(f"   {r['dtype']:8} {n:4d} {r['mlp_lib_ms']:10.3f} {r['torch_ms']:9.3f} {r['ratio']:6.2f} "
                  f"{r['matmul_gflops']:11.1f} {r['nominal_fraction']:8.0%} {r['executed_fraction']:8.0%} "
                  f"{r['torch_executed_fraction']:10.0%}  {_ok(r['ratio'] <= TARGET_STEP_RATIO):>6} "
                  f"{_ok(r['executed_fraction'] >= TARGET_MATMUL_FRACTION):>5}", flush=True)

    print("\n2. Batch norm forward + backward, training mode, N=512, D=256 (torch: F.batch_norm + autograd)")
    for dtype in DTYPES:
        r = batchnorm(dtype, repeats=repeats, clock=clock)
        print(f"   {r['dtype']:8} mlp_lib {r['mlp_lib_us']:8.1f} us  torch {r['torch_us']:8.1f} us  "
              f"ratio {r['ratio']:5.2f}  (target <= {TARGET_BN_RATIO}: {_ok(r['ratio'] <= TARGET_BN_RATIO)})",
              flush=True)

    print("\n3. Dropout forward + backward, p=0.5, N=512, D=256")
    for dtype in DTYPES:
        r = dropout(dtype, repeats=repeats, clock=clock)
        print(f"   {r['dtype']:8} mlp_lib {r['mlp_lib_us']:8.1f} us  torch {r['torch_us']:8.1f} us  "
              f"ratio {r['ratio']:5.2f}", flush=True)

    print("\n4. 50 epochs of Adam on digits (1257 training images), MLP 64-64-32-10 ReLU, batch 32, float64")
    r = adam_digits(repeats=max(3, repeats // 5), clock=clock)
    print(f"   mlp_lib {r['mlp_lib_s']:6.3f} s  torch {r['torch_s']:6.3f} s  ratio {r['ratio']:5.2f}   "
          f"test accuracy: mlp_lib {r['mlp_lib_acc']:.3f}, torch {r['torch_acc']:.3f}", flush=True)
