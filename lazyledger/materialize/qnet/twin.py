"""The NumPy twin of rule 2: the rule written out with int64 arrays, as plainly as it reads.

Every value the rule defines fits an int64 with room to spare (see ``docs/verdict-v2.md``), so the
int64 arithmetic here is exact; the twin also asserts the int32 accumulator bound of every layer.
Convolutions are sums of one shifted input plane per tap, not im2col: the fast backends compute
the same numbers another way, and the tests compare them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from lazyledger.materialize.qnet.spec import ACC_MAX, Q_MAX
from lazyledger.materialize.qnet.weights import QNet

__all__ = ["requant", "requant_exact", "twin_logits"]

I64Array = npt.NDArray[np.int64]


def requant_exact(v: int, mult: int, shift: int, relu: bool) -> int:
    """The requantisation with Python ints: ``clamp(floor((v*M + 2**s // 2) / 2**s))``."""
    y = (v * mult + ((1 << shift) >> 1)) >> shift
    return min(Q_MAX, max(0 if relu else -Q_MAX, y))


def requant(v: I64Array, mult: I64Array, shift: I64Array, relu: bool) -> I64Array:
    """:func:`requant_exact` elementwise; ``mult`` and ``shift`` broadcast against ``v``."""
    half = np.right_shift(np.left_shift(np.int64(1), shift), 1)
    y = np.right_shift(v * mult + half, shift)
    out: I64Array = np.clip(y, 0 if relu else -Q_MAX, Q_MAX)
    return out


def _channels(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A per-channel vector shaped to broadcast over ``(n, C, H, W)``."""
    return a.reshape(1, -1, 1, 1)


def _check_acc(acc: I64Array, layer: int) -> None:
    if acc.size and int(np.abs(acc).max()) > ACC_MAX:  # impossible for a valid spec
        raise AssertionError(f"layer {layer}: accumulator beyond {ACC_MAX}")


def twin_logits(net: QNet, x: npt.ArrayLike) -> I64Array:
    """Logits ``(n, n_classes)`` of integer inputs ``x`` (n, *input_shape) under rule 2."""
    spec = net.spec
    xa = np.asarray(x, dtype=np.int64)
    n = xa.shape[0]
    a = xa.reshape(n, *spec.tensor_shape)
    a = requant(a, _channels(net.input_mult), _channels(net.input_shift), relu=False)
    saved: list[I64Array] = []
    for step, p in zip(spec.steps, net.layers, strict=True):
        ly = step.layer
        if ly.kind == "dense":
            assert p.weight is not None and p.bias is not None
            acc = a.reshape(n, -1) @ p.weight.astype(np.int64).T + p.bias
            _check_acc(acc, step.index)
            if step.last:
                return acc
            assert p.mult is not None and p.shift is not None
            a = requant(acc, p.mult, p.shift, ly.relu).reshape(n, -1, 1, 1)
        elif ly.kind == "conv":
            assert p.weight is not None and p.bias is not None
            assert p.mult is not None and p.shift is not None
            c, h, w = step.in_shape
            oc, oh, ow = step.out_shape
            k, st, pad = ly.kernel, ly.stride, ly.kernel // 2
            wk = p.weight.astype(np.int64).reshape(oc, c, k, k)
            xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=np.int64)
            xp[:, :, pad : pad + h, pad : pad + w] = a
            acc = np.zeros((n, oc, oh, ow), dtype=np.int64) + _channels(p.bias)
            for dy in range(k):
                for dx in range(k):
                    # out[y, x] reads padded input [y*st + dy, x*st + dx]
                    plane = xp[
                        :, :, dy : dy + st * (oh - 1) + 1 : st, dx : dx + st * (ow - 1) + 1 : st
                    ]
                    acc += np.einsum("nchw,oc->nohw", plane, wk[:, :, dy, dx])
            _check_acc(acc, step.index)
            a = requant(acc, _channels(p.mult), _channels(p.shift), ly.relu)
        elif ly.kind == "maxpool":
            _, oh, ow = step.out_shape
            k, st = ly.kernel, ly.stride
            m = a[:, :, 0 : st * (oh - 1) + 1 : st, 0 : st * (ow - 1) + 1 : st]
            for dy in range(k):
                for dx in range(k):
                    win = a[
                        :, :, dy : dy + st * (oh - 1) + 1 : st, dx : dx + st * (ow - 1) + 1 : st
                    ]
                    m = np.maximum(m, win)
            a = m
        elif ly.kind == "avgpool":
            assert p.mult is not None and p.shift is not None
            total = a.sum(axis=(2, 3), keepdims=True)
            a = requant(total, _channels(p.mult), _channels(p.shift), ly.relu)
        elif ly.kind == "save":
            saved.append(a)
        else:  # add
            assert p.mult is not None and p.mult_saved is not None and p.shift is not None
            r = saved.pop()
            v = a * _channels(p.mult) + r * _channels(p.mult_saved)
            a = requant(v, np.ones((1, 1, 1, 1), np.int64), _channels(p.shift), ly.relu)
    raise AssertionError("a valid spec ends with a dense layer")


def argmax_lowest(logits: npt.NDArray[Any]) -> I64Array:
    """Per row, the index of the largest value; ties go to the lowest index."""
    out: I64Array = np.argmax(logits, axis=1).astype(np.int64)  # first occurrence, documented
    return out
