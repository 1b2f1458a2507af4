"""Benchmark DNN claims on scikit-learn's digits: cost of training vs cost of checking a claim
(goal: check/train <= 1/20), and integer-kernel inference throughput vs torch float32 on CPU.

    python -m lazyledger.bench.dnn [--device cuda] [--json results.json] [--save-blobs DIR]

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

from lazyledger.materialize import dnn, train

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
    qm = dnn.quantize(spec, dnn.decode_weights(spec, blob))
    dnn.run_kernel(qm, x_big[:10])
    t_kernel, _, ids_kernel = timed(lambda: dnn.run_kernel(qm, x_big), args.repeat)
    model = train.build_torch_model(spec)
    with torch.no_grad():
        params = dict(model.named_parameters())
        for (pname, _), t in zip(spec.param_shapes(), dnn.decode_weights(spec, blob), strict=True):
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
