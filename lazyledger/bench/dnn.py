"""Benchmark DNN claims: cost of training vs cost of checking a claim, per verdict rule.

Rule 1 (``--arch mlp cnn``): scikit-learn's digits, training vs checking (goal: check/train <=
1/20), and integer-kernel inference throughput vs torch float32 on CPU.

Rule 2 (``--rule2``): int8 models from 10^4 to 10^8 parameters. Digits models are trained for
real (their accuracy is the verdict); the larger ones get synthetic weights and inputs, and their
training cost is timed over a few float training steps and scaled to a stated budget
(``--budget-epochs`` over ``--budget-samples``). Every backend present (Numba, torch on the CPU,
torch on CUDA when there is a GPU; the NumPy twin up to 10^6 parameters) checks the same claim;
their verdicts must agree. Memory: the blob size, the peak of NumPy allocations during a check
(tracemalloc), the process's peak RSS, and CUDA's peak allocation.

    python -m lazyledger.bench.dnn [--device cuda] [--json results.json] [--save-blobs DIR]
    python -m lazyledger.bench.dnn --arch --rule2 [--rule2-models q-mlp-1e8 ...] --json r2.json

(``bench/bench_dnn.py`` in a clone is the same; ``lazyledger bench --scenario dnn`` runs it.)

Not a test: numbers vary by machine; verdicts must not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Numba's OpenMP layer and torch's OpenMP runtime spin against each other on few cores (torch
# training ran 4x slower after a Numba check here); the bench runs one kernel at a time.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

from lazyledger.materialize import dnn, train
from lazyledger.materialize.qnet import NetSpec

SPECS = {
    "mlp": dnn.ModelSpec.mlp(64, (64,), 10, input_shift=4),
    "cnn": dnn.ModelSpec.cnn((1, 8, 8), (8, 8), 10, input_shift=4),
}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Median seconds of ``repeat`` calls, all timings, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_arch(name: str, args: argparse.Namespace, tr: bytes, va: bytes) -> dict[str, Any]:
    import torch

    spec = SPECS[name]
    epochs = args.epochs_mlp if name == "mlp" else args.epochs_cnn
    device = train.pick_device(args.device)
    # Warm-up (not timed): CUDA context / kernels, and the Numba kernel's cache load or compile.
    train.train(spec, tr, epochs=1, seed=args.seed, device=device)
    sync(device)
    t0 = time.perf_counter()
    dnn.check_claim(
        spec,
        dnn.encode_weights(spec, [np.zeros(s, np.float32) for _, s in spec.param_shapes()]),
        va,
        args.threshold,
    )
    check_cold = time.perf_counter() - t0

    def do_train() -> bytes:
        blob = train.train(spec, tr, epochs=epochs, seed=args.seed, device=device)
        sync(device)
        return blob

    t_train, train_times, blob = timed(do_train, args.train_repeat)
    t_check, check_times, verdict = timed(
        lambda: dnn.check_claim(spec, blob, va, args.threshold), args.repeat
    )
    again = [dnn.check_claim(spec, blob, va, args.threshold) for _ in range(3)]
    x_val, _ = dnn.load_dataset(spec, va)
    ref_equal = bool((dnn.infer(spec, blob, x_val) == dnn.infer_reference(spec, blob, x_val)).all())

    # Throughput on a larger batch: the validation set tiled to --n-infer samples.
    reps = -(-args.n_infer // x_val.shape[0])
    x_big = np.concatenate([x_val] * reps)[: args.n_infer]
    weights = dnn.decode_weights(spec, blob)
    assert isinstance(weights, list)  # a rule-1 spec decodes to float tensors
    qm = dnn.quantize(spec, weights)
    dnn.run_kernel(qm, x_big[:10])
    t_kernel, _, ids_kernel = timed(lambda: dnn.run_kernel(qm, x_big), args.repeat)
    model = train.build_torch_model(spec)
    with torch.no_grad():
        params = dict(model.named_parameters())
        for (pname, _), t in zip(spec.param_shapes(), weights, strict=True):
            params[pname].copy_(torch.from_numpy(t))
    threads_default = torch.get_num_threads()
    train.torch_predict(model, x_big[:10])
    t_torch, _, ids_torch = timed(lambda: train.torch_predict(model, x_big), args.repeat)
    torch.set_num_threads(1)
    try:
        t_torch1, _, _ = timed(lambda: train.torch_predict(model, x_big), args.repeat)
    finally:
        torch.set_num_threads(threads_default)
    agree = int((ids_kernel == ids_torch).sum())

    if args.save_blobs:
        Path(args.save_blobs).mkdir(parents=True, exist_ok=True)
        Path(args.save_blobs, f"{name}_weights.bin").write_bytes(blob)
    n = x_big.shape[0]
    return {
        "spec": spec.to_bytes().hex(),
        "params": spec.n_params(),
        "train_device": device,
        "epochs": epochs,
        "train_s": t_train,
        "train_s_all": train_times,
        "check_s": t_check,
        "check_s_all": check_times,
        "check_cold_s": check_cold,
        "check_over_train": t_check / t_train,
        "goal_met": t_check / t_train <= 1 / 20,
        "verdict": {
            "passed": verdict.passed,
            "correct": verdict.correct,
            "total": verdict.total,
            "reason": verdict.reason,
        },
        "verdict_repeatable": all(v == verdict for v in again),
        "kernel_equals_reference": ref_equal,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "infer_samples": n,
        "kernel_samples_per_s": n / t_kernel,
        "torch_cpu_samples_per_s": n / t_torch,
        "torch_cpu_threads": threads_default,
        "torch_cpu_1thread_samples_per_s": n / t_torch1,
        "kernel_over_torch": (n / t_kernel) / (n / t_torch),
        "kernel_over_torch_1thread": (n / t_kernel) / (n / t_torch1),
        "kernel_torch_agreement_permille": agree * 1000 // n,
    }


# ---------------------------------------------------------------------------------------------
# Rule 2

RULE2: dict[str, tuple[NetSpec, str, int]] = {
    # name: (spec, data, training epochs for digits models)
    "q-mlp-digits": (NetSpec.mlp(64, (128,), 10), "digits", 30),
    "q-mlp2-digits": (NetSpec.mlp(64, (256, 256), 10), "digits", 30),
    "q-res-digits": (NetSpec.resnet((1, 8, 8), [(16, 1), (32, 1)], 10), "digits", 10),
    "q-mlp-1e6": (NetSpec.mlp(3072, (256, 256), 10), "synthetic", 0),
    "q-res-cifar": (NetSpec.resnet((3, 32, 32), [(32, 1), (64, 1), (128, 1)], 10), "synthetic", 0),
    "q-mlp-1e7": (NetSpec.mlp(3072, (2048, 2048), 10), "synthetic", 0),
    "q-mlp-1e8": (NetSpec.mlp(3072, (8192, 8192, 2048), 10), "synthetic", 0),
}


def maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rule2_backends(params: int) -> list[str]:
    import torch

    out = ["numba", "torch-cpu"]
    if torch.cuda.is_available():
        out.append("torch-cuda")
    if params <= 1_000_000:
        out.append("numpy")
    return out


def synthetic_train_s(spec: NetSpec, args: argparse.Namespace, device: str) -> dict[str, Any]:
    """Seconds per training sample of the float model (Adam, batch ``--train-batch``), timed
    over a few steps after a warm-up, and the stated budget's total."""
    import torch

    from lazyledger.materialize.qnet.export import build_float_model

    torch.manual_seed(0)
    model = build_float_model(spec, input_scale=1 / 256).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    bs = args.train_batch
    x = torch.randint(0, 256, (bs, *spec.input_shape), dtype=torch.float32, device=device)
    y = torch.randint(0, spec.n_classes, (bs,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]
        opt.step()

    step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(args.train_steps):
        step()
    sync(device)
    per_sample = (time.perf_counter() - t0) / (args.train_steps * bs)
    budget = args.budget_epochs * args.budget_samples
    return {
        "train_device": device,
        "train_s_per_sample": per_sample,
        "train_budget_samples": budget,
        "train_s": per_sample * budget,
        "train_measured_steps": args.train_steps,
        "train_batch": bs,
    }


def bench_rule2(name: str, args: argparse.Namespace, tr: bytes, va: bytes) -> dict[str, Any]:
    import tracemalloc

    import torch

    from lazyledger.materialize.qnet.export import synthetic_weights

    spec, data, epochs = RULE2[name]
    device = train.pick_device(args.device)
    r: dict[str, Any] = {
        "spec": spec.to_bytes().hex(),
        "rule": spec.rule,
        "params": spec.n_params(),
        "macs_per_sample": spec.macs(),
        "data": data,
    }
    if data == "digits":
        train.train(spec, tr, epochs=1, seed=args.seed, device=device)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        blob = train.train(spec, tr, epochs=epochs, seed=args.seed, device=device)
        sync(device)
        r.update(train_device=device, epochs=epochs, train_s=time.perf_counter() - t0)
        val = va
    else:  # its training cost is timed after the checks, so peak RSS shows the checks first
        t0 = time.perf_counter()
        blob = synthetic_weights(spec, seed=args.seed)
        r["synthetic_weights_s"] = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed)
        x = rng.integers(0, 256, size=(args.n_check, *spec.input_shape))
        val = dnn.encode_dataset(x, rng.integers(0, spec.n_classes, size=args.n_check))
    r["blob_bytes"] = len(blob)
    r["maxrss_mb_before_checks"] = maxrss_mb()
    x_small, y_small = dnn.decode_dataset(val)
    warm = dnn.encode_dataset(x_small[:32], y_small[:32])
    backends: dict[str, Any] = {}
    for b in rule2_backends(spec.n_params()):
        t0 = time.perf_counter()
        dnn.check_claim(spec, blob, warm, args.threshold, backend=b)  # compile, probe, CUDA init
        cold = time.perf_counter() - t0
        if b == "torch-cuda":
            torch.cuda.reset_peak_memory_stats()
        repeat = 1 if spec.n_params() > 10_000_000 else args.repeat

        def check(b: str = b) -> Any:
            return dnn.check_claim(spec, blob, val, args.threshold, backend=b)

        t_check, times, verdict = timed(check, repeat)
        backends[b] = {
            "check_s": t_check,
            "check_s_all": times,
            "warmup_s": cold,
            "verdict": [verdict.passed, verdict.correct, verdict.total],
            "maxrss_mb": maxrss_mb(),
        }
        if b == "torch-cuda":
            backends[b]["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
    # NumPy allocations of one check (the fastest CPU backend), the blob excluded
    cpu = min(
        (b for b in backends if b in ("numba", "torch-cpu")), key=lambda b: backends[b]["check_s"]
    )
    tracemalloc.start()
    dnn.check_claim(spec, blob, val, args.threshold, backend=cpu)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    r["check_numpy_peak_bytes"] = peak
    r["check_numpy_peak_backend"] = cpu
    r["backends"] = backends
    if data != "digits":
        r.update(synthetic_train_s(spec, args, device))
    verdicts = {tuple(v["verdict"]) for v in backends.values()}
    r["verdicts_identical"] = len(verdicts) == 1
    r["verdict"] = backends["numba"]["verdict"]
    best = min(backends, key=lambda b: backends[b]["check_s"])
    r["check_backend"] = best
    r["check_s"] = backends[best]["check_s"]
    r["check_s_cpu"] = min(backends[b]["check_s"] for b in backends if b != "torch-cuda")
    r["check_over_train"] = r["check_s"] / r["train_s"]
    r["check_over_train_cpu"] = r["check_s_cpu"] / r["train_s"]
    r["goal_met"] = r["check_over_train"] <= 1 / 100
    r["check_samples"] = int(x_small.shape[0])
    return r


def print_rule2(name: str, r: dict[str, Any]) -> None:
    per = "  ".join(f"{b}={v['check_s'] * 1e3:.1f}ms" for b, v in sorted(r["backends"].items()))
    v = r["verdict"]
    rss = "/".join(
        f"{r['backends'][b]['maxrss_mb']:.0f}" for b in ("numba", "torch-cpu") if b in r["backends"]
    )
    print(
        f"[{name}] {r['params']:,} params, {r['check_samples']} samples: check {per}; "
        f"train({r['train_device']})={r['train_s']:.2f}s "
        f"check/train=1/{1 / r['check_over_train']:.0f} (goal <=1/100: {r['goal_met']}); "
        f"verdict {v[1]}/{v[2]} identical={r['verdicts_identical']}; blob "
        f"{r['blob_bytes'] / 2**20:.1f} MiB, numpy peak {r['check_numpy_peak_bytes'] / 2**20:.1f} "
        f"MiB, maxrss {r['maxrss_mb_before_checks']:.0f} -> {rss} MiB (numba/torch-cpu)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lazyledger.bench.dnn", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--device", default=None, help="torch device for training (default: auto)")
    ap.add_argument("--json", default=None, help="write results to this path")
    ap.add_argument("--save-blobs", default=None, help="write the trained weights blobs here")
    ap.add_argument(
        "--check-blobs", default=None, help="also check {arch}_weights.bin blobs saved elsewhere"
    )
    ap.add_argument("--arch", nargs="*", default=list(SPECS), choices=list(SPECS))
    ap.add_argument("--epochs-mlp", type=int, default=30)
    ap.add_argument("--epochs-cnn", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=int, default=900, help="permille")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--train-repeat", type=int, default=3)
    ap.add_argument("--n-infer", type=int, default=20000)
    ap.add_argument("--rule2", action="store_true", help="also benchmark rule-2 (int8) models")
    ap.add_argument("--rule2-models", nargs="*", default=list(RULE2), choices=list(RULE2))
    ap.add_argument("--n-check", type=int, default=1000, help="synthetic validation samples")
    ap.add_argument("--train-steps", type=int, default=3, help="timed float steps (synthetic)")
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--budget-epochs", type=int, default=10, help="synthetic training budget")
    ap.add_argument("--budget-samples", type=int, default=50_000)
    args = ap.parse_args(argv)

    import numba
    import torch

    tr, va = dnn.digits_blobs()
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "machine": platform.machine(),
    }
    results: dict[str, Any] = {"env": env, "args": vars(args), "archs": {}}
    print(f"env: {env}")
    for name in args.arch:
        r = bench_arch(name, args, tr, va)
        results["archs"][name] = r
        v = r["verdict"]
        print(
            f"[{name}] params={r['params']} train({r['train_device']}, {r['epochs']} ep)="
            f"{r['train_s'] * 1e3:.1f} ms  check={r['check_s'] * 1e3:.2f} ms "
            f"(cold {r['check_cold_s'] * 1e3:.1f} ms)  check/train={r['check_over_train']:.4f} "
            f"(1/{1 / r['check_over_train']:.0f}, goal<=1/20: {r['goal_met']})"
        )
        print(
            f"[{name}] verdict passed={v['passed']} {v['correct']}/{v['total']}  repeatable="
            f"{r['verdict_repeatable']}  kernel==reference={r['kernel_equals_reference']}  "
            f"sha256={r['weights_sha256'][:16]}"
        )
        print(
            f"[{name}] inference on {r['infer_samples']} samples: int kernel "
            f"{r['kernel_samples_per_s']:.0f}/s, torch f32 CPU ({r['torch_cpu_threads']} thr) "
            f"{r['torch_cpu_samples_per_s']:.0f}/s (kernel/torch={r['kernel_over_torch']:.3f}), "
            f"torch 1 thr {r['torch_cpu_1thread_samples_per_s']:.0f}/s "
            f"(kernel/torch={r['kernel_over_torch_1thread']:.3f}); "
            f"argmax agreement {r['kernel_torch_agreement_permille']}‰"
        )
    if args.rule2:
        results["rule2"] = {}
        for name in args.rule2_models:
            r2 = bench_rule2(name, args, tr, va)
            results["rule2"][name] = r2
            print_rule2(name, r2)
    if args.check_blobs:
        results["checked_blobs"] = {}
        for name in args.arch:
            path = Path(args.check_blobs, f"{name}_weights.bin")
            if path.exists():
                blob = path.read_bytes()
                v = dnn.check_claim(SPECS[name], blob, va, args.threshold)
                results["checked_blobs"][name] = {
                    "weights_sha256": hashlib.sha256(blob).hexdigest(),
                    "verdict": [v.passed, v.correct, v.total, v.reason],
                }
                print(f"[{name}] saved blob {path}: {v}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
