"""Node configuration: a datadir holding ``config.toml`` (``[node]`` table), ``genesis.toml``,
an optional proposer key, and the ledger itself. Command-line flags override the file."""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from lazyledger.crypto import Keypair
from lazyledger.errors import InvalidGenesis, LedgerError
from lazyledger.materialize.policy import CheckpointPolicy
from lazyledger.model import DEFAULT_MAX_BLOB_BYTES, Genesis
from lazyledger.ops import OpSpec

DEFAULT_DATADIR = Path.home() / ".lazyledger" / "node"
DEFAULT_PORT = 26657
CONFIG_FILE = "config.toml"
GENESIS_FILE = "genesis.toml"
KEY_FILE = "node_key"
LEDGER_DIR = "ledger"
LOG_LEVELS = ("debug", "info", "warning", "error")


MAX_QUERY_WORKERS = 64
"""Most query worker processes a node starts."""


class ConfigError(LedgerError):
    """The node configuration (file or flags) is unusable; the message names the field."""


@attrs.define
class NodeConfig:
    """Everything ``lazyledger node run`` needs. Defaults are loopback-only and bounded."""

    datadir: Path = DEFAULT_DATADIR
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    follow: str | None = None
    key_file: Path | None = None
    block_interval: float = 0.5
    max_block_txs: int = 5_000
    mempool_size: int = 50_000
    max_body_bytes: int = 64 << 10
    max_blob_bytes: int = 16 << 20
    poll_interval: float = 0.2
    state_cache: int = 4_096
    workers: int | None = None
    checkpoint_policy: str | None = None
    ops: str | None = None
    query_workers: int = 0
    allow_remote: bool = False
    log_level: str = "info"

    @property
    def ledger_path(self) -> Path:
        return self.datadir / LEDGER_DIR

    @property
    def genesis_path(self) -> Path:
        return self.datadir / GENESIS_FILE

    def resolved_key_file(self) -> Path | None:
        """The proposer key: the configured file, else ``<datadir>/node_key`` if present."""
        if self.key_file is not None:
            return self.key_file
        default = self.datadir / KEY_FILE
        return default if default.exists() else None

    def check(self) -> None:
        """Refuse inconsistent settings; a non-loopback host needs ``allow_remote``."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} outside 0..65535")
        if not self.allow_remote and not _is_loopback(self.host):
            raise ConfigError(
                f"host {self.host!r} is not a loopback address; pass --allow-remote (or set "
                "allow_remote = true in config.toml) to expose the node, behind a reverse proxy "
                "with TLS"
            )
        for name in ("block_interval", "poll_interval"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        for name in ("max_block_txs", "mempool_size", "max_body_bytes", "max_blob_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.state_cache < 0:
            raise ConfigError("state_cache must be >= 0")
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"log_level {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError("workers must be at least 1 (or unset: one per core)")
        if not 0 <= self.query_workers <= MAX_QUERY_WORKERS:
            raise ConfigError(f"query_workers must be in 0..{MAX_QUERY_WORKERS}")
        self.policy()  # refuses a malformed one

    def op_specs(self) -> tuple[OpSpec, ...]:
        """The ``ops`` setting: ``module:NAME``, a sequence of ``OpSpec`` the chain declares."""
        if not self.ops:
            return ()
        module, _, name = self.ops.partition(":")
        if not module or not name:
            raise ConfigError(f"ops {self.ops!r} is not module:NAME")
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as e:
            raise ConfigError(f"ops {self.ops!r}: {e}") from None
        specs = tuple(found) if isinstance(found, list | tuple) else ()
        if not specs or not all(isinstance(s, OpSpec) for s in specs):
            raise ConfigError(f"ops {self.ops!r} is not a list or tuple of OpSpec")
        return specs

    def policy(self) -> CheckpointPolicy | None:
        """The ``checkpoint_policy`` setting: ``hubs:TOP:EVERY`` or ``epochs:EVERY``."""
        spec = self.checkpoint_policy
        if spec is None or spec == "":
            return None
        kind, *nums = spec.split(":")
        try:
            args = [int(n) for n in nums]
            if kind == "hubs" and len(args) == 2:
                return CheckpointPolicy.hubs(top=args[0], every=args[1])
            if kind == "epochs" and len(args) == 1:
                return CheckpointPolicy.epochs(every=args[0])
        except (ValueError, LedgerError) as e:
            raise ConfigError(f"checkpoint_policy {spec!r}: {e}") from None
        raise ConfigError(
            f"checkpoint_policy {spec!r} is not 'hubs:TOP:EVERY' or 'epochs:EVERY' (or empty)"
        )

    @property
    def url(self) -> str:
        """The URL this node is reached at, as peers name it: ``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


_FIELDS = {f.name: f for f in attrs.fields(NodeConfig)}

