"""Random and adversarial rule-2 networks, weights and inputs, shared by the qnet tests."""

from __future__ import annotations

import math

import numpy as np

from lazyledger.materialize import dnn
from lazyledger.materialize.qnet import Layer, NetSpec
from lazyledger.materialize.qnet.export import fixed_point
from lazyledger.materialize.qnet.spec import BIAS_MAX, MULT_MAX, Q_MAX, SHIFT_MAX
from lazyledger.materialize.qnet.weights import blob_parts, encode_weights


def random_spec(rng: np.random.Generator) -> NetSpec:
    """A small valid network: an MLP, or a CNN mixing convolutions (strides 1, 2), max pools,
    residual blocks, global average pooling and dense layers."""
    n_classes = int(rng.integers(2, 7))
    if rng.integers(3) == 0:
        hidden = [int(h) for h in rng.integers(1, 24, size=rng.integers(0, 4))]
        layers = [Layer.dense(h, relu=bool(rng.integers(4))) for h in hidden]
        layers.append(Layer.dense(n_classes, relu=False))
        return NetSpec((int(rng.integers(1, 40)),), tuple(layers), n_classes)
    c, h, w = (int(v) for v in (rng.integers(1, 4), rng.integers(1, 9), rng.integers(1, 9)))
    shape = (c, h, w)
    layers = []
    for _ in range(int(rng.integers(1, 5))):
        kind = int(rng.integers(4))
        if kind == 0:
            k = int(rng.choice([1, 3, 5]))
            st = int(rng.integers(1, 3))
            c = int(rng.integers(1, 7))
            layers.append(Layer.conv(c, k, st, relu=bool(rng.integers(3))))
            h, w = (h - 1) // st + 1, (w - 1) // st + 1
        elif kind == 1 and min(h, w) >= 2:
            k = int(rng.integers(2, min(3, h, w) + 1))
            st = int(rng.integers(1, 4))
            layers.append(Layer.maxpool(k, st))
            h, w = (h - k) // st + 1, (w - k) // st + 1
        elif kind == 2:
            layers += [
                Layer.save(),
                Layer.conv(c, 3, relu=bool(rng.integers(2))),
                Layer.conv(c, int(rng.choice([1, 3])), relu=False),
                Layer.add(relu=bool(rng.integers(2))),
            ]
        else:
            layers.append(Layer.avgpool(relu=bool(rng.integers(2))))
            h = w = 1
    if rng.integers(2):
        layers.append(Layer.dense(int(rng.integers(1, 12))))
    layers.append(Layer.dense(n_classes, relu=False))
    return NetSpec(shape, tuple(layers), n_classes)


def random_arrays(spec: NetSpec, rng: np.random.Generator, adversarial: bool = False) -> list:
    """Arrays for :func:`encode_weights`: random weights and per-channel multipliers that keep
    activations spread; ``adversarial`` mixes in the extremes of every range."""
    out: list = []
    for p in blob_parts(spec):
        step = spec.steps[p.layer] if p.layer >= 0 else None
        if adversarial and rng.integers(3) == 0:
            out.append(extreme(p.kind, p.shape, rng))
            continue
        if p.kind == "weight":
            out.append(rng.integers(-Q_MAX, Q_MAX + 1, size=p.shape))
        elif p.kind == "bias":
            out.append(rng.integers(-4000, 4000, size=p.shape))
        else:
            if step is None:
                scale = 1.0 / 64
            elif step.fan_in:
                scale = 1.0 / (40.0 * math.sqrt(step.fan_in))
            elif step.layer.kind == "avgpool":
                scale = 1.0 / (step.in_shape[1] * step.in_shape[2])
            else:
                scale = 0.6
            pairs = [fixed_point(scale * 2.0 ** rng.uniform(-2, 2)) for _ in range(p.shape[0])]
            out.append(np.array([q[0 if p.kind == "mult" else 1] for q in pairs]))
    return out


def extreme(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values at the edges of a part's range."""
    edges = {
        "weight": [-Q_MAX, Q_MAX, 0, 1, -1],
        "bias": [-BIAS_MAX, BIAS_MAX, 0, -1, BIAS_MAX - 1],
        "mult": [0, 1, MULT_MAX, 1 << 30],
        "shift": [0, 1, SHIFT_MAX, 31],
    }[kind]
    return rng.choice(np.array(edges, dtype=np.int64), size=shape)


def random_inputs(spec: NetSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    shape = (n, *spec.input_shape)
    kind = rng.integers(3)
    if kind == 0:
        return rng.integers(0, 17, size=shape)
    if kind == 1:
        return rng.choice([dnn.INPUT_MIN, -1, 0, 1, dnn.INPUT_MAX], size=shape)
    return rng.integers(dnn.INPUT_MIN, dnn.INPUT_MAX + 1, size=shape)


def random_blob(spec: NetSpec, seed: int, adversarial: bool = False) -> bytes:
    return encode_weights(spec, random_arrays(spec, np.random.default_rng(seed), adversarial))
