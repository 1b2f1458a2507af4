"""``lazyledger node ...`` (also ``python -m lazyledger.node ...``): init, run, status, and
client commands to submit transfers and query (optionally verified) state."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from lazyledger.cli import MAX_AMOUNT, Parser, hex32, int_in, run_main
from lazyledger.errors import LedgerError
from lazyledger.node import config as c
from lazyledger.shards import MAX_SHARDS

log = logging.getLogger("lazyledger.node")
DEFAULT_URL = f"http://127.0.0.1:{c.DEFAULT_PORT}"


def _datadir(args: argparse.Namespace) -> Path:
    return Path(args.datadir).expanduser()


# -- init --------------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    """Create a datadir: genesis.toml, the ledger, and (with --dev) a proposer key and funded
    development accounts."""
    from lazyledger.crypto import Keypair
    from lazyledger.ledger import Ledger
    from lazyledger.model import Genesis
    from lazyledger.ops.registry import adopt
    from lazyledger.validate import check_genesis

    datadir = _datadir(args)
    if (datadir / c.LEDGER_DIR).exists():
        print(f"{datadir} already holds a ledger", file=sys.stderr)
        return 2
    if args.genesis:
        genesis = c.read_genesis(Path(args.genesis))
        check_genesis(genesis)
        datadir.mkdir(parents=True, exist_ok=True)
    elif args.dev:
        key = Keypair.generate()
        accounts = c.dev_keys(args.accounts)
        genesis = Genesis(
            chain_id=args.chain_id,
            n_shards=args.shards,
            authorities=[key.public_key],
            assets={0: key.account},
            balances={kp.account: {0: 10**9} for kp in accounts},
        )
        check_genesis(genesis)  # before anything is written
        datadir.mkdir(parents=True, exist_ok=True)
        c.write_key(datadir / c.KEY_FILE, key)
        (datadir / "dev_keys").mkdir(exist_ok=True)
        for i, kp in enumerate(accounts):
            c.write_key(datadir / "dev_keys" / f"{i}.key", kp)
        (datadir / "dev_accounts.json").write_text(
            json.dumps([{"seed": kp.seed.hex(), "account": kp.account.hex()} for kp in accounts])
        )
    else:
        print("pass --genesis FILE or --dev", file=sys.stderr)
        return 2
    cfg = c.NodeConfig(datadir=datadir, ops=args.ops)
    adopt(genesis, cfg.op_specs())  # the ops the genesis declares, before anything is written
    c.write_genesis(datadir / c.GENESIS_FILE, genesis)
    Ledger.create(datadir / c.LEDGER_DIR, genesis, ops=cfg.op_specs()).close()
    if not (datadir / c.CONFIG_FILE).exists():
        c.write_config(cfg)
    print(
        json.dumps(
            {"datadir": str(datadir), "chain_id": genesis.chain_id, "genesis": genesis.id.hex()}
        )
    )
    return 0


# -- run ---------------------------------------------------------------------------------------


def _fetch_genesis(url: str, attempts: int = 60) -> Any:
    """The upstream's genesis (trust on first use), retrying while it starts."""
    import httpx

    from lazyledger.model import Genesis

    for _ in range(attempts):
        try:
            r = httpx.get(url.rstrip("/") + "/genesis", timeout=10.0)
            r.raise_for_status()
            return Genesis.from_bytes(bytes.fromhex(r.json()["genesis"]))
        except (httpx.HTTPError, ValueError, KeyError):
            time.sleep(1.0)
    raise c.ConfigError(f"could not fetch the genesis from {url}")


