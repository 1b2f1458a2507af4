"""Attacks on the light client: hundreds of tampered accountant answers, made from real answers
of a real ledger (LMDB on disk), each refused with a VerificationError (never another
exception), while the honest answers verify.

The lies are the strongest kind: after omitting, inserting, reordering or duplicating
transactions, the claimed state (balances and nonce) is recomputed from the tampered slice, so
only the touch commitment can tell."""

from __future__ import annotations

import base64
import copy
import random
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import lazyledger as ll
from lazyledger.client import LightClient, StaleAnswer, VerificationError, verify_state
from lazyledger.model import Header, Transaction
from lazyledger.node.accountant import prove_slice, prove_state
from lazyledger.ops import Mint, Swap, Transfer, TransferIf, apply, balances_of, genesis_balances
from lazyledger.shards.merkle import proof as merkle_proof
from lazyledger.touches import decode_proof
from lazyledger.workloads import Workload

Answer = dict[str, Any]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ll.Ledger, Workload]]:
    wl = Workload("amm", n_accounts=12, n_shards=3, seed=11)
    with ll.Ledger.create(tmp_path_factory.mktemp("attacks") / "l", wl.genesis()) as led:
        for _ in wl.blocks(led, 8, 10):
            pass
        yield led, wl


def light(led: ll.Ledger) -> LightClient:
    lc = LightClient(led.genesis)
    lc.extend([led.header(h) for h in range(1, led.height + 1)])
    return lc


def tx_of(item: dict[str, Any]) -> Transaction:
    return Transaction.from_bytes(bytes.fromhex(item["tx"]))


def consistent(answer: Answer, genesis: ll.Genesis) -> Answer:
    """The answer with its claimed state recomputed from its (tampered) slice: a lie that
    the replay alone cannot notice."""
    account = bytes.fromhex(answer["account"])
    state = genesis_balances(genesis)
    sent = 0
    for item in answer["proof"]["txs"]:
        tx = tx_of(item)
        assert isinstance(tx.call, Transfer | Mint | Swap | TransferIf)
        apply(state, genesis, tx.sender, tx.call)
        sent += tx.sender == account and account in tx.access()
    answer["balances"] = {str(a): v for a, v in sorted(balances_of(state, account).items())}
    answer["nonce"] = sent
    return answer


def slice_item(led: ll.Ledger, position: tuple[int, int, int]) -> dict[str, Any]:
    h, s, i = position
    section = led.section(h, s)
    return {
        "position": [h, s, i],
        "tx": section[i].raw.hex(),
        "path": [p.hex() for p in merkle_proof([t.id for t in section], i)],
    }


def with_header(led: ll.Ledger, answer: Answer, height: int) -> None:
    have = {Header.from_bytes(bytes.fromhex(x)).height for x in answer["proof"]["headers"]}
    if height not in have:
        answer["proof"]["headers"].append(led.header(height).to_bytes().hex())


