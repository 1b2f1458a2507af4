"""DNN claim check against training (optional: needs ``lazyledger.materialize.dnn`` and torch),
measured by ``python -m lazyledger.bench.dnn`` in a subprocess."""

from __future__ import annotations

from lazyledger.bench.external import importable, run_module, skip
from lazyledger.bench.model import Context, Params, Result, Scenario

METRICS = ("check_over_train", "check_ms", "train_ms")


def run(ctx: Context, p: Params) -> Result:
    """DNN claim check vs training, through lazyledger.bench.dnn when the DNN module exists."""
    r = Result("dnn", "DNN claim check vs training", p)
    for module in ("lazyledger.materialize.dnn", "torch"):
        if not importable(module):
            return skip(r, f"skipped: {module} is not importable", METRICS)
    args = ["--arch", p["arch"], *p["args"]]
    got, cmd, why = run_module(ctx, "lazyledger.bench.dnn", "dnn.json", args, p["timeout_s"])
    if got is None:
        return skip(r, why, METRICS)
    arch = got["archs"][p["arch"]]
    r.put("check_over_train", arch.get("check_over_train"), "x")
    r.put("check_ms", 1e3 * arch["check_s"] if "check_s" in arch else None, "ms")
    r.put("train_ms", 1e3 * arch["train_s"] if "train_s" in arch else None, "ms")
    r.notes.append(f"from {' '.join(cmd[1:])}; full output in dnn.json")
    return r


SCENARIO = Scenario(
    "dnn",
    "DNN claim check vs training (optional; needs lazyledger.materialize.dnn + torch)",
    run,
    {
        "tiny": {
            "arch": "mlp",
            "args": [
                "--epochs-mlp",
                "2",
                "--repeat",
                "1",
                "--train-repeat",
                "1",
                "--n-infer",
                "200",
            ],
            "timeout_s": 120,
        },
        "quick": {
            "arch": "mlp",
            "args": [
                "--epochs-mlp",
                "5",
                "--repeat",
                "3",
                "--train-repeat",
                "1",
                "--n-infer",
                "2000",
            ],
            "timeout_s": 180,
        },
        "full": {"arch": "mlp", "args": ["--repeat", "3", "--train-repeat", "1"], "timeout_s": 300},
    },
    METRICS,
    default_in=("full",),
)