def _open_ledger(cfg: c.NodeConfig, genesis_file: str | None) -> Any:
    from lazyledger.ledger import Ledger
    from lazyledger.validate import check_genesis

    path = cfg.ledger_path
    wanted = c.read_genesis(Path(genesis_file)) if genesis_file else None
    if path.exists():
        led = Ledger.open(
            path,
            workers=cfg.workers,
            checkpoint_policy=cfg.policy(),
            checkpoint_background=True,
            ops=cfg.op_specs(),
        )
        if wanted is not None and wanted.id != led.genesis_id:
            led.close()
            raise c.ConfigError(f"{path} holds another chain than {genesis_file}")
        return led
    if wanted is None and cfg.follow:
        wanted = _fetch_genesis(cfg.follow)
        log.info("genesis fetched from upstream", extra={"genesis": wanted.id.hex()[:16]})
    if wanted is None:
        raise c.ConfigError(f"no ledger in {cfg.datadir}: run `lazyledger node init` first")
    check_genesis(wanted)  # before anything is written
    cfg.datadir.mkdir(parents=True, exist_ok=True)
    if not cfg.genesis_path.exists():
        c.write_genesis(cfg.genesis_path, wanted)
    return Ledger.create(
        path,
        wanted,
        workers=cfg.workers,
        checkpoint_policy=cfg.policy(),
        checkpoint_background=True,
        ops=cfg.op_specs(),
    )


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is logged or opened: a port in use is a
    one-line ConfigError, not a log line saying "listening" followed by a failure."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise c.ConfigError(f"cannot listen on {host}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        hint = " (another node? pick another --port)" if e.errno == errno.EADDRINUSE else ""
        raise c.ConfigError(f"cannot listen on {host}:{port}: {e.strerror}{hint}") from None
    sock.set_inheritable(True)
    return sock


def _serve(cfg: c.NodeConfig, genesis_file: str | None) -> int:
    import uvicorn

    from lazyledger.node.app import create_app
    from lazyledger.node.producer import AuthorityProducer
    from lazyledger.node.query import QueryPool
    from lazyledger.node.service import NodeService

    class Server(uvicorn.Server):
        """uvicorn, but a SIGINT/SIGTERM is a normal, graceful exit (status 0)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return

            def stop(sig: int, frame: FrameType | None) -> None:
                log.info("shutting down", extra={"signal": signal.Signals(sig).name})
                if self.should_exit and sig == signal.SIGINT:
                    self.force_exit = True
                self.should_exit = True

            old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in old.items():
                    signal.signal(s, handler)

    sock = _bind(cfg.host, cfg.port)
    try:
        ledger = _open_ledger(cfg, genesis_file)
    except BaseException:
        sock.close()
        raise
    key_file = cfg.resolved_key_file()
    producer = None
    if cfg.follow:
        mode = "follower"
    elif key_file is not None:
        key = c.read_key(key_file)
        if key.public_key not in ledger.genesis.authorities:
            ledger.close()
            sock.close()
            raise c.ConfigError(f"the key in {key_file} is not an authority of this chain")
        producer = AuthorityProducer(key)
        mode = "proposer"
    else:
        mode = "observer"
    service = NodeService(ledger, cfg, mode)
    queries = (
        QueryPool(cfg.datadir, cfg.query_workers, cfg.log_level, cfg.ops)
        if cfg.query_workers
        else None
    )
    app = create_app(service, producer, queries=queries)
    server = Server(
        uvicorn.Config(
            app,
            host=cfg.host,
            port=cfg.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            limit_concurrency=2048,
            backlog=2048,
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=64 << 10,
        )
    )
    log.info(
        "listening",
        extra={"host": cfg.host, "port": cfg.port, "mode": mode, "datadir": str(cfg.datadir)},
    )
    server.run(sockets=[sock])
    if not server.started:
        with contextlib.suppress(LedgerError):
            ledger.close()
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from lazyledger.node import logs

    overrides = {
        "host": args.host,
        "port": args.port,
        "follow": args.follow,
        "key_file": args.key,
        "block_interval": args.block_interval,
        "max_block_txs": args.max_block_txs,
        "mempool_size": args.mempool_size,
        "workers": args.workers,
        "checkpoint_policy": args.checkpoint_policy,
        "query_workers": args.query_workers,
        "ops": args.ops,
        "log_level": args.log_level,
        "allow_remote": True if args.allow_remote else None,
    }
    cfg = c.load_config(_datadir(args), overrides)
    logs.setup(cfg.log_level)
    return _serve(cfg, args.genesis)


# -- client commands ---------------------------------------------------------------------------


def _print(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True))


def _status(args: argparse.Namespace) -> int:
    from lazyledger.client import Client

    with Client(args.node) as cl:
        _print(cl.status())
    return 0


def _transfer(args: argparse.Namespace) -> int:
    """Sign and submit a transfer; by default wait until it is in a block and print its
    receipt (exit 1 if it failed there), with ``--async`` print its hash once accepted."""
    from lazyledger.client import Client

    kp = c.read_key(Path(args.key))
    with Client(args.node) as cl:
        tx_id = cl.transfer(kp, args.to, args.asset, args.amount)
        doc: dict[str, Any] = {"hash": tx_id.hex(), "from": kp.account.hex()}
        if args.async_:
            _print({**doc, "included": False})
            print(
                "accepted into the mempool, not yet in a block; a transfer above the balance "
                "still fails there (see lazyledger node receipt --id <hash>)",
                file=sys.stderr,
            )
            return 0
        r = cl.wait_receipt(tx_id, args.timeout)
    _print({**doc, "included": True, **_receipt_doc(r)})
    if not r.applied:
        print(f"error: the transfer is in a block but failed: {r.reason}", file=sys.stderr)
        return 1
    return 0


def _receipt_doc(r: Any) -> dict[str, Any]:
    pos = list(r.position) if r.position is not None else None
    return {
        "height": pos[0] if pos else None,
        "position": pos,
        "applied": r.applied,
        "reason": r.reason,
    }


def _receipt(args: argparse.Namespace) -> int:
    """Print a transaction's receipt; exit 0 if it applied, 1 if it failed."""
    from lazyledger.client import Client

    with Client(args.node) as cl:
        r = cl.wait_receipt(args.id, args.wait) if args.wait else cl.receipt(args.id)
    _print({"hash": args.id.hex(), **_receipt_doc(r)})
    return 0 if r.applied else 1