def attacks(led: ll.Ledger, wl: Workload) -> Iterator[tuple[str, int, Answer]]:
    """(what, asked height, tampered answer)."""
    g = led.genesis
    rng = random.Random(5)
    top = led.height
    everything = [(h, s, i) for h in range(1, top + 1) for s in range(g.n_shards)
                  for i in range(len(led.section(h, s)))]  # fmt: skip
    for kp in wl.keys[:6]:
        for h in (top // 2, top):
            honest = prove_state(led, kp.account, h)
            txs = honest["proof"]["txs"]
            for j in range(len(txs)):  # omit each transaction
                a = copy.deepcopy(honest)
                del a["proof"]["txs"][j]
                yield f"omit {j}", h, consistent(a, g)
            a = copy.deepcopy(honest)  # omit the account's latest sends, nonce lowered
            mine = [j for j, t in enumerate(txs) if tx_of(t).sender == kp.account]
            for j in reversed(mine[-2:]):
                del a["proof"]["txs"][j]
            if mine:
                yield "omit latest sends", h, consistent(a, g)
            a = copy.deepcopy(honest)  # omit every incoming payment
            a["proof"]["txs"] = [
                t
                for t in txs
                if tx_of(t).sender == kp.account or kp.account not in tx_of(t).access()
            ]
            if len(a["proof"]["txs"]) < len(txs):
                yield "omit incoming", h, consistent(a, g)
            inside = {tuple(t["position"]) for t in txs}
            outside = [p for p in everything if p not in inside and p[0] <= h]
            for p in rng.sample(outside, min(4, len(outside))):  # insert
                a = copy.deepcopy(honest)
                a["proof"]["txs"].append(slice_item(led, p))
                a["proof"]["txs"].sort(key=lambda t: tuple(t["position"]))
                with_header(led, a, p[0])
                yield f"insert {p}", h, consistent(a, g)
            for j in range(len(txs) - 1):  # reorder neighbours, duplicate
                a = copy.deepcopy(honest)
                t = a["proof"]["txs"]
                t[j], t[j + 1] = t[j + 1], t[j]
                yield f"reorder {j}", h, consistent(a, g)
                a = copy.deepcopy(honest)
                a["proof"]["txs"].insert(j, copy.deepcopy(txs[j]))
                yield f"duplicate {j}", h, a
            for old in range(0, h):  # an old answer replayed as the current one
                if led.slice(kp.account, old, use_checkpoints=False) == led.slice(
                    kp.account, h, use_checkpoints=False
                ):
                    continue  # nothing touched it since: the old answer is the current one
                stale = prove_state(led, kp.account, old)
                yield f"stale {old} as is", h, copy.deepcopy(stale)
                stale["height"] = h
                with_header(led, stale, h)
                yield f"stale {old} relabelled", h, stale
            yield from tampered_proofs(led, honest, h, rng)


def tampered_proofs(
    led: ll.Ledger, honest: Answer, h: int, rng: random.Random
) -> Iterator[tuple[str, int, Answer]]:
    """Swapped headers and corrupted touch proofs: hashes, counts, lengths and types."""
    a = copy.deepcopy(honest)
    other = 1 + (h % led.height)
    heads = a["proof"]["headers"]
    heads[-1] = led.header(other).to_bytes().hex()
    yield "swap the answer's header", h, a
    a = copy.deepcopy(honest)
    a["proof"]["headers"] = a["proof"]["headers"][:-1]
    yield "drop the answer's header", h, a
    touches = honest["proof"]["touches"]
    for k in range(len(touches)):
        edits: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
            ("count+1", _on_proof(lambda p: p.update(count=p["count"] + 1))),
            ("count-1", _on_proof(lambda p: p.update(count=p["count"] - 1))),
            ("count huge", _on_proof(lambda p: p.update(count=2**64 - 1))),
            ("path flip", _on_proof(lambda p: p["path"].__setitem__(3, b"\0" * 32))),
            ("path short", _on_proof(lambda p: p["path"].pop())),
            ("path 31", _on_proof(lambda p: p["path"].__setitem__(0, b"\x11" * 31))),
            ("right add", _on_proof(lambda p: p["right"].append(b"\x22" * 32))),
            ("bucket add", _on_proof(lambda p: p["bucket"].append([p["account"], 1, b"3" * 32]))),
            ("truncated", lambda t: t.update(proof=t["proof"][:-8])),
            ("trailing", lambda t: t.update(proof=_raw(base64.b64decode(t["proof"]) + b"\0"))),
            ("not base64", lambda t: t.update(proof="*" + t["proof"][1:])),
            ("proof type", lambda t: t.update(proof=[1, 2])),
            ("flip a byte", lambda t: t.update(proof=_flip(t["proof"]))),
            ("account", lambda t: t.update(account="55" * 32)),
            ("not an object", lambda t: t.clear()),
        ]
        decoded = _decode(touches[k])
        if decoded["right"]:
            edits.append(("right flip", _on_proof(lambda p: p["right"].__setitem__(0, b"f" * 32))))
            edits.append(("right drop", _on_proof(lambda p: p["right"].pop())))
        if decoded["bucket"]:
            edits.append(("bucket drop", _on_proof(lambda p: p["bucket"].pop())))
            edits.append(("bucket count", _on_proof(lambda p: p["bucket"][0].__setitem__(1, 7))))
        for name, edit in rng.sample(edits, 4):
            a = copy.deepcopy(honest)
            edit(a["proof"]["touches"][k])
            yield f"touch proof {k} {name}", h, a
        a = copy.deepcopy(honest)
        del a["proof"]["touches"][k]
        yield f"drop touch proof {k}", h, a
    a = copy.deepcopy(honest)
    a["proof"]["touches"].append(copy.deepcopy(touches[0]))
    yield "repeat a touch proof", h, a
    for value in (None, 3, "x", {}):
        a = copy.deepcopy(honest)
        a["proof"]["touches"] = value
        yield f"touches {value!r}", h, a


