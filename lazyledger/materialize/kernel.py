"""The Numba replay kernel: one loop over a run of rows that dispatches each row to the kernel
its op registered (:class:`lazyledger.ops.OpSpec`).

The dispatch is composed from a registry: its source is generated, written once per distinct op
set (named by a hash of the generated text and of every op kernel's module source) to a cache
folder, imported, and compiled with Numba's on-disk cache, so later processes load machine code
instead of compiling. Op kernels are inlined (``inline="always"``), so a composed kernel runs
as fast as a hand-written ``if`` chain."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3

from lazyledger.errors import LedgerError
from lazyledger.ops import REGISTRY, Registry
from lazyledger.ops.swap import kernel_swap_output as swap_output

__all__ = ["compose", "current", "current_wide", "replay", "swap_output"]

ReplayKernel = Callable[..., int]
"""``replay(op, s_a0, s_a1, s_b0, s_b1, amount, min_out, bal, status, start) -> int``: apply
rows ``start..`` to ``bal`` (balances by slot), writing each row's status; stops at the first
row whose op has no kernel and returns its index (the caller handles that row and resumes);
returns ``len(op)`` when done."""

WideKernel = Callable[..., int]
"""``replay_wide(op, sa, sb, v, bal, status, start) -> int``: :data:`ReplayKernel` for rows of
width K > 2, whose slots ``sa``/``sb`` (rows x K: each account in ``asset``/``asset2``) and
integers ``v`` (rows x K: ``amount``, ``min_out``, ``v2`` ...) are matrices."""

_COMPOSED: dict[bytes, Any] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    """Where composed kernels live: ``$LAZYLEDGER_CACHE``, else ``$XDG_CACHE_HOME/lazyledger``
    (``~/.cache/lazyledger``), else a per-user temporary folder."""
    explicit = os.environ.get("LAZYLEDGER_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if not xdg:
        try:
            xdg = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory known: a private temporary folder
            return Path(tempfile.gettempdir()) / f"lazyledger-{os.getuid()}"
    return Path(xdg) / "lazyledger"


_ARGS = "bal, s_a0[i], s_a1[i], s_b0[i], s_b1[i], amount[i], min_out[i]"
_NARROW = "bal, sa[i, 0], sa[i, 1], sb[i, 0], sb[i, 1], v[i, 0], v[i, 1]"
_WIDE = "bal, sa[i], sb[i], v[i]"


def _source(registry: Registry) -> str:
    lines = [
        '"""Composed by lazyledger.materialize.kernel from an op registry; do not edit."""',
        "from numba import njit",
    ]
    for code, fn in registry.kernels.items():
        py = fn.py_func
        lines.append(f"from {py.__module__} import {py.__qualname__} as _k{code}")
    lines += [
        "",
        "",
        "@njit(cache=True)",
        "def replay(op, s_a0, s_a1, s_b0, s_b1, amount, min_out, bal, status, start):",
        "    n = op.shape[0]",
        "    for i in range(start, n):",
        "        o = op[i]",
    ]
    narrow = [code for code in registry.kernels if code not in registry.wide]
    for k, code in enumerate(narrow):  # (a chain with a wide op replays through replay_wide)
        lines.append(f"        {'if' if k == 0 else 'elif'} o == {code}:")
        lines.append(f"            status[i] = _k{code}({_ARGS})")
    lines += ["        else:", "            return i", "    return n", ""]
    if registry.wide:
        lines += [
            "",
            "@njit(cache=True)",
            "def replay_wide(op, sa, sb, v, bal, status, start):",
            "    n = op.shape[0]",
            "    for i in range(start, n):",
            "        o = op[i]",
        ]
        for k, code in enumerate(registry.kernels):
            lines.append(f"        {'if' if k == 0 else 'elif'} o == {code}:")
            args = _WIDE if code in registry.wide else _NARROW
            lines.append(f"            status[i] = _k{code}({args})")
        lines += ["        else:", "            return i", "    return n", ""]
    return "\n".join(lines)


def _digest(source: str, registry: Registry) -> bytes:
    h = blake3.blake3(source.encode())
    for fn in registry.kernels.values():
        h.update(inspect.getsource(inspect.getmodule(fn.py_func)).encode())  # type: ignore[arg-type]
    return h.digest()[:12]


def _write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists() or path.read_text() != source:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)  # atomic: concurrent processes write the same text
    return path


def compose(registry: Registry) -> ReplayKernel:
    """The replay kernel of ``registry``'s ops (one per distinct op set per process)."""
    return _module(registry).replay  # type: ignore[no-any-return]


def _module(registry: Registry) -> Any:
    source = _source(registry)
    digest = _digest(source, registry)
    with _LOCK:
        found = _COMPOSED.get(digest)
        if found is not None:
            return found
        name = f"replay_{digest.hex()}"
        try:
            path = _write(cache_dir() / "kernels", f"{name}.py", source)
        except OSError:  # a read-only home: a private temporary folder
            own = Path(tempfile.gettempdir()) / f"lazyledger-{os.getuid()}"
            path = _write(own, f"{name}.py", source)
        module_name = f"lazyledger_composed_{name}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # Numba's cache finds the module again by name
        spec.loader.exec_module(module)
        _COMPOSED[digest] = module
        return module


_builtin = _module(REGISTRY)
replay: ReplayKernel = _builtin.replay
"""The replay kernel of the built-in ops (see :data:`ReplayKernel`)."""
_current: tuple[int, Any] = (REGISTRY.version, _builtin)


def _current_module() -> Any:
    global _current
    version, found = _current
    if version != REGISTRY.version:
        found = _module(REGISTRY)
        _current = (REGISTRY.version, found)
    return found


def current() -> ReplayKernel:
    """The replay kernel of every op this process runs (built-ins and adopted embedder ops)."""
    return _current_module().replay  # type: ignore[no-any-return]


def current_wide() -> WideKernel:
    """:data:`WideKernel` of every op this process runs; it exists once a wide op is adopted."""
    found = getattr(_current_module(), "replay_wide", None)
    if found is None:
        raise LedgerError("no operation wider than two accounts is registered in this process")
    return found  # type: ignore[no-any-return]
