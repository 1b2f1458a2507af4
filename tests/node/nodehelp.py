"""Helpers for node tests: real node processes on 127.0.0.1 with free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import lazyledger as ll
from lazyledger.node.config import write_genesis, write_key

STARTUP_DEADLINE = 90.0  # generous: a loaded CI machine; never asserted on, only waited for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Poll ``predicate`` until true; fail (naming ``what``) if it never becomes true."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


class NodeProcess:
    """One ``python -m lazyledger.node run`` process."""

    def __init__(self, datadir: Path, args: list[str], log: Path) -> None:
        self.datadir, self.args, self.log_path = datadir, args, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProcess:
        cmd = [sys.executable, "-m", "lazyledger.node", "run", "--datadir", str(self.datadir)]
        cmd += ["--port", str(self.port), *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        end = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"node exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"node at {self.url} did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and reap the process; returns its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"node ignored signal {sig}:\n{self.log()}")

    def reap(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


PROPOSER = ll.Keypair.from_seed(b"\x50" * 32)
USERS = [ll.Keypair.from_seed(bytes([0x60 + i]) * 32) for i in range(6)]


def node_genesis() -> ll.Genesis:
    return ll.Genesis(
        chain_id="node-test",
        n_shards=4,
        authorities=[PROPOSER.public_key],
        assets={0: PROPOSER.account},
        balances={u.account: {0: 10_000} for u in USERS},
    )


def make_datadir(root: Path, name: str, key: bool) -> tuple[Path, Path]:
    """A datadir (with the proposer key if ``key``) and a genesis file beside it."""
    datadir = root / name
    datadir.mkdir()
    genesis_file = root / f"{name}-genesis.toml"
    write_genesis(genesis_file, node_genesis())
    if key:
        write_key(datadir / "node_key", PROPOSER)
    return datadir, genesis_file


__all__ = ["PROPOSER", "USERS", "NodeProcess", "free_port", "make_datadir", "node_genesis"]