def _decode(t: dict[str, Any]) -> dict[str, Any]:
    count, right, others, path = decode_proof(t["proof"])
    bucket = [[x, n, r] for x, n, r in others]
    return {"account": bytes.fromhex(t["account"]), "count": count, "right": right,
            "bucket": bucket, "path": path}  # fmt: skip


def _raw(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _encode(p: dict[str, Any]) -> str:
    """The compact form of a (possibly tampered) decoded proof, written as the format says."""
    parts = [p["count"].to_bytes(8, "big"), bytes([len(p["right"])]), *p["right"]]
    parts.append(len(p["bucket"]).to_bytes(2, "big"))
    for x, n, r in p["bucket"]:
        parts += [x, n.to_bytes(8, "big"), r]
    return _raw(b"".join([*parts, *p["path"]]))


def _on_proof(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def run(t: dict[str, Any]) -> None:
        p = _decode(t)
        edit(p)
        t["proof"] = _encode(p)

    return run


def _flip(text: str) -> str:
    data = bytearray(base64.b64decode(text))
    at = zlib.crc32(text.encode()) % len(data)
    data[at] ^= 0x40
    return _raw(bytes(data))


def test_honest_answers_verify(chain: tuple[ll.Ledger, Workload]) -> None:
    led, wl = chain
    lc = light(led)
    everyone = led.replay_all()
    for kp in wl.keys:
        for h in range(led.height + 1):
            v = lc.verify_state(prove_state(led, kp.account, h), h)
            assert v.state.balances == led.state(kp.account, h).balances
        assert lc.verify_state(prove_state(led, kp.account)).state.balances == (
            everyone[kp.account].balances
        )
        positions = lc.verify_slice(prove_slice(led, kp.account))
        assert positions == led.slice(kp.account, use_checkpoints=False)


def test_every_tampered_answer_is_refused(chain: tuple[ll.Ledger, Workload]) -> None:
    led, wl = chain
    lc = light(led)
    kinds: dict[str, int] = {}
    for what, h, answer in attacks(led, wl):
        try:
            lc.verify_state(answer, h)
        except VerificationError as e:
            assert str(e)
        else:
            pytest.fail(f"accepted: {what} at height {h}")
        kinds[what.split()[0]] = kinds.get(what.split()[0], 0) + 1
    assert sum(kinds.values()) >= 300, kinds
    for kind in ("omit", "insert", "reorder", "duplicate", "stale", "touch", "swap"):
        assert kinds.get(kind), kind


def test_stale_answers_are_named(chain: tuple[ll.Ledger, Workload]) -> None:
    led, wl = chain
    lc = light(led)
    with pytest.raises(StaleAnswer):
        lc.verify_state(prove_state(led, wl.keys[0].account, 1))  # asked: the head
    # verify_state alone takes the answer's height as asked, and checks it against the header
    honest = prove_state(led, wl.keys[0].account, 1)
    assert verify_state(honest, lc, led.genesis).height == 1


def test_malformed_values_anywhere_are_verification_errors(
    chain: tuple[ll.Ledger, Workload],
) -> None:
    """Every leaf of a real answer replaced by values of the wrong type or shape."""
    led, wl = chain
    lc = light(led)
    honest = prove_state(led, wl.keys[1].account)

    def leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        yield path
        if isinstance(doc, dict):
            for k, v in doc.items():
                yield from leaves(v, (*path, k))
        elif isinstance(doc, list):
            for i, v in enumerate(doc[:3]):
                yield from leaves(v, (*path, i))

    count = 0
    for path in leaves(honest):
        if not path:
            continue
        for bad in (None, -1, 2**70, 1.5, True, "zz", "00", [], {}, [1, 2, 3]):
            a = copy.deepcopy(honest)
            target = a
            for step in path[:-1]:
                target = target[step]
            if target[path[-1]] == bad:
                continue
            target[path[-1]] = bad
            try:
                lc.verify_state(a)
            except VerificationError:
                count += 1
            else:
                pytest.fail(f"accepted {bad!r} at {path}")
    assert count > 200
