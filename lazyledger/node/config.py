"""Node configuration: a datadir holding ``config.toml`` (``[node]`` table), ``genesis.toml``,
an optional proposer key, and the ledger itself. Command-line flags override the file."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from lazyledger.crypto import Keypair
from lazyledger.errors import InvalidGenesis, LedgerError
from lazyledger.model import Genesis

DEFAULT_DATADIR = Path.home() / ".lazyledger" / "node"
DEFAULT_PORT = 26657
CONFIG_FILE = "config.toml"
GENESIS_FILE = "genesis.toml"
KEY_FILE = "node_key"
LEDGER_DIR = "ledger"
LOG_LEVELS = ("debug", "info", "warning", "error")


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


_FIELDS = {f.name: f for f in attrs.fields(NodeConfig)}


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
            table = tomllib.loads(path.read_text()).get("node", {})
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: {e}") from None
        for key, value in table.items():
            if key not in _FIELDS or key == "datadir":
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = value
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    cfg = NodeConfig(datadir=datadir, **{k: _coerce(k, v) for k, v in values.items()})
    cfg.check()
    return cfg


def write_config(cfg: NodeConfig) -> None:
    """Write the non-default settings of ``cfg`` to ``<datadir>/config.toml``."""
    import tomli_w

    default = NodeConfig()
    table = {
        name: str(value) if isinstance(value, Path) else value
        for name in _FIELDS
        if name != "datadir"
        and (value := getattr(cfg, name)) is not None
        and value != getattr(default, name)
    }
    (cfg.datadir / CONFIG_FILE).write_text(tomli_w.dumps({"node": table}))


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

    chain_id = "local"; n_shards = 4; authorities = ["<pubkey hex>"]
    [assets] 0 = "<issuer account hex>"
    [balances.<account hex>] 0 = 1000000
    [pools.<pool hex>] assets = [0, 1]"""
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
    }


def read_genesis(path: Path) -> Genesis:
    try:
        return genesis_from_toml(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as e:
        raise InvalidGenesis(f"{path}: {e}") from None


def write_genesis(path: Path, g: Genesis) -> None:
    import tomli_w

    path.write_text(tomli_w.dumps(genesis_to_toml(g)))


# -- keys --------------------------------------------------------------------------------------


def read_key(path: Path) -> Keypair:
    """A keypair from a file holding its 32-byte seed in hex."""
    try:
        return Keypair.from_seed(bytes.fromhex(path.read_text().strip()))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read a key from {path}: {e}") from None


def write_key(path: Path, kp: Keypair) -> None:
    """Write ``kp``'s seed (hex) readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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
