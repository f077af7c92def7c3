#!/usr/bin/env python3
"""PyTorch on the CPU, step by step: the peer of ulc's CPU target in bench/cpu/bench.mjs, which runs it beside
ulc and takes turns with it step by step. The models are bench/gpu/peer.py's (models/ul_tiny.ul and
models/ul_small.ul in PyTorch, layer for layer).

    python3 bench/cpu/peer.py --threads 2 --model ul_tiny --batch 64      # a fit step per request
    python3 bench/cpu/peer.py --threads 2 --conv 8,64,32,32,32,3,3,1,1 --repeats 10   # conv2d and both gradients
    python3 bench/cpu/peer.py --threads 2 --sgemm 2048                    # the machine's float32 ceiling
    python3 bench/cpu/peer.py --threads 2 --model ul_small --ops          # the ops one step's forward and backward run

The first line printed is a JSON object describing the peer (parameter count, versions, the BLAS library
that is loaded, threads). Then each line read on stdin is a request: `step` runs one step and prints
{"ms": wall milliseconds} (per step, of --repeats back to back); `quit` prints {"peak_rss": bytes} and exits. --sgemm prints one object and exits.
"""

import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
from peer import MODELS, fit_loss  # noqa: E402  (bench/gpu/peer.py)


def loaded_blas():
    """The BLAS libraries this process has mapped (torch links the generic libblas.so.3: which one is it?)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.split()[-1]}
    return sorted(os.path.realpath(p) for p in paths)


def fit_step(model_name, batch):
    """One fit step of the model (forward, the ELBO terms, backward, Adam), and its parameter count."""
    torch.manual_seed(0)
    cls, lr = MODELS[model_name]
    model = cls()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    x = torch.rand(batch, *cls.image_shape) * 2 - 1

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss, _ = fit_loss(model, x)
        loss.backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


# Ops that move no data (views, metadata, allocation): on a GPU they launch no kernel.
NO_KERNEL = {"aten::view", "aten::_unsafe_view", "aten::reshape", "aten::t", "aten::transpose", "aten::permute", "aten::expand",
             "aten::as_strided", "aten::as_strided_", "aten::unsqueeze", "aten::squeeze", "aten::slice", "aten::select", "aten::detach", "aten::alias",
             "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::resolve_conj", "aten::resolve_neg", "aten::lift_fresh",
             "aten::result_type", "aten::to", "aten::_to_copy", "aten::contiguous", "aten::size", "aten::stride", "aten::item",
             "aten::_local_scalar_dense", "aten::is_nonzero", "aten::broadcast_tensors", "aten::expand_as", "aten::view_as"}


def count_ops(model_name, batch):
    """The ops one fit step's forward and backward run, as eager PyTorch dispatches them: the innermost aten ops
    that compute (each at least one kernel on a GPU), not views. The optimizer is left out: on a GPU PyTorch's
    Adam updates every parameter in a few multi-tensor kernels."""
    torch.manual_seed(0)
    cls, _ = MODELS[model_name]
    model = cls()
    x = torch.rand(batch, *cls.image_shape) * 2 - 1
    fit_loss(model, x)[0].backward()  # warm-up
    model.zero_grad(set_to_none=True)
    with torch.autograd.profiler.profile() as prof:
        fit_loss(model, x)[0].backward()
    ops = {}
    for e in prof.function_events:
        computes = e.name.startswith("aten::") and e.name not in NO_KERNEL
        if computes and not any(c.name.startswith("aten::") and c.name not in NO_KERNEL for c in e.cpu_children):
            ops[e.name] = ops.get(e.name, 0) + 1
    return {"ops": sum(ops.values()), "by_name": dict(sorted(ops.items(), key=lambda kv: -kv[1])[:8])}


def conv_step(spec):
    """conv2d forward and both gradients at one shape: N,C,H,W,O,KH,KW,stride,padding."""
    n, c, h, w, o, kh, kw, stride, padding = (int(v) for v in spec.split(","))
    x = torch.rand(n, c, h, w, requires_grad=True)
    weight = torch.rand(o, c, kh, kw, requires_grad=True)
    dy = torch.rand_like(F.conv2d(x, weight, stride=stride, padding=padding))

    def step():
        x.grad = weight.grad = None
        F.conv2d(x, weight, stride=stride, padding=padding).backward(dy)

    return step, 0


def sgemm_gflops(size, repeats=10, rounds=4):
    """The best of a few rounds: a ceiling is the best the machine does."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", choices=sorted(MODELS))
    what.add_argument("--conv")
    what.add_argument("--sgemm", type=int)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1, help="steps per request, timed together")
    parser.add_argument("--ops", action="store_true", help="with --model: print the ops a step dispatches, and exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.ops:
        print(json.dumps(count_ops(args.model, args.batch)), flush=True)
        return
    about = {"torch": torch.__version__, "blas": loaded_blas(), "threads": torch.get_num_threads()}
    if args.sgemm:
        print(json.dumps({**about, "gflops": sgemm_gflops(args.sgemm)}), flush=True)
        return
    step, params = fit_step(args.model, args.batch) if args.model else conv_step(args.conv)
    step()  # warm-up: allocations, thread pools
    print(json.dumps({**about, "params": params}), flush=True)
    for request in sys.stdin:
        if request.strip() == "quit":
            break
        start = time.perf_counter()
        for _ in range(args.repeats):
            step()
        print(json.dumps({"ms": (time.perf_counter() - start) * 1e3 / args.repeats}), flush=True)
    print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)


if __name__ == "__main__":
    main()