def _state(args: argparse.Namespace) -> int:
    from lazyledger.client import Client, LightClient

    account: bytes = args.account
    with Client(args.node) as cl:
        if args.verify:
            genesis = c.read_genesis(Path(args.verify))
            v = LightClient(genesis).state(cl, account, args.height)
            _print(
                {
                    "account": account.hex(),
                    "height": v.height,
                    "nonce": v.state.nonce,
                    "balances": v.state.balances,
                    "verified": True,
                    "nonce_verified": v.nonce_verified,
                    "slice_txs": v.slice_txs,
                }
            )
        else:
            st = cl.state(account, args.height)
            _print({"account": account.hex(), "nonce": st.nonce, "balances": st.balances})
    return 0


def _key_doc(path: Path, kp: Any) -> dict[str, str]:
    return {"file": str(path), "public_key": kp.public_key.hex(), "account": kp.account.hex()}


def _keys_generate(args: argparse.Namespace) -> int:
    """Write a new key (its seed, owner-readable only) to a file that must not exist yet."""
    from lazyledger.crypto import Keypair

    path = Path(args.out).expanduser()
    kp = Keypair.generate()
    c.write_key(path, kp, exclusive=True)
    _print(_key_doc(path, kp))
    return 0


def _keys_show(args: argparse.Namespace) -> int:
    """Print a key file's public key and account (never its seed)."""
    path = Path(args.key).expanduser() if args.key else _datadir(args) / c.KEY_FILE
    _print(_key_doc(path, c.read_key(path)))
    return 0


def _tx(args: argparse.Namespace) -> int:
    from lazyledger.client import Client

    with Client(args.node) as cl:
        doc = cl.transaction_info(args.id)
    doc.pop("raw", None)
    _print({**doc, "height": doc["position"][0]})
    return 0