SETTINGS: dict[str, tuple[str, str | int | None]] = {
    "host": (
        "Address to listen on (--host). Anything but a loopback address also needs "
        "allow_remote = true.",
        None,
    ),
    "port": ("TCP port of the HTTP API (--port).", None),
    "allow_remote": (
        "Allow a non-loopback host (--allow-remote); put a reverse proxy with TLS in front.",
        None,
    ),
    "follow": (
        "Upstream node URL: run as a follower that fetches, validates and stores its "
        "blocks and forwards transactions to it (--follow).",
        "http://127.0.0.1:26657",
    ),
    "key_file": (
        "Proposer key file (--key); unset: <datadir>/node_key when it exists, else "
        "the node observes.",
        "/path/to/node_key",
    ),
    "block_interval": ("Seconds between blocks of a proposer (--block-interval).", None),
    "max_block_txs": (
        "A proposer cuts a block as soon as this many transactions are pending (--max-block-txs).",
        None,
    ),
    "mempool_size": ("Pending transactions held before new ones get 429 (--mempool-size).", None),
    "max_body_bytes": (
        "Largest request body for the broadcast routes, in bytes (413 above).",
        None,
    ),
    "max_blob_bytes": ("Largest blob a PUT /blob/{hash} may carry, in bytes (413 above).", None),
    "poll_interval": (
        "Seconds between a follower's polls of its upstream (doubling, up to 5 s, "
        "while it is unreachable).",
        None,
    ),
    "state_cache": ("Materialised states kept in memory (0 turns the cache off).", None),
    "workers": ("Signature-check threads (--workers); unset: one per core.", 2),
    "checkpoint_policy": (
        "Checkpoints written in a background thread as blocks are appended: 'epochs:EVERY' "
        "(every account touched in the last EVERY blocks) or 'hubs:TOP:EVERY' (the TOP most "
        "active ones); unset: none. Changes the cost of queries, never their answers.",
        "epochs:100",
    ),
    "ops": (
        "Embedder-defined operations the chain's genesis declares, as module:NAME naming a "
        "sequence of lazyledger.OpSpec (--ops); unset: the built-in ops only.",
        "lazyledger.ops.examples:OPS",
    ),
    "query_workers": (
        "Worker processes answering the query routes (/state, /slice, /receipt, /tx, /block, "
        "/header, /headers, /blockchain) with read-only handles on this datadir, while this "
        "process appends (--query-workers); 0: this process answers them. /metrics labels "
        "each sample with its worker.",
        None,
    ),
    "log_level": (
        "debug, info, warning or error (--log-level); logs are JSON lines on stderr.",
        None,
    ),
}
"""Each setting of ``[node]`` in config.toml: its comment, and for one unset by default, an
example value written commented out."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, value: Any) -> Any:
    kind = str(_FIELDS[name].type)
    try:
        if kind in ("Path", "Path | None") and value is not None:
            return Path(value)
        if kind == "int" or (kind == "int | None" and value is not None):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind in ("str", "str | None") and value is not None and not isinstance(value, str):
            raise TypeError
    except TypeError:
        raise ConfigError(f"config field {name!r} has the wrong type: {value!r}") from None
    return value


def load_config(datadir: Path, overrides: Mapping[str, Any] | None = None) -> NodeConfig:
    """``<datadir>/config.toml`` (if any) with ``overrides`` (None values ignored) on top."""
    values: dict[str, Any] = {}
    path = datadir / CONFIG_FILE
    if path.exists():
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from None
        for key in doc:
            if key != "node":
                raise ConfigError(
                    f"{path}: unknown top-level key {key!r} (settings go in the [node] table)"
                )
        table = doc.get("node", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: 'node' must be a table ([node])")
        for key, value in table.items():
            if key not in SETTINGS:
                raise ConfigError(f"{path}: unknown setting {key!r} in [node]")
            values[key] = value
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    cfg = NodeConfig(datadir=datadir, **{k: _coerce(k, v) for k, v in values.items()})
    cfg.check()
    return cfg


def _toml(value: Any) -> str:
    """One TOML scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def render_config(cfg: NodeConfig) -> str:
    """config.toml for ``cfg``: every setting with its comment and default, one a line."""
    default = NodeConfig()
    lines = [
        "# lazyledger node settings (written by `lazyledger node init`).",
        "# Every setting is listed with its default; command-line flags override this file.",
        "# A key that is not listed here, or a table other than [node], is refused at start.",
        "",
        "[node]",
    ]
    for name, (doc, example) in SETTINGS.items():
        value, dflt = getattr(cfg, name), getattr(default, name)
        lines += ["", *(f"# {line}" for line in textwrap.wrap(doc, 96))]
        if dflt is None:
            lines.append("# Default: unset.")
            lines.append(
                f"{name} = {_toml(value)}" if value is not None else f"# {name} = {_toml(example)}"
            )
            continue
        lines.append(f"# Default: {_toml(dflt)}")
        lines.append(f"{name} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def write_config(cfg: NodeConfig) -> None:
    """Write ``<datadir>/config.toml``: every setting of ``cfg``, documented."""
    (cfg.datadir / CONFIG_FILE).write_text(render_config(cfg))


# -- genesis as TOML ---------------------------------------------------------------------------


def _hex(value: Any, what: str, size: int = 32) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise InvalidGenesis(f"{what} must be hex, got {value!r}") from None
    if len(raw) != size:
        raise InvalidGenesis(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidGenesis(f"{what} must be an integer, got {value!r}") from None


def genesis_from_toml(doc: Mapping[str, Any]) -> Genesis:
    """A Genesis from its TOML form (see :func:`genesis_to_toml`); InvalidGenesis if malformed.

    chain_id = "local"; n_shards = 4; authorities = ["<pubkey hex>"]; max_blob_bytes = 268435456
    [assets] 0 = "<issuer account hex>"
    [balances.<account hex>] 0 = 1000000
    [pools.<pool hex>] assets = [0, 1]
    [ops] 128 = "<definition hash hex>"    (embedder ops, ``Genesis.ops``)"""
    try:
        return Genesis(
            chain_id=str(doc["chain_id"]),
            n_shards=_int(doc["n_shards"], "n_shards"),
            authorities=[_hex(k, "authority") for k in doc.get("authorities", [])],
            assets={
                _int(a, "asset id"): _hex(v, f"issuer of asset {a}")
                for a, v in doc.get("assets", {}).items()
            },
            balances={
                _hex(acc, "account"): {
                    _int(a, "asset id"): _int(v, f"balance of {acc}") for a, v in held.items()
                }
                for acc, held in doc.get("balances", {}).items()
            },
            pools={
                _hex(p, "pool"): (_int(v["assets"][0], "asset"), _int(v["assets"][1], "asset"))
                for p, v in doc.get("pools", {}).items()
            },
            max_blob_bytes=_int(
                doc.get("max_blob_bytes", DEFAULT_MAX_BLOB_BYTES), "max_blob_bytes"
            ),
            ops=[
                (_int(code, "op code"), _hex(d, f"definition of op {code}"))
                for code, d in doc.get("ops", {}).items()
            ],
        )
    except KeyError as e:
        raise InvalidGenesis(f"genesis is missing {e.args[0]!r}") from None
    except (AttributeError, IndexError, TypeError) as e:
        raise InvalidGenesis(f"genesis has a malformed table: {e}") from None


def genesis_to_toml(g: Genesis) -> dict[str, Any]:
    return {
        "chain_id": g.chain_id,
        "n_shards": g.n_shards,
        "authorities": [k.hex() for k in g.authorities],
        "assets": {str(a): issuer.hex() for a, issuer in sorted(g.assets.items())},
        "balances": {
            acc.hex(): {str(a): v for a, v in sorted(held.items())}
            for acc, held in sorted(g.balances.items())
        },
        "pools": {p.hex(): {"assets": list(pair)} for p, pair in sorted(g.pools.items())},
        "max_blob_bytes": g.max_blob_bytes,
        **({"ops": {str(code): d.hex() for code, d in g.ops}} if g.ops else {}),
    }


def read_genesis(path: str | os.PathLike[str]) -> Genesis:
    """A genesis from its TOML file."""
    path = Path(path)
    try:
        return genesis_from_toml(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as e:
        raise InvalidGenesis(f"{path}: {e}") from None


def write_genesis(path: str | os.PathLike[str], g: Genesis) -> None:
    """Write ``g`` as a genesis TOML file."""
    import tomli_w

    Path(path).write_text(tomli_w.dumps(genesis_to_toml(g)))


# -- keys --------------------------------------------------------------------------------------


def read_key(path: Path) -> Keypair:
    """A keypair from a file holding its 32-byte seed in hex."""
    try:
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read a key from {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} does not hold a key: expected 64 hex digits") from None
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{path} does not hold a key: expected 64 hex digits") from None
    if len(seed) != 32:
        raise ConfigError(f"{path} does not hold a key: expected 64 hex digits, got {len(text)}")
    return Keypair.from_seed(seed)


def write_key(path: Path, kp: Keypair, *, exclusive: bool = False) -> None:
    """Write ``kp``'s seed (hex) readable by the owner only; with ``exclusive``, never over an
    existing file (ConfigError)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists; not overwriting a key file") from None
    except OSError as e:
        raise ConfigError(f"cannot write a key to {path}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(kp.seed.hex() + "\n")


def dev_keys(n: int) -> list[Keypair]:
    """Deterministic development accounts (never use them on a real network)."""
    import blake3

    return [
        Keypair.from_seed(
            blake3.blake3(i.to_bytes(4, "big"), derive_key_context="lazyledger dev key").digest()
        )
        for i in range(n)
    ]
