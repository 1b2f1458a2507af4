"""Rule 2 with torch integer matrix products: ``torch._int_mm`` (int8 x int8 -> int32; cuBLAS on
CUDA, oneDNN on the CPU), convolutions by im2col, requantisation in int64 on the device.

An integer product is exact whatever the summation order, as long as no partial sum leaves int32;
rule 2 bounds every accumulator (and so every partial sum) below ``2**31``. A library could still
saturate an intermediate (some int8 CPU paths widen through saturating 16-bit pair sums), so each
device's ``_int_mm`` must first reproduce products built to expose that; if it does not, this
backend multiplies in int32 instead. Inner and output sizes are zero-padded to multiples of 8 on
every device (CUDA requires it, and torch 2.13's CPU ``_int_mm`` returns garbage for an inner
size of 1), and rows to at least 32 on CUDA (which wants more than 16): padding adds zero products
only. torch is imported inside the functions, never at module import.
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from lazyledger.materialize.qnet.spec import Q_MAX
from lazyledger.materialize.qnet.weights import QNet

if TYPE_CHECKING:
    import torch

__all__ = ["int_mm_exact", "torch_logits", "torch_net"]

BATCH_BYTES_CPU: Final = 1 << 25
BATCH_BYTES_CUDA: Final = 1 << 30


def _pad8(n: int) -> int:
    return -(-n // 8) * 8


@functools.cache
def int_mm_exact(device: str) -> bool:
    """Whether ``torch._int_mm`` on ``device`` reproduces an exact product of extreme values."""
    import torch

    if not hasattr(torch, "_int_mm"):
        return False
    g = torch.Generator().manual_seed(14)
    rows = 32 if device.startswith("cuda") else 1
    for m, k, n in [(64, 4096, 64), (max(rows, 3), 8, 8), (max(rows, 5), 24, 40), (33, 136, 16)]:
        a = torch.randint(-Q_MAX, Q_MAX + 1, (m, k), generator=g, dtype=torch.int8)
        w = torch.randint(-Q_MAX, Q_MAX + 1, (n, k), generator=g, dtype=torch.int8)
        if m == 64:  # rows that saturate 16-bit pair sums after a +128 shift
            a[:16], a[16:32], w[:16], w[16:32] = Q_MAX, -Q_MAX, Q_MAX, -Q_MAX
        want = a.to(torch.int64) @ w.to(torch.int64).t()
        try:
            got = torch._int_mm(a.to(device), w.to(device).t())
        except RuntimeError:
            return False
        if not torch.equal(got.to("cpu", torch.int64), want):
            return False
    return True


class _Mat:
    """A layer's int8 weights on the device, transposed (fan_in, out) as ``_int_mm`` takes them."""

    def __init__(self, w: npt.NDArray[np.int8], device: torch.device) -> None:
        import torch

        self.n_out, self.fan_in = w.shape
        with warnings.catch_warnings():  # a view of the read-only blob; it is never written
            warnings.simplefilter("ignore", UserWarning)
            host = torch.from_numpy(w)
        if self.n_out % 8 or self.fan_in % 8:
            rows, cols = _pad8(self.n_out), _pad8(self.fan_in)
            dev = torch.zeros((rows, cols), dtype=torch.int8, device=device)
            dev[: self.n_out, : self.fan_in] = host.to(device)
        else:
            dev = host.to(device)
        self.wt = dev.t()  # column-major (fan_in', out'): the layout cuBLAS prefers


class TorchNet:
    """A decoded network moved to a torch device (weights once, per-channel integers as int64)."""

    def __init__(self, net: QNet, device: str) -> None:
        import torch

        self.net = net
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.fast = int_mm_exact(str(self.device))

        def vec(a: npt.NDArray[np.int64] | None) -> torch.Tensor | None:
            return None if a is None else torch.from_numpy(a).to(self.device)

        self.in_mult = vec(net.input_mult)
        self.in_shift = vec(net.input_shift)
        self.mats: list[_Mat | None] = []
        self.vecs: list[dict[str, torch.Tensor | None]] = []
        for p in net.layers:
            self.mats.append(None if p.weight is None else _Mat(p.weight, self.device))
            self.vecs.append(
                {
                    "bias": vec(p.bias),
                    "mult": vec(p.mult),
                    "mult_saved": vec(p.mult_saved),
                    "shift": vec(p.shift),
                }
            )

    def matmul(self, a: torch.Tensor, m: _Mat) -> torch.Tensor:
        """``a`` (rows, fan_in) int8 times the layer's weights: (rows, out) int32."""
        import torch

        if not self.fast:
            wt = m.wt[: m.fan_in, : m.n_out].to(torch.int32)
            return a.to(torch.int32) @ wt
        rows, fan_in = a.shape
        cols = m.wt.shape[0]
        prow = max(32, _pad8(rows)) if self.cuda else rows
        if prow != rows or cols != fan_in:
            padded = torch.zeros((prow, cols), dtype=torch.int8, device=a.device)
            padded[:rows, :fan_in] = a
            a = padded
        out = torch._int_mm(a.contiguous(), m.wt)
        return out[:rows, : m.n_out]