def _block(args: argparse.Namespace) -> int:
    """Print a block's header and its transactions (ids, senders, nonces, operations)."""
    from lazyledger.client import Client

    with Client(args.node) as cl:
        doc = cl.block_info(args.height)
    header = {k: v for k, v in doc["header"].items() if k != "raw"}
    txs = [
        {"id": t["id"], "position": [header["height"], s, i], "sender": t["sender"],
         "nonce": t["nonce"], "op": t["op"]}
        for s, sec in enumerate(doc["sections"])
        for i, t in enumerate(sec)
    ]  # fmt: skip
    _print({"header": header, "num_txs": len(txs), "txs": txs})
    return 0


def _nonce(args: argparse.Namespace) -> int:
    from lazyledger.client import Client

    with Client(args.node) as cl:
        _print(cl.nonces(args.account))
    return 0


# -- parsers -----------------------------------------------------------------------------------


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report ledger, configuration and connection errors in one line (exit status 2)."""

    def run(args: argparse.Namespace) -> int:
        import httpx

        try:
            return fn(args)
        except httpx.HTTPError as e:
            where = f" at {args.node}" if getattr(args, "node", None) else ""
            print(f"error: cannot reach the node{where}: {e}", file=sys.stderr)
            return 2
        except LedgerError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    return run


def _url(value: str) -> str:
    """A node URL: http(s)://host[:port]."""
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(f"expected http://HOST:PORT, got {value!r}")
    return value


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not 0 < seconds <= 86_400:
        raise argparse.ArgumentTypeError(f"must be in (0, 86400] seconds, got {value}")
    return seconds


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A command that only prints ``parser``'s help (a group called without a subcommand)."""

    def usage(_: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return usage


def build(parser: argparse.ArgumentParser) -> None:
    """Add the node subcommands to ``parser``."""

    parser.set_defaults(func=_usage(parser))
    sub = parser.add_subparsers(dest="node_command")
    datadir = argparse.ArgumentParser(add_help=False)
    datadir.add_argument(
        "--datadir", default=str(c.DEFAULT_DATADIR), help="node directory (%(default)s)"
    )
    node = argparse.ArgumentParser(add_help=False)
    node.add_argument("--node", type=_url, default=DEFAULT_URL, help="node URL (%(default)s)")

    p = sub.add_parser("init", parents=[datadir], help="create a datadir and its ledger")
    p.add_argument("--genesis", help="genesis TOML file")
    p.add_argument("--dev", action="store_true", help="new proposer key and funded dev accounts")
    p.add_argument(
        "--accounts", type=int_in(0, 100_000), default=16, help="dev accounts (with --dev)"
    )
    p.add_argument("--ops", help="module:NAME of the embedder OpSpecs the genesis declares")
    p.add_argument("--chain-id", default="lazyledger-dev")
    p.add_argument("--shards", type=int_in(1, MAX_SHARDS), default=4)
    p.set_defaults(func=_guarded(_init))

    p = sub.add_parser("run", parents=[datadir], help="run a node (proposer or --follow URL)")
    p.add_argument("--genesis", help="genesis TOML (creates the ledger if the datadir is new)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"listen port (default {c.DEFAULT_PORT})")
    p.add_argument("--follow", type=_url, help="upstream node URL: run as a follower")
    p.add_argument("--key", help="proposer key file (default <datadir>/node_key if present)")
    p.add_argument("--block-interval", type=float, help="seconds between blocks (0.5)")
    p.add_argument("--max-block-txs", type=int, help="cut a block at this many txs (5000)")
    p.add_argument("--mempool-size", type=int, help="pending transactions before 429 (50000)")
    p.add_argument("--workers", type=int, help="signature-check threads")
    p.add_argument(
        "--checkpoint-policy",
        help="'epochs:EVERY' or 'hubs:TOP:EVERY': checkpoints written in the background",
    )
    p.add_argument(
        "--query-workers",
        type=int_in(0, c.MAX_QUERY_WORKERS),
        help="processes answering the query routes with read-only handles (0)",
    )
    p.add_argument("--ops", help="module:NAME of the embedder OpSpecs the genesis declares")
    p.add_argument("--log-level", choices=c.LOG_LEVELS, help="(info)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.set_defaults(func=_guarded(_run))

    p = sub.add_parser("status", parents=[node], help="a running node's status")
    p.set_defaults(func=_guarded(_status))

    p = sub.add_parser(
        "transfer",
        parents=[node],
        help="sign and submit a transfer, wait for its block and print its receipt",
        description="Sign a transfer with the sender's next nonce and submit it. By default, "
        "wait until it is in a block and print its receipt: exit 0 if it applied, 1 if it "
        "failed (e.g. above the balance), 2 on an error or when --timeout passes first. With "
        "--async, print its hash as soon as the node accepts it: acceptance is not inclusion.",
    )
    p.add_argument("--key", required=True, help="file holding the sender's seed (hex)")
    p.add_argument(
        "--to", required=True, type=hex32, help="recipient account: 64 hex digits (0x optional)"
    )
    p.add_argument("--amount", type=int_in(1, MAX_AMOUNT), required=True)
    p.add_argument("--asset", type=int_in(0, 2**32 - 1), default=0)
    p.add_argument(
        "--async",
        dest="async_",
        action="store_true",
        help="do not wait for a block: print the hash once the node accepts the transaction",
    )
    p.add_argument(
        "--timeout", type=_seconds, default=30.0, help="seconds to wait for a block (%(default)s)"
    )
    p.set_defaults(func=_guarded(_transfer))

    p = sub.add_parser("receipt", parents=[node], help="whether a transaction applied")
    p.add_argument(
        "--id", required=True, type=hex32, help="transaction hash: 64 hex digits (0x optional)"
    )
    p.add_argument("--wait", type=_seconds, help="wait up to this many seconds for its block")
    p.set_defaults(func=_guarded(_receipt))

    keys = sub.add_parser("keys", help="generate a key file, or show a key file's account")
    keys.set_defaults(func=_usage(keys))
    keys_sub = keys.add_subparsers(dest="keys_command")
    p = keys_sub.add_parser(
        "generate",
        help="write a new key to a file (never over an existing one)",
        description="Generate an Ed25519 key and write its seed (hex, readable by the owner "
        "only) to --out, which must not exist. Prints the file, public key and account.",
    )
    p.add_argument("--out", required=True, help="key file to create")
    p.set_defaults(func=_guarded(_keys_generate))
    p = keys_sub.add_parser(
        "show",
        parents=[datadir],
        help="print a key file's public key and account (not its seed)",
    )
    p.add_argument("--key", help="key file (default: <datadir>/node_key)")
    p.set_defaults(func=_guarded(_keys_show))

    p = sub.add_parser("tx", parents=[node], help="a transaction: position, sender, nonce, call")
    p.add_argument(
        "--id", required=True, type=hex32, help="transaction hash: 64 hex digits (0x optional)"
    )
    p.set_defaults(func=_guarded(_tx))

    p = sub.add_parser("block", parents=[node], help="a block's header and transactions")
    p.add_argument(
        "--height", type=int_in(1, 2**63 - 1), help="block height (default: the head block)"
    )
    p.set_defaults(func=_guarded(_block))

    p = sub.add_parser(
        "nonce", parents=[node], help="an account's committed nonce and its next one"
    )
    p.add_argument(
        "--account", required=True, type=hex32, help="account id: 64 hex digits (0x optional)"
    )
    p.set_defaults(func=_guarded(_nonce))

    p = sub.add_parser("state", parents=[node], help="an account's state")
    p.add_argument(
        "--account", required=True, type=hex32, help="account id: 64 hex digits (0x optional)"
    )
    p.add_argument("--height", type=int_in(0, 2**63 - 1))
    p.add_argument("--verify", metavar="GENESIS_TOML", help="verify as a light client")
    p.set_defaults(func=_guarded(_state))


def add_parser(subparsers: Any) -> None:
    """Contribute ``node`` to the ``lazyledger`` command line."""
    build(subparsers.add_parser("node", help="run or query a reference node"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python -m lazyledger.node", description=__doc__)
    build(parser)
    args = parser.parse_args(argv)
    return run_main(lambda: int(args.func(args)))
