"""The provider side of rule 2: a float torch model shaped like a :class:`NetSpec`, its training,
and post-training quantisation into a rule-2 weights blob (batch norm folded into convolutions,
per-output-channel int8 weights, activation scales calibrated on training data).

None of this is part of the verdict: the ledger checks the blob it is given, however it was made,
so the floats here (and torch's non-deterministic training) are fine. torch is imported inside
the functions, never at module import.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from lazyledger.materialize.dnn import InvalidModel, load_dataset
from lazyledger.materialize.qnet.spec import BIAS_MAX, MULT_MAX, Q_MAX, SHIFT_MAX, NetSpec
from lazyledger.materialize.qnet.weights import blob_parts, encode_weights

if TYPE_CHECKING:
    import torch

__all__ = [
    "build_float_model",
    "fixed_point",
    "quantize_model",
    "synthetic_weights",
    "train_net",
]


def fixed_point(m: float) -> tuple[int, int]:
    """``(M, s)`` with ``M / 2**s`` closest to ``m >= 0``, ``M <= MULT_MAX``, ``s <= SHIFT_MAX``."""
    if not m > 0 or not math.isfinite(m):
        return 0, 0
    f, e = math.frexp(m)  # m = f * 2**e, f in [0.5, 1)
    mult, shift = round(f * 2**31), 31 - e
    if mult > MULT_MAX:
        mult, shift = mult // 2, shift - 1
    if shift > SHIFT_MAX:
        return round(m * 2.0**SHIFT_MAX), SHIFT_MAX
    if shift < 0:
        return MULT_MAX, 0
    return mult, shift


def build_float_model(
    spec: NetSpec, *, input_scale: float = 1.0, batch_norm: bool = True
) -> torch.nn.Module:
    """A float model computing what ``spec`` computes (before quantisation); convolutions carry
    a batch norm when ``batch_norm`` (folded away by :func:`quantize_model`)."""
    import torch
    from torch import nn

    class FloatNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_scale = input_scale
            self.mods = nn.ModuleList()
            for s in spec.steps:
                ly = s.layer
                mod: nn.Module
                if ly.kind == "dense":
                    mod = nn.Linear(s.fan_in, ly.width)
                elif ly.kind == "conv":
                    conv = nn.Conv2d(s.in_shape[0], ly.width, ly.kernel, ly.stride, ly.kernel // 2)
                    mod = nn.Sequential(conv, nn.BatchNorm2d(ly.width)) if batch_norm else conv
                elif ly.kind == "maxpool":
                    mod = nn.MaxPool2d(ly.kernel, ly.stride)
                else:
                    mod = nn.Identity()
                self.mods.append(mod)

        def forward(self, x: torch.Tensor, trace: list[torch.Tensor] | None = None) -> Any:
            """Logits; with ``trace``, also every tensor that rule 2 requantises, in blob order."""
            n = x.shape[0]
            a = x.reshape(n, *spec.tensor_shape) * self.input_scale
            if trace is not None:
                trace.append(a)
            saved: list[torch.Tensor] = []
            for s, mod in zip(spec.steps, self.mods, strict=True):
                ly = s.layer
                if ly.kind == "dense":
                    a = mod(a.flatten(1))
                    if s.last:
                        return a
                    a = a.reshape(n, -1, 1, 1)
                elif ly.kind in ("conv", "maxpool"):
                    a = mod(a)
                elif ly.kind == "avgpool":
                    a = a.mean(dim=(2, 3), keepdim=True)
                elif ly.kind == "save":
                    saved.append(a)
                    continue
                else:
                    a = a + saved.pop()
                if ly.relu:
                    a = torch.relu(a)
                if trace is not None and ly.kind != "maxpool":
                    trace.append(a)
            raise AssertionError("a valid spec ends with a dense layer")

    return FloatNet()


def _np(t: Any) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = t.detach().double().cpu().numpy()
    return out


def _folded(mod: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Weight and bias of a linear or conv module, with a following batch norm folded in."""
    from torch import nn

    if isinstance(mod, nn.Sequential):
        conv: Any = mod[0]
        bn: Any = mod[1]
        g = _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)
        w = _np(conv.weight) * g.reshape(-1, 1, 1, 1)
        return w, (_np(conv.bias) - _np(bn.running_mean)) * g + _np(bn.bias)
    return _np(mod.weight), _np(mod.bias)


