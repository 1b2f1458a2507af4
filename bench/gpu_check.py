"""One-shot GPU check for DNN verdict rule 2 (issue 14): run from the repository root on a machine
with a CUDA GPU and torch installed (numba optional), in well under 4 minutes on an H100:

    python3 bench/gpu_check.py [--out gpu_check.json]

(a) torch on CUDA (``torch._int_mm``) against the NumPy twin and the Numba kernel: logits must be
    identical, bit for bit, on random and adversarial networks, at the int32 bound, on a ResNet.
(b) a >= 100M-parameter MLP claim checked on 1,000 samples on CUDA, weight decode and upload
    included (and again from a file), on the CPU with torch and with Numba when that is quick,
    the logits of all of them compared; plus the float model's training step on CUDA, for the
    check/train ratio.

Prints one JSON summary (also written to ``--out``, or ``$OUT/gpu_check.json`` when ``$OUT`` is
set). Needs only numpy, attrs and torch from the environment: when the ``lazyledger`` package's
own imports (lmdb, blake3, ...) are missing, its DNN modules are loaded without them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
T0 = time.perf_counter()
# Numba's OpenMP threads and torch's spin against each other; run one at a time.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")


def elapsed() -> float:
    return round(time.perf_counter() - T0, 2)


def load_lazyledger() -> None:
    """Import lazyledger, or only its DNN modules when the package's other needs are missing."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests" / "materialize" / "qnet"))
    try:
        import lazyledger  # noqa: F401
    except Exception:  # lmdb, blake3, nacl, zstandard missing, or another version of them
        for name in [m for m in sys.modules if m == "lazyledger" or m.startswith("lazyledger.")]:
            del sys.modules[name]
        pkg = types.ModuleType("lazyledger")
        pkg.__path__ = [str(ROOT / "lazyledger")]
        sys.modules["lazyledger"] = pkg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--budget-s", type=float, default=200.0, help="skip optional parts after")
    args = ap.parse_args()
    out_path = args.out or (
        os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None
    )
    summary: dict[str, Any] = {"python": platform.python_version(), "errors": []}

    def emit() -> int:
        summary["elapsed_s"] = elapsed()
        text = json.dumps(summary, indent=1, sort_keys=True, default=str)
        print(text, flush=True)
        if out_path:
            Path(out_path).write_text(text + "\n")
        return 0

    try:
        import torch
    except ImportError as e:
        summary["torch"] = None
        summary["errors"].append(f"no torch: {e}")
        return emit()
    summary["torch"] = torch.__version__
    summary["cuda"] = torch.cuda.is_available()
    if not torch.cuda.is_available():
        summary["errors"].append("no CUDA device: nothing to check here")
        return emit()
    summary["device"] = torch.cuda.get_device_name(0)
    torch.zeros(1, device="cuda")  # CUDA context
    summary["cuda_init_s"] = elapsed()

    import numpy as np

    summary["numpy"] = np.__version__
    load_lazyledger()
    from lazyledger.materialize import dnn, qnet
    from lazyledger.materialize.qnet import Layer, NetSpec
    from lazyledger.materialize.qnet.export import build_float_model, synthetic_weights
    from lazyledger.materialize.qnet.torch_backend import int_mm_exact
    from lazyledger.materialize.qnet.weights import decode_weights, encode_weights

    try:
        import numba

        summary["numba"] = numba.__version__
        cpu_backends = ["numba", "torch-cpu"]
    except ImportError:
        summary["numba"] = None
        cpu_backends = ["torch-cpu"]
    summary["int_mm_exact"] = {"cuda": int_mm_exact("cuda"), "cpu": int_mm_exact("cpu")}
    summary["auto_backend"] = qnet.pick_backend()

    # (a) ------------------------------------------------------------------------------------
    cases: list[dict[str, Any]] = []

    def compare(name: str, net: Any, x: Any, backends: list[str]) -> None:
        got: dict[str, Any] = {}
        times: dict[str, float] = {}
        for b in backends:
            t = time.perf_counter()
            got[b] = qnet.logits(net, x, b)
            times[b] = round(time.perf_counter() - t, 4)
        ref = got["torch-cuda"]
        same = {b: bool(np.array_equal(ref, v)) for b, v in got.items()}
        cases.append({"case": name, "samples": len(x), "identical": same, "s": times})

    try:
        from qnet_cases import random_blob, random_inputs, random_spec

        for seed in range(12):
            rng = np.random.default_rng(seed)
            spec = random_spec(rng)
            net = decode_weights(spec, random_blob(spec, seed, adversarial=seed % 2 == 1))
            x = random_inputs(spec, rng, int(rng.integers(1, 90)))
            compare(f"random-{seed}", net, x, ["numpy", *cpu_backends, "torch-cuda"])
        # the int32 bound: fan-in 2**16 of 127 * 127 plus a bias of 2**30
        spec = NetSpec((16, 64, 64), (Layer.dense(2, relu=False),), 2)
        w = np.full((2, 65536), 127)
        w[1] = -127
        arrays = [np.ones(16, int), np.zeros(16, int), w, np.array([2**30, -(2**30)])]
        net = decode_weights(spec, encode_weights(spec, arrays))
        x = np.full((40, 16, 64, 64), 32767)
        compare("acc-bound", net, x, ["numpy", *cpu_backends, "torch-cuda"])
        bound = qnet.logits(net, x[:1], "torch-cuda")[0].tolist()
        cases[-1]["logits"] = bound
        spec = NetSpec.resnet((3, 32, 32), [(32, 1), (64, 1), (128, 1)], 10)
        net = decode_weights(spec, synthetic_weights(spec, 1))
        x = np.random.default_rng(1).integers(0, 256, (200, 3, 32, 32))
        compare("resnet-cifar", net, x, [*cpu_backends, "torch-cuda"])
    except Exception:
        summary["errors"].append(traceback.format_exc(limit=4))
    summary["conformance"] = cases
    summary["conformance_all_identical"] = bool(cases) and all(
        all(c["identical"].values()) for c in cases
    )
    summary["conformance_done_s"] = elapsed()

    # (b) ------------------------------------------------------------------------------------
    big: dict[str, Any] = {}
    summary["big_mlp"] = big
    try:
        spec = NetSpec.mlp(3072, (8192, 8192, 2048), 10)
        big["params"] = spec.n_params()
        t = time.perf_counter()
        blob = synthetic_weights(spec, seed=0)
        big["make_blob_s"] = round(time.perf_counter() - t, 2)
        big["blob_bytes"] = len(blob)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (args.samples, 3072))
        y = rng.integers(0, 10, args.samples)
        val = dnn.encode_dataset(x, y)
        small = dnn.encode_dataset(x[:32], y[:32])
        dnn.check_claim(spec, blob, small, 0, backend="torch-cuda")  # kernels, cuBLAS handles
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            v = dnn.check_claim(spec, blob, val, 0, backend="torch-cuda")
            runs.append(round(time.perf_counter() - t, 4))
        big["cuda_check_s"] = runs  # decode + weight upload + 1,000 samples + verdict, each
        big["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
        big["verdict"] = [v.passed, v.correct, v.total]
        path = Path("/tmp/lazyledger_gpu_check_weights.bin")
        path.write_bytes(blob)
        t = time.perf_counter()
        vf = dnn.check_claim(spec, path.read_bytes(), val, 0, backend="torch-cuda")
        big["cuda_check_from_file_s"] = round(time.perf_counter() - t, 4)
        big["file_verdict_same"] = vf == v
        path.unlink()
        net = decode_weights(spec, blob)
        ref = qnet.logits(net, x, "torch-cuda")
        big["cpu"] = {}
        for b in cpu_backends:
            if elapsed() > args.budget_s:
                big["cpu"][b] = "skipped: time budget"
                continue
            t = time.perf_counter()
            got = qnet.logits(net, x, b)
            big["cpu"][b] = {
                "logits_s": round(time.perf_counter() - t, 3),
                "identical_to_cuda": bool(np.array_equal(got, ref)),
                "threads": torch.get_num_threads() if b == "torch-cpu" else numba.get_num_threads(),
            }
        if elapsed() < args.budget_s:
            model = build_float_model(spec, input_scale=1 / 256).cuda()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            xb = torch.randint(0, 256, (128, 3072), dtype=torch.float32, device="cuda")
            yb = torch.randint(0, 10, (128,), device="cuda")
            for i in range(6):
                if i == 1:
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
            torch.cuda.synchronize()
            per_sample = (time.perf_counter() - t) / (5 * 128)
            budget = 10 * 50_000
            big["cuda_train_s_per_sample"] = per_sample
            big["cuda_train_budget_s"] = round(per_sample * budget, 2)
            big["check_over_train"] = min(runs) / (per_sample * budget)
            big["train_budget"] = "10 epochs x 50,000 samples, Adam, batch 128, fp32"
    except Exception:
        summary["errors"].append(traceback.format_exc(limit=4))
    return emit()


if __name__ == "__main__":
    raise SystemExit(main())