def _rq(v: torch.Tensor, mult: torch.Tensor, shift: torch.Tensor, relu: bool) -> torch.Tensor:
    """Rule 2's requantisation in int64; ``mult`` and ``shift`` broadcast against ``v``."""
    import torch

    half = torch.bitwise_right_shift(torch.bitwise_left_shift(torch.ones_like(shift), shift), 1)
    y = torch.bitwise_right_shift(v.to(torch.int64) * mult + half, shift)
    return torch.clamp(y, 0 if relu else -Q_MAX, Q_MAX).to(torch.int8)


def _ch(t: torch.Tensor | None) -> torch.Tensor:
    assert t is not None
    return t.reshape(1, -1, 1, 1)


def torch_net(net: QNet, device: str | None = None) -> TorchNet:
    """Move ``net`` to ``device`` (default: CUDA when available, else the CPU)."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return TorchNet(net, device)


def torch_logits(net: QNet | TorchNet, x: npt.ArrayLike, device: str | None = None) -> Any:
    """Logits ``(n, n_classes)`` int32 (NumPy) of integer inputs ``x`` by torch."""
    import torch

    tn = net if isinstance(net, TorchNet) else torch_net(net, device)
    spec = tn.net.spec
    xa = np.asarray(x)
    n = xa.shape[0]
    from lazyledger.materialize.qnet.kernel import batch_size

    budget = BATCH_BYTES_CUDA if tn.cuda else BATCH_BYTES_CPU
    bs = batch_size(spec, n, budget)
    xt = torch.from_numpy(np.ascontiguousarray(xa.reshape(n, -1), dtype=np.int64))
    out = []
    with torch.inference_mode():
        for start in range(0, n, bs):
            xb = xt[start : start + bs].to(tn.device)
            out.append(_forward(tn, xb).to("cpu"))
    logits: npt.NDArray[np.int32] = torch.cat(out).numpy()
    return logits


def _forward(tn: TorchNet, xb: torch.Tensor) -> torch.Tensor:
    import torch

    spec = tn.net.spec
    nb = xb.shape[0]
    a = _rq(xb.reshape(nb, *spec.tensor_shape), _ch(tn.in_mult), _ch(tn.in_shift), relu=False)
    saved: list[torch.Tensor] = []
    for step, m, v in zip(spec.steps, tn.mats, tn.vecs, strict=True):
        ly = step.layer
        c, h, w = step.in_shape
        oc, oh, ow = step.out_shape
        if ly.kind in ("dense", "conv"):
            assert m is not None and v["bias"] is not None
            if ly.kind == "dense":
                cols = a.reshape(nb, -1)
            else:
                k, st, pad = ly.kernel, ly.stride, ly.kernel // 2
                xp = torch.zeros(
                    (nb, c, h + 2 * pad, w + 2 * pad), dtype=torch.int8, device=a.device
                )
                xp[:, :, pad : pad + h, pad : pad + w] = a
                taps = [
                    xp[:, :, dy : dy + st * (oh - 1) + 1 : st, dx : dx + st * (ow - 1) + 1 : st]
                    for dy in range(k)
                    for dx in range(k)
                ]
                # (nb, c, k*k, oh, ow) -> rows (nb, oh, ow), columns (c, dy, dx): torch's layout
                cols = torch.stack(taps, dim=2).permute(0, 3, 4, 1, 2).reshape(nb * oh * ow, -1)
            acc = tn.matmul(cols, m) + v["bias"].to(torch.int32)
            if step.last:
                return acc
            assert v["mult"] is not None and v["shift"] is not None
            y = _rq(acc, v["mult"], v["shift"], ly.relu)  # (nb * oh * ow, oc)
            a = y.reshape(nb, oh, ow, oc).permute(0, 3, 1, 2).contiguous()
        elif ly.kind == "maxpool":
            k, st = ly.kernel, ly.stride
            a = a.reshape(nb, c, h, w)
            mx = a[:, :, 0 : st * (oh - 1) + 1 : st, 0 : st * (ow - 1) + 1 : st]
            for dy in range(k):
                for dx in range(k):
                    win = a[
                        :, :, dy : dy + st * (oh - 1) + 1 : st, dx : dx + st * (ow - 1) + 1 : st
                    ]
                    mx = torch.maximum(mx, win)
            a = mx.contiguous()
        elif ly.kind == "avgpool":
            total = a.reshape(nb, c, h * w).to(torch.int64).sum(dim=2).reshape(nb, c, 1, 1)
            a = _rq(total, _ch(v["mult"]), _ch(v["shift"]), ly.relu)
        elif ly.kind == "save":
            saved.append(a.reshape(nb, c, h, w))
        else:  # add
            r = saved.pop()
            s = a.reshape(nb, c, h, w).to(torch.int64) * _ch(v["mult"])
            s = s + r.to(torch.int64) * _ch(v["mult_saved"])
            a = _rq(s, torch.ones_like(_ch(v["shift"])), _ch(v["shift"]), ly.relu)
    raise AssertionError("a valid spec ends with a dense layer")
