"""``Ledger.states(executor="ray")``: the accounts split over Ray actors, each holding a
read-only handle on a replica of the chain at the asked height.

Locally the replica is the ledger's own directory. On a cluster of several machines each
machine runs a follower node (``lazyledger node run --follow ...``) and the actors open its
datadir: one path valid on every machine (``replica_path``), or one per machine
(``replicas={node ip or Ray node id: path}``). An actor whose replica is behind the asked
height refreshes until it gets there (at most ``wait_s`` seconds, else ReplicaBehind); one that
holds another chain, or another block at that height, answers ReplicaMismatch. Results equal
``state()`` for every account: every actor replays the same committed blocks."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from lazyledger.errors import InvalidRequest, LedgerError, ReplicaBehind, ReplicaMismatch
from lazyledger.ledger import Ledger
from lazyledger.materialize.keyring import Keyring
from lazyledger.model import AccountState
from lazyledger.ops import OpSpec

RAY_ADDRESS_ENV = "LAZYLEDGER_RAY_ADDRESS"
"""Environment variable naming the Ray cluster to join (e.g. ``ray://head:10001`` or
``head:6379``) when no ``address`` is given; unset: a local Ray instance is started."""

POLL_S = 0.05
"""How often a replica behind the asked height looks for new blocks."""


class RayUnavailable(LedgerError):
    """Ray could not be started or joined, or an actor died; ``reason`` says how."""

    def __init__(self, address: str | None, reason: str) -> None:
        self.address, self.reason = address, reason
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        super().__init__(f"{where} is unavailable: {reason}")


class RayExecutor:
    """Runs :meth:`Ledger.states` on Ray actors (``pip install 'lazyledger[ray]'``).

    ``address``: the cluster (default: ``$LAZYLEDGER_RAY_ADDRESS``, else a local Ray started
    here and stopped by :meth:`close`). ``replica_path``: the ledger directory the actors open
    (default: the calling ledger's, right for a local run or a shared filesystem);
    ``replicas``: a path per machine, keyed by its IP address or Ray node id (taking precedence
    over ``replica_path``). ``workers``: actors (default: the cluster's CPUs), spread over its
    machines. ``wait_s``: how long an actor waits for its replica to reach the asked height."""

    def __init__(
        self,
        address: str | None = None,
        *,
        replica_path: str | os.PathLike[str] | None = None,
        replicas: Mapping[str, str | os.PathLike[str]] | None = None,
        workers: int | None = None,
        wait_s: float = 60.0,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise InvalidRequest(f"address must be a string, got {type(address).__name__}")
        if not isinstance(wait_s, int | float) or isinstance(wait_s, bool) or not wait_s >= 0:
            raise InvalidRequest(f"wait_s must be a number >= 0, got {wait_s!r}")
        _check_workers(workers)
        self.address = address if address is not None else os.environ.get(RAY_ADDRESS_ENV) or None
        self.replica_path = None if replica_path is None else os.fspath(replica_path)
        self.replicas = {str(k): os.fspath(v) for k, v in (replicas or {}).items()}
        self.workers = workers
        self.wait_s = float(wait_s)
        self._started = False  # whether this executor called ray.init (and so shuts it down)
        self._actors: list[Any] = []
        self._key: tuple[str, bytes, int] | None = None

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise InvalidRequest(
                "executor 'ray' needs Ray: pip install 'lazyledger[ray]'"
            ) from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if self.address is None:  # a fresh local instance, whatever $RAY_ADDRESS says
                kwargs["num_cpus"] = max(os.cpu_count() or 1, self.workers or 1)
            try:
                ray.init(address=self.address or "local", **kwargs)
            except Exception as e:  # Ray raises ConnectionError, ValueError, RuntimeError...
                raise RayUnavailable(self.address, f"{type(e).__name__}: {e}") from None
            self._started = True
        return ray

    def _pool(self, ray: Any, ledger: Ledger, n: int | None) -> list[Any]:
        """The actors (started once, reused while path, chain and count stay the same)."""
        if n is None:
            n = self.workers if self.workers is not None else int(ray.cluster_resources()["CPU"])
        default = self.replica_path if self.replica_path is not None else str(ledger.store.path)
        key = (default, ledger.genesis_id, n)
        if self._key != key:
            self._kill(ray)
            cls = ray.remote(scheduling_strategy="SPREAD")(ReplicaWorker)
            self._actors = [
                cls.remote(default, self.replicas, ledger.genesis_id, ledger.ops) for _ in range(n)
            ]
            for found in self._get(ray, [a.ready.remote() for a in self._actors]):
                if found is not None:
                    self._kill(ray)
                    raise found
            self._key = key
        return self._actors

    def states(
        self,
        ledger: Ledger,
        accounts: list[bytes],
        height: int,
        keyring: Keyring,
        workers: int | None,
    ) -> dict[bytes, AccountState]:
        """See :meth:`Ledger.states`; the asked block's id travels with the work, so a replica
        on a fork of the chain is refused rather than answered from."""
        _check_workers(workers)
        ray = self._ray()
        actors = self._pool(ray, ledger, workers)
        block_id = ledger.genesis_id if height == 0 else ledger.header(height).id
        distinct = sorted(set(accounts))
        step = -(-len(distinct) // len(actors)) if distinct else 1
        chunks = [distinct[i : i + step] for i in range(0, len(distinct), step)]
        calls = [
            a.states.remote(c, height, block_id, keyring, self.wait_s)
            for a, c in zip(actors, chunks, strict=False)
        ]
        found: dict[bytes, AccountState] = {}
        for answer in self._get(ray, calls):
            if isinstance(answer, LedgerError):
                raise answer
            found.update(answer)
        return {a: found[a] for a in accounts}

    def _get(self, ray: Any, refs: list[Any]) -> list[Any]:
        """``ray.get``; a dead actor or a lost node is RayUnavailable (the pool is restarted
        on the next call)."""
        try:
            return list(ray.get(refs))
        except ray.exceptions.RayError as e:
            self._kill(ray)
            raise RayUnavailable(self.address, f"{type(e).__name__}: {e}") from None

    def _kill(self, ray: Any) -> None:
        for a in self._actors:
            ray.kill(a)
        self._actors, self._key = [], None

    def close(self) -> None:
        """Stop the actors, and the local Ray instance if this executor started it."""
        if not self._actors and not self._started:
            return
        import ray

        if ray.is_initialized():
            self._kill(ray)
            if self._started:
                ray.shutdown()
        self._actors, self._key, self._started = [], None, False


def _check_workers(workers: object) -> None:
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 4096
    ):
        raise InvalidRequest(f"workers must be an integer in 1..4096, got {workers!r}")


class ReplicaWorker:
    """A Ray actor's state: a read-only handle on this machine's replica. Errors come back as
    values (LedgerError instances), so the caller raises them with their type and fields."""

    def __init__(
        self,
        default: str,
        replicas: dict[str, str],
        genesis_id: bytes,
        ops: tuple[OpSpec, ...] = (),
    ) -> None:
        self.path = default
        self.ledger: Ledger | None = None
        self.error: LedgerError | None = None
        try:
            import ray

            ip: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
            here = (ip, ray.get_runtime_context().get_node_id())
            self.path = next((replicas[k] for k in here if k in replicas), default)
            led = Ledger.open(self.path, readonly=True, ops=ops)
        except LedgerError as e:
            self.error = e
            return
        if led.genesis_id != genesis_id:
            led.close()
            self.error = ReplicaMismatch(
                self.path,
                f"holds chain {led.genesis_id.hex()[:16]}, not {genesis_id.hex()[:16]} "
                "(another genesis)",
            )
            return
        self.ledger = led

    def ready(self) -> LedgerError | None:
        return self.error

    def states(
        self,
        accounts: list[bytes],
        height: int,
        block_id: bytes,
        keyring: Keyring,
        wait_s: float,
    ) -> dict[bytes, AccountState] | LedgerError:
        if self.error is not None:
            return self.error
        led = self.ledger
        assert led is not None
        try:
            t0 = time.monotonic()
            while led.refresh() < height:
                if time.monotonic() - t0 >= wait_s:
                    return ReplicaBehind(self.path, led.height, height, wait_s)
                time.sleep(POLL_S)
            here = led.genesis_id if height == 0 else led.header(height).id
            if here != block_id:
                return ReplicaMismatch(
                    self.path,
                    f"block {height} is {here.hex()[:16]}, not {block_id.hex()[:16]} (a fork)",
                )
            return led.states(accounts, height, keyring=keyring)
        except LedgerError as e:
            return e
