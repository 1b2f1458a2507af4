"""Verdict rule 2: int8 networks with int32 accumulators, checked bit-identically by a Numba
kernel, its NumPy twin and torch integer matrix products (CPU or CUDA).

A job names rule 2 by its model spec's version byte (2; version 1 is the older int64 rule of
:mod:`lazyledger.materialize.dnn`, which old jobs keep). The rule is specified in
``docs/verdict-v2.md``; :mod:`.spec` holds the spec and limits, :mod:`.weights` the blob codec,
:mod:`.twin` the plain NumPy statement of the arithmetic, :mod:`.kernel` and
:mod:`.torch_backend` the fast paths. Backends differ in speed only.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from lazyledger.errors import LedgerError
from lazyledger.materialize.qnet.spec import Layer, NetSpec
from lazyledger.materialize.qnet.weights import QNet, decode_weights, encode_weights

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "Layer",
    "NetSpec",
    "QNet",
    "classes",
    "decode_weights",
    "encode_weights",
    "logits",
    "pick_backend",
]

BACKENDS: Final = ("numba", "numpy", "torch", "torch-cpu", "torch-cuda")
BACKEND_ENV: Final = "LAZYLEDGER_DNN_BACKEND"


class BackendUnavailable(LedgerError):
    """A backend was asked for by name but cannot run here (no torch, no CUDA, inexact int8)."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend, self.reason = backend, reason
        super().__init__(f"DNN backend {backend!r} is unavailable: {reason}")


@functools.cache
def _cuda_exact() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    from lazyledger.materialize.qnet.torch_backend import int_mm_exact

    return bool(torch.cuda.is_available()) and int_mm_exact("cuda")


def pick_backend(backend: str | None = None) -> str:
    """``backend`` if given, else ``$LAZYLEDGER_DNN_BACKEND``, else ``"torch-cuda"`` when torch
    sees a GPU whose int8 product passes the exactness probe, else ``"numba"``."""
    choice = backend or os.environ.get(BACKEND_ENV) or ""
    if choice and choice not in BACKENDS:
        raise BackendUnavailable(choice, f"unknown; known: {', '.join(BACKENDS)}")
    if choice:
        return choice
    return "torch-cuda" if _cuda_exact() else "numba"


def logits(net: QNet, x: npt.ArrayLike, backend: str | None = None) -> npt.NDArray[np.int32]:
    """Logits ``(n, n_classes)`` of integer inputs ``x`` (n, *input_shape) under rule 2."""
    name = pick_backend(backend)
    if name == "numpy":
        from lazyledger.materialize.qnet.twin import twin_logits

        return twin_logits(net, x).astype(np.int32)
    if name == "numba":
        from lazyledger.materialize.qnet.kernel import numba_logits

        return numba_logits(net, x)
    if importlib.util.find_spec("torch") is None:
        raise BackendUnavailable(name, "torch is not installed")
    from lazyledger.materialize.qnet.torch_backend import torch_logits

    device = {"torch": None, "torch-cpu": "cpu", "torch-cuda": "cuda"}[name]
    if device == "cuda" and not _cuda_exact():
        raise BackendUnavailable(name, "no CUDA device with an exact int8 matrix product")
    out: Any = torch_logits(net, x, device)
    return np.asarray(out, dtype=np.int32)


def classes(net: QNet, x: npt.ArrayLike, backend: str | None = None) -> npt.NDArray[np.int64]:
    """Class ids: per sample the largest logit, ties to the lowest index."""
    from lazyledger.materialize.qnet.twin import argmax_lowest

    return argmax_lowest(logits(net, x, backend))
