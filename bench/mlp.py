"""MLP benchmarks: mlp_lib against torch (CPU) in one process, same threads, same weights.

1. One training step of a 784-256-256-10 ReLU MLP (forward, softmax cross-entropy,
   backward, SGD update), float32 and float64, batch 64/128/512; plus the time of
   the step's matrix products alone in numpy (the machine's matmul rate at those
   shapes) and the fraction of it the whole step achieves.
2. Batch norm forward + backward, N=512, D=256 (torch: F.batch_norm + autograd).
3. Dropout forward + backward, N=512, D=256, p=0.5.
4. 50 epochs of Adam on digits (64-64-32-10 ReLU MLP, batch 32), the whole loop.

Protocol: every measurement is R interleaved rounds (``--repeats``, default 15,
at least 5). In one round each contender runs for about 10 ms back to back, and
the order flips from round to round, so both see the same machine load. Times
are process CPU time by default (``--clock``; one thread each): on a shared
machine that leaves out the time other processes hold the CPU, though not
their use of the caches and memory bandwidth. A
round gives one ratio mlp_lib/torch; the table shows the median time of each
side, the median of the per-round ratios and its spread (the interquartile
range of those ratios: half of the rounds lie inside it). Targets are checked
on the median ratio.
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
TARGET_BN_RATIO = 1.3       # batch norm forward + backward <= 1.3 x torch's, both dtypes
ROUND_SECONDS = 0.01


def _clock(kind: str):
    return time.perf_counter if kind == "wall" else time.process_time


def compare(fns: dict, *, repeats: int, clock: str, budget: float = ROUND_SECONDS) -> dict:
    """Seconds per call of each function in each of ``repeats`` interleaved rounds: {name: [s, ...]}."""
    now = _clock(clock)
    calls = {}
    for name, f in fns.items():
        f()
        start = now()
        f()
        calls[name] = max(1, int(budget / max(now() - start, 1e-7)))
    samples = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            f, n = fns[name], calls[name]
            start = now()
            for _ in range(n):
                f()
            samples[name].append((now() - start) / n)
    return samples


def ratio_summary(ours: list, theirs: list) -> dict:
    """Median times, and the median and interquartile range of the per-round ratios ours/theirs."""
    ratios = sorted(a / b for a, b in zip(ours, theirs))
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return {"ours": statistics.median(ours), "theirs": statistics.median(theirs),
            "ratio": statistics.median(ratios), "q1": q1, "q3": q3}


def _spread(r: dict) -> str:
    return f"{r['q1']:.2f}-{r['q3']:.2f}"


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

    samples = compare({"mlp_lib": ours, "torch": theirs, "matmul": matmuls}, repeats=repeats, clock=clock)
    r = ratio_summary(samples["mlp_lib"], samples["torch"])
    t_matmul = statistics.median(samples["matmul"])
    sum_dd = sum(a * b for a, b in zip(LAYERS[:-1], LAYERS[1:]))
    nominal = 3 * 2 * n * sum_dd                          # the FLOP count
    executed = nominal - 2 * n * LAYERS[0] * LAYERS[1]    # minus the first layer's dx, which nobody computes
    rate = executed / t_matmul
    return r | {
        "dtype": np.dtype(dtype).name, "batch": n, "matmul_gflops": rate / 1e9,
        "nominal_fraction": nominal / r["ours"] / rate, "executed_fraction": t_matmul / r["ours"],
        "torch_executed_fraction": t_matmul / r["theirs"],
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

    samples = compare({"mlp_lib": ours, "torch": theirs}, repeats=repeats, clock=clock)
    return ratio_summary(samples["mlp_lib"], samples["torch"]) | {"dtype": np.dtype(dtype).name}


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

    samples = compare({"mlp_lib": ours, "torch": theirs}, repeats=repeats, clock=clock)
    return ratio_summary(samples["mlp_lib"], samples["torch"]) | {"dtype": np.dtype(dtype).name}


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
    for r in range(repeats):
        for name, run_once in (("mlp_lib", ours), ("torch", theirs))[::1 if r % 2 == 0 else -1]:
            runs[name].append(run_once())
    return ratio_summary([t for t, _ in runs["mlp_lib"]], [t for t, _ in runs["torch"]]) | {
        "mlp_lib_acc": runs["mlp_lib"][0][1], "torch_acc": runs["torch"][0][1]}


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def run(*, threads: int, repeats: int, clock: str) -> None:
    print(f"mlp_lib vs torch {torch.__version__} (CPU), numpy {np.__version__}; threads={threads} for both "
          f"(OMP/OPENBLAS/MKL_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch.get_num_threads()="
          f"{torch.get_num_threads()}); {clock} clock; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{repeats} interleaved rounds per measurement: median times; ratio = median of the per-round ratios "
          "mlp_lib/torch,\nspread = their interquartile range")

    print("\n1. MLP 784-256-256-10 ReLU, one training step (forward, softmax-CE, backward, SGD update)")
    print("   matmul GF/s: np.matmul alone at the step's shapes (the machine's rate); '% of matmul':\n"
          "   the step's nominal FLOPs 3*2*N*sum(D_in*D_out) per second over that rate ('nominal'), and the\n"
          "   products' time over the step's time ('executed': both libraries skip the first layer's dx).")
    print(f"   {'dtype':8} {'N':>4} {'mlp_lib ms':>10} {'torch ms':>9} {'ratio':>6} {'spread':>9} {'matmul GF/s':>11} "
          f"{'nominal':>8} {'executed':>8} {'torch exec':>10}  {'<=' + str(TARGET_STEP_RATIO) + 'x':>6} "
          f"{'>=85%':>5}")
    for dtype in DTYPES:
        for n in BATCHES:
            r = mlp_step(dtype, n, repeats=repeats, clock=clock)
            print(f"   {r['dtype']:8} {n:4d} {r['ours'] * 1e3:10.3f} {r['theirs'] * 1e3:9.3f} {r['ratio']:6.2f} "
                  f"{_spread(r):>9} {r['matmul_gflops']:11.1f} {r['nominal_fraction']:8.0%} "
                  f"{r['executed_fraction']:8.0%} {r['torch_executed_fraction']:10.0%}  "
                  f"{_ok(r['ratio'] <= TARGET_STEP_RATIO):>6} "
                  f"{_ok(r['executed_fraction'] >= TARGET_MATMUL_FRACTION):>5}", flush=True)

    print("\n2. Batch norm forward + backward, training mode, N=512, D=256 (torch: F.batch_norm + autograd)")
    for dtype in DTYPES:
        r = batchnorm(dtype, repeats=repeats, clock=clock)
        print(f"   {r['dtype']:8} mlp_lib {r['ours'] * 1e6:8.1f} us  torch {r['theirs'] * 1e6:8.1f} us  "
              f"ratio {r['ratio']:5.2f}  spread {_spread(r)}  "
              f"(target <= {TARGET_BN_RATIO}: {_ok(r['ratio'] <= TARGET_BN_RATIO)})", flush=True)

    print("\n3. Dropout forward + backward, p=0.5, N=512, D=256")
    for dtype in DTYPES:
        r = dropout(dtype, repeats=repeats, clock=clock)
        print(f"   {r['dtype']:8} mlp_lib {r['ours'] * 1e6:8.1f} us  torch {r['theirs'] * 1e6:8.1f} us  "
              f"ratio {r['ratio']:5.2f}  spread {_spread(r)}", flush=True)

    rounds = max(5, repeats // 3)
    print(f"\n4. 50 epochs of Adam on digits (1257 training images), MLP 64-64-32-10 ReLU, batch 32, float64 "
          f"({rounds} rounds)")
    r = adam_digits(repeats=rounds, clock=clock)
    print(f"   mlp_lib {r['ours']:6.3f} s  torch {r['theirs']:6.3f} s  ratio {r['ratio']:5.2f}  spread {_spread(r)}   "
          f"test accuracy: mlp_lib {r['mlp_lib_acc']:.3f}, torch {r['torch_acc']:.3f}", flush=True)