def _quant_weights(
    w: npt.NDArray[np.float64], per_channel: bool
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Symmetric int8 weights and their scales (per output channel, or one for the tensor)."""
    flat = w.reshape(w.shape[0], -1)
    top = np.abs(flat).max(axis=1) if per_channel else np.full(w.shape[0], np.abs(flat).max())
    scale = np.where(top > 0, top / Q_MAX, 1.0)
    q = np.clip(np.rint(flat / scale[:, None]), -Q_MAX, Q_MAX).astype(np.int64)
    return q.reshape(w.shape), scale


def quantize_model(spec: NetSpec, model: torch.nn.Module, calib_x: npt.ArrayLike) -> bytes:
    """A rule-2 weights blob for a float model from :func:`build_float_model`, with activation
    scales from the largest magnitudes the model reaches on ``calib_x``."""
    import torch

    model = model.to("cpu").eval()
    trace: list[torch.Tensor] = []
    with torch.inference_mode():
        model(torch.from_numpy(np.asarray(calib_x, dtype=np.float32)), trace)
    tops = [float(t.abs().max()) for t in trace]
    scales = [t / Q_MAX if t > 0 else 1.0 for t in tops]
    net: Any = model
    mods: Any = net.mods
    arrays: list[npt.ArrayLike] = []
    s_x = scales[0]
    m, sh = fixed_point(float(net.input_scale) / s_x)
    c_in = spec.input_channels
    arrays += [np.full(c_in, m), np.full(c_in, sh)]
    cur, ti = s_x, 1  # scale of the current tensor; next trace entry
    saved: list[float] = []
    for s, mod in zip(spec.steps, mods, strict=True):
        k = s.layer.kind
        if k in ("dense", "conv"):
            w, b = _folded(mod)
            # the last layer's accumulators are compared as they are: one scale for all classes
            qw, sw = _quant_weights(w, per_channel=not s.last)
            acc_scale = cur * sw
            qb = np.clip(np.rint(b / acc_scale), -BIAS_MAX, BIAS_MAX).astype(np.int64)
            arrays += [qw, qb]
            if not s.last:
                out = scales[ti]
                pairs = [fixed_point(float(v / out)) for v in acc_scale]
                arrays += [[p[0] for p in pairs], [p[1] for p in pairs]]
                cur, ti = out, ti + 1
        elif k == "avgpool":
            out = scales[ti]
            plane = s.in_shape[1] * s.in_shape[2]
            mult, shift = fixed_point(cur / (plane * out))
            arrays += [np.full(s.out_shape[0], mult), np.full(s.out_shape[0], shift)]
            cur, ti = out, ti + 1
        elif k == "save":
            saved.append(cur)
        elif k == "add":
            out, other = scales[ti], saved.pop()
            _, shift = fixed_point(max(cur, other) / out)  # one shift, fit for the larger
            ch = s.out_shape[0]
            for ratio in (cur / out, other / out):
                arrays.append(np.full(ch, min(round(ratio * 2.0**shift), MULT_MAX)))
            arrays.append(np.full(ch, shift))
            cur, ti = out, ti + 1
    return encode_weights(spec, arrays)


def train_net(
    spec: NetSpec,
    train_blob: bytes,
    *,
    epochs: int,
    seed: int,
    device: str | None = None,
    lr: float = 1e-2,
    batch_size: int = 64,
    calib_samples: int = 2048,
) -> bytes:
    """Train a float model for ``spec`` (Adam, cross-entropy) and return its rule-2 blob."""
    import torch
    from torch import nn

    if epochs < 0 or batch_size < 1:
        raise InvalidModel(f"bad training settings: epochs={epochs}, batch_size={batch_size}")
    x, y = load_dataset(spec, train_blob)
    top = float(np.abs(x).max()) or 1.0
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_float_model(spec, input_scale=1.0 / top)
    model.to(dev)
    xt = torch.from_numpy(x.astype(np.float32)).to(dev)
    yt = torch.from_numpy(y).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(xt.shape[0], generator=gen).to(dev)
        for start in range(0, xt.shape[0], batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    return quantize_model(spec, model, x[:calib_samples])


def _synthetic_scale(spec: NetSpec, layer: int) -> float:
    """A requantisation factor that keeps random int8 activations spread over the int8 range."""
    if layer < 0:
        return 1.0 / 256  # int16 inputs
    s = spec.steps[layer]
    if s.fan_in:  # a sum of fan_in products of uniform int8 values spreads ~ 73 * 40 * sqrt(n)
        return 1.0 / (73.0 * math.sqrt(s.fan_in))
    if s.layer.kind == "avgpool":
        return 1.0 / (s.in_shape[1] * s.in_shape[2])
    return 0.7  # add


def synthetic_weights(spec: NetSpec, seed: int = 0) -> bytes:
    """A weights blob of random int8 weights whose multipliers keep activations in range
    (for benchmarks and tests of large models; accuracy is chance)."""
    rng = np.random.default_rng(seed)
    arrays: list[npt.ArrayLike] = []
    for p in blob_parts(spec):
        if p.kind == "weight":
            arrays.append(rng.integers(-Q_MAX, Q_MAX + 1, size=p.shape, dtype=np.int8))
        elif p.kind == "bias":
            arrays.append(rng.integers(-(1 << 12), 1 << 12, size=p.shape))
        else:
            mult, shift = fixed_point(_synthetic_scale(spec, p.layer))
            arrays.append(np.full(p.shape, mult if p.kind == "mult" else shift))
    return encode_weights(spec, arrays)
