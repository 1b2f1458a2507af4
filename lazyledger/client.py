"""A Python client for the reference node (on httpx), and the light client that checks the
accountant's answers without downloading the chain.

An accountant answer (``GET /state?account=..&proof=1``) is JSON::

    {"account": hex, "height": h, "nonce": n, "balances": {"<asset>": int}, "storage": {},
     "proof": {"genesis_id": hex,
               "headers": [hex canonical header bytes, ...],      # every height used, and h
               "txs": [{"position": [h, s, i], "tx": hex canonical tx bytes,
                        "path": [hex, ...]}, ...]}}               # global order

:func:`verify_state` checks, against a genesis and headers the caller trusts: every header
(authority, proposer signature, identity with the trusted header at its height), every
transaction (Merkle inclusion at its position, shard placement, form, signature), the nonce
discipline of the senders in the slice, and finally replays the slice with the normative
:func:`lazyledger.ops.apply` from genesis balances and compares with the claimed state.

Completeness limitation: block headers commit to the *transactions* of each shard section, not
to an index of which accounts each one touches, so a light client cannot prove that no
transaction was left out of a slice. What it can check is done: an omitted *debit* by any
sender in the slice (including the account itself) breaks that sender's nonce sequence and is
refused, and any omission that changes the replayed result without a matching lie in the
claimed state is refused. An accountant that omits a *credit* and adjusts the claimed state
accordingly is not detected; closing that gap needs a per-shard commitment to the touch index
in the header (see the node's documentation). Issuers (who can send mints that do not touch
themselves) are exempt from the nonce check, and their own nonce is reported unverified.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import httpx

from lazyledger.crypto import Keypair, verify
from lazyledger.errors import InvalidBlock, InvalidTransaction, LedgerError
from lazyledger.model import AccountState, Block, Genesis, Header, Receipt, Transaction
from lazyledger.ops import REGISTRY, Context, OpSpec, balances_of, genesis_balances
from lazyledger.ops.registry import adopt
from lazyledger.shards import pack_position, shard_of
from lazyledger.shards.merkle import verify as verify_path
from lazyledger.touches import MAX_COUNT, check_account, decode_proof
from lazyledger.transactions import transfer
from lazyledger.validate import Validator

# -- errors ------------------------------------------------------------------------------------


class NodeError(LedgerError):
    """The node answered with an error; ``status`` is the HTTP code, ``kind`` its error type."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        self.status, self.kind, self.message = status, kind, message
        super().__init__(f"node answered {status} {kind}: {message}")


class NotIncluded(LedgerError):
    """A transaction the node acknowledged is not in a block within the time waited for it."""

    def __init__(self, tx_id: bytes, waited: float) -> None:
        self.tx_id, self.waited = tx_id, waited
        super().__init__(
            f"transaction {tx_id.hex()} was accepted but is not in a block after {waited:g} s; "
            "it may still be included (lazyledger node receipt --id <hash>)"
        )


class VerificationError(LedgerError):
    """An accountant answer failed light-client verification; never trust its state."""


class MalformedAnswer(VerificationError):
    """The answer does not have the documented shape."""


class BadHeader(VerificationError):
    """A header is not signed by an authority, or is not the trusted header at its height."""


class BadProof(VerificationError):
    """A transaction is not proven to be at its claimed position."""


class IncompleteSlice(VerificationError):
    """The slice is not proven complete: a touch proof fails, or a sender's nonces have a gap."""


class StateMismatch(VerificationError):
    """Replaying the proven slice does not give the claimed state."""


class ExtraTransaction(VerificationError):
    """The slice holds a transaction the account's state does not depend on."""


class StaleAnswer(VerificationError):
    """The answer is for another height than the one asked for."""


class Unverifiable(VerificationError):
    """The slice holds operations a light client cannot replay (private or DNN calls)."""


# -- verification ------------------------------------------------------------------------------

TrustedHeaders = Mapping[int, Header] | Callable[[int], Header]


@attrs.frozen
class VerifiedState:
    """A state that passed :func:`verify_state`; ``nonce_verified`` is False for issuers."""

    account: bytes
    height: int
    state: AccountState
    slice_txs: int
    nonce_verified: bool


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedAnswer(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedAnswer(f"{what} is not hex") from None


def _trusted(source: TrustedHeaders, height: int) -> Header:
    try:
        found = source[height] if isinstance(source, Mapping) else source(height)
    except (KeyError, LookupError):
        raise BadHeader(f"no trusted header at height {height}") from None
    if not isinstance(found, Header):
        raise BadHeader(f"the trusted source gave no header at height {height}")
    return found


def _holdings(value: Any, what: str) -> dict[int, int]:
    if not isinstance(value, dict):
        raise MalformedAnswer(f"{what} must be an object")
    try:
        return {int(k): int(v) for k, v in value.items() if int(v)}
    except (TypeError, ValueError):
        raise MalformedAnswer(f"{what} must map asset ids to integers") from None


def _position(value: Any) -> tuple[int, int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or any(not isinstance(x, int) or isinstance(x, bool) for x in value)
    ):
        raise MalformedAnswer("a position must be [height, shard, index] integers")
    return value[0], value[1], value[2]


def _proof_hashes(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise MalformedAnswer(f"{what} must be a list of hex hashes")
    out = [_hex(v, what) for v in value]
    if any(len(h) != 32 for h in out):
        raise MalformedAnswer(f"{what} holds a hash that is not 32 bytes")
    return out


@attrs.frozen
class _TouchProof:
    count: int
    right: list[bytes]
    others: list[tuple[bytes, int, bytes]]
    path: list[bytes]


def _touch_proofs(raw: Any) -> dict[bytes, _TouchProof]:
    if not isinstance(raw, list):
        raise MalformedAnswer("proof.touches must be a list")
    found: dict[bytes, _TouchProof] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise MalformedAnswer("a touch proof must be an object")
        try:
            account = _hex(item["account"], "touch proof account")
            count, right, others, path = decode_proof(item["proof"])
        except KeyError as e:
            raise MalformedAnswer(f"a touch proof lacks {e}") from None
        except ValueError as e:
            raise MalformedAnswer(str(e)) from None
        if len(account) != 32:
            raise MalformedAnswer("a touch proof's account must be 32 bytes")
        if count > MAX_COUNT or any(n > MAX_COUNT for _, n, _ in others):
            raise MalformedAnswer(f"a touch count above {MAX_COUNT}")
        if account in found:
            raise BadProof(f"two touch proofs for account {account.hex()[:16]}")
        found[account] = _TouchProof(count, right, others, path)
    return found


@attrs.frozen
class _Proven:
    """What :func:`_check_proof` established: the slice's transactions and positions."""

    txs: list[Transaction]
    positions: list[tuple[int, int, int]]


def _check_proof(
    account: bytes, height: int, proof: Any, trusted: TrustedHeaders, genesis: Genesis
) -> _Proven:
    """Headers, inclusion of each transaction, and completeness and minimality of the slice
    (touch proofs against the ``touch_root`` of the header at ``height``)."""
    if not isinstance(proof, dict):
        raise MalformedAnswer("proof must be an object")
    try:
        genesis_id = _hex(proof["genesis_id"], "genesis_id")
        raw_headers = proof["headers"]
        raw_txs = proof["txs"]
        raw_touches = proof["touches"]
    except KeyError as e:
        raise MalformedAnswer(f"proof lacks {e}") from None
    if not isinstance(raw_headers, list) or not isinstance(raw_txs, list):
        raise MalformedAnswer("proof.headers and proof.txs must be lists")
    if genesis_id != genesis.id:
        raise BadHeader("the answer is for another genesis")
    authorities = set(genesis.authorities)
    headers: dict[int, Header] = {}
    for raw in raw_headers:
        try:
            header = Header.from_bytes(_hex(raw, "header"))
        except InvalidBlock as e:
            raise MalformedAnswer(f"undecodable header: {e}") from None
        if header.chain_id != genesis.chain_id or header.height in headers:
            raise BadHeader(f"header {header.height} is for another chain or repeated")
        if header.proposer not in authorities or not verify(
            header.proposer, header.body, header.signature
        ):
            raise BadHeader(f"header {header.height} is not signed by an authority")
        if _trusted(trusted, header.height).id != header.id:
            raise BadHeader(f"header {header.height} is not the trusted header at that height")
        headers[header.height] = header
    if height < 0 or (height > 0 and height not in headers):
        raise BadHeader(f"the answer does not include the header at its height {height}")

    validator = Validator(genesis, workers=1)
    txs: list[Transaction] = []
    positions: list[tuple[int, int, int]] = []
    last = -1
    for item in raw_txs:
        try:
            bh, s, i = _position(item["position"])
            tx = Transaction.from_bytes(_hex(item["tx"], "tx"))
            path = _proof_hashes(item["path"], "path")
        except InvalidTransaction as e:
            raise BadProof(f"undecodable slice transaction: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedAnswer(f"slice entry lacks or mistypes {e}") from None
        found = headers.get(bh)
        if found is None or not 1 <= bh <= height or not 0 <= s < genesis.n_shards:
            raise BadProof(f"transaction at {(bh, s, i)} has no header in the answer")
        if not 0 <= i <= 0xFFFFF:
            raise BadProof(f"transaction index {i} out of range")
        header = found
        packed = pack_position(bh, s, i)
        if packed <= last:
            raise BadProof(f"slice positions are not in strictly increasing order at {bh, s, i}")
        last = packed
        if not verify_path(header.shard_roots[s], tx.id, i, header.shard_counts[s], path):
            raise BadProof(f"transaction {tx.id.hex()[:16]} is not proven at {(bh, s, i)}")
        if shard_of(tx.sender, genesis.n_shards) != s:
            raise BadProof(f"transaction {tx.id.hex()[:16]} is in the wrong shard")
        try:
            validator.check_transaction(tx)
        except InvalidTransaction as e:
            raise BadProof(f"transaction {tx.id.hex()[:16]} is invalid: {e}") from None
        txs.append(tx)
        positions.append((bh, s, i))

    # completeness: for every account the slice touches (and the account asked for), the
    # slice's touches are the first ones of its committed touch list, all of them for the
    # account asked for
    touched: dict[bytes, list[int]] = {account: []}
    for tx, pos in zip(txs, positions, strict=True):
        for a in dict.fromkeys(tx.access()):
            touched.setdefault(a, []).append(pack_position(*pos))
    touches = _touch_proofs(raw_touches)
    if height > 0:
        touch_root = headers[height].touch_root
        for a in sorted(touched):
            tp = touches.pop(a, None)
            if tp is None:
                raise IncompleteSlice(f"the answer has no touch proof for account {a.hex()[:16]}")
            problem = check_account(
                touch_root, a, touched[a], tp.count, tp.right, tp.others, tp.path
            )
            if problem is not None:
                raise IncompleteSlice(
                    f"the slice's {len(touched[a])} touches of account {a.hex()[:16]} are not "
                    f"proven the first of its touch list at height {height}: {problem}"
                )
            if a == account and tp.count != len(touched[a]):
                raise IncompleteSlice(
                    f"the slice holds {len(touched[a])} of the {tp.count} transactions that "
                    f"touch account {a.hex()[:16]} up to height {height}"
                )
    if touches:
        raise BadProof(
            f"touch proofs for {len(touches)} accounts the slice does not touch "
            f"({next(iter(touches)).hex()[:16]}...)"
        )
    # minimality: walking back from the end, each transaction must meet an account whose
    # state a later one (or the answer) needs
    need = {account}
    for tx, pos in zip(reversed(txs), reversed(positions), strict=True):
        access = tx.access()
        if need.isdisjoint(access):
            raise ExtraTransaction(
                f"transaction {tx.id.hex()[:16]} at {pos} is not in the slice of "
                f"{account.hex()[:16]}: nothing after it needs the accounts it touches"
            )
        need.update(access)
    return _Proven(txs, positions)


def _answer_head(answer: Any) -> tuple[bytes, int, Any]:
    if not isinstance(answer, Mapping):
        raise MalformedAnswer("the answer must be an object")
    try:
        account = _hex(answer["account"], "account")
        height = answer["height"]
        proof = answer["proof"]
    except KeyError as e:
        raise MalformedAnswer(f"answer lacks {e}") from None
    if len(account) != 32 or not isinstance(height, int) or isinstance(height, bool):
        raise MalformedAnswer("account must be 32 bytes and height an integer")
    return account, height, proof


def verify_state(
    answer: Mapping[str, Any], trusted: TrustedHeaders, genesis: Genesis
) -> VerifiedState:
    """Check an accountant answer; return the verified state or raise a VerificationError.

    ``trusted`` gives the header the caller trusts at a height (a mapping, or a function such
    as a synced :class:`HeaderChain` or :class:`LightClient`). The answer's height is taken as
    asked: :meth:`LightClient.verify_state` also checks it is the height the caller wanted."""
    account, height, proof = _answer_head(answer)
    try:
        nonce = answer["nonce"]
        claimed = _holdings(answer["balances"], "balances")
        storage = _holdings(answer.get("storage", {}), "storage")
    except KeyError as e:
        raise MalformedAnswer(f"answer lacks {e}") from None
    if not isinstance(nonce, int) or isinstance(nonce, bool):
        raise MalformedAnswer("nonce must be an integer")
    proven = _check_proof(account, height, proof, trusted, genesis)
    txs = proven.txs
    for tx in txs:
        if tx.call.OP not in REGISTRY.light:
            light = ", ".join(REGISTRY.specs[c].name for c in sorted(REGISTRY.light))
            raise Unverifiable(
                f"transaction {tx.id.hex()[:16]} is a {type(tx.call).__name__} call; "
                f"a light client replays only {light}"
            )

    issuers = set(genesis.assets.values())
    sent: dict[bytes, list[int]] = {}
    for tx in txs:
        if tx.sender in tx.access():
            sent.setdefault(tx.sender, []).append(tx.nonce)
    for sender, nonces in sent.items():
        if sender not in issuers and nonces != list(range(len(nonces))):
            raise IncompleteSlice(
                f"sender {sender.hex()[:16]} shows nonces {nonces[:8]}: "
                "transactions it sent are missing from the slice"
            )
    nonce_verified = account not in issuers
    if nonce_verified and nonce != len(sent.get(account, [])):
        raise StateMismatch(
            f"claimed nonce {nonce}, but the slice holds {len(sent.get(account, []))} "
            "transactions sent by the account"
        )

    state = genesis_balances(genesis)
    for tx in txs:
        REGISTRY.apply(state, Context(genesis, tx.sender, tx.id), tx.call)
    replayed = balances_of(state, account)
    if replayed != claimed or storage:
        raise StateMismatch(
            f"replaying {len(txs)} proven transactions gives {replayed}, the answer claims "
            f"{claimed} (storage {storage})"
        )
    return VerifiedState(account, height, AccountState(nonce, replayed), len(txs), nonce_verified)


def verify_slice(
    answer: Mapping[str, Any], trusted: TrustedHeaders, genesis: Genesis
) -> list[tuple[int, int, int]]:
    """Check a ``/slice?proof=1`` answer: its positions are exactly the account's complete
    slice (from genesis) at its height. Returns the positions."""
    account, height, proof = _answer_head(answer)
    proven = _check_proof(account, height, proof, trusted, genesis)
    claimed = answer.get("positions")
    if (
        not isinstance(claimed, list)
        or [tuple(p) if isinstance(p, list) else p for p in claimed] != proven.positions
    ):
        raise BadProof("the answer's positions are not the proven slice's")
    return proven.positions


class HeaderChain:
    """Headers a light client has verified from genesis: authority signature and parent
    linkage of each one. Use it as the ``trusted`` source of :func:`verify_state`."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.headers: list[Header] = []
        self._authorities = set(genesis.authorities)

    @property
    def height(self) -> int:
        return len(self.headers)

    def __call__(self, height: int) -> Header:
        if not 1 <= height <= len(self.headers):
            raise LookupError(height)
        return self.headers[height - 1]

    def extend(self, headers: Sequence[Header]) -> None:
        """Append headers that extend the chain; BadHeader (nothing appended) otherwise."""
        parent = self.headers[-1].id if self.headers else self.genesis.id
        parent_time = self.headers[-1].time_ms if self.headers else 0
        checked: list[Header] = []
        for header in headers:
            expected = len(self.headers) + len(checked) + 1
            if expected == 1 and header.height == 1 and header.parent != parent:
                raise BadHeader(
                    f"header 1 is on another chain: its parent is genesis "
                    f"{header.parent.hex()[:16]}, the trusted genesis is {parent.hex()[:16]}"
                )
            if header.height != expected or header.parent != parent:
                raise BadHeader(f"header {header.height} does not extend height {expected - 1}")
            if header.chain_id != self.genesis.chain_id:
                raise BadHeader(f"header {header.height} is for chain {header.chain_id!r}")
            if header.time_ms < parent_time:
                raise BadHeader(f"header {header.height} is dated before its parent")
            if header.proposer not in self._authorities or not verify(
                header.proposer, header.body, header.signature
            ):
                raise BadHeader(f"header {header.height} is not signed by an authority")
            checked.append(header)
            parent, parent_time = header.id, header.time_ms
        self.headers.extend(checked)

    def sync(self, client: Client, batch: int = 500) -> int:
        """Fetch and verify headers up to the node's head; returns the new height."""
        status = client.status()
        if status.get("genesis_id") != self.genesis.id.hex():
            raise BadHeader(
                f"the node at {client.url} runs another chain (genesis "
                f"{str(status.get('genesis_id'))[:16]}, chain {status.get('chain_id')!r}) than "
                f"the trusted genesis {self.genesis.id.hex()[:16]} ({self.genesis.chain_id!r})"
            )
        head = int(status["height"])
        while self.height < head:
            self.extend(client.headers(self.height + 1, min(head, self.height + batch)))
        return self.height


class LightClient:
    """A light client: headers it trusts, and verification of any accountant's answers.

    It starts from genesis (``LightClient(genesis)``) or from one header the caller trusts
    (``LightClient(genesis, trusted=header)``). Headers are added forward (:meth:`extend`:
    each one signed by an authority, linked to its parent, one height up, not dated before its
    parent) or backward from the lowest trusted one (:meth:`extend_back`: each one the parent
    its child names). :meth:`verify_state` refuses an answer for another height than the one
    asked (by default, the highest trusted height: an old answer replayed as the current one is
    refused), one whose headers are not the trusted ones, and one whose slice is not proven
    complete and minimal against the ``touch_root`` of the trusted header at that height.
    A chain with embedder-defined ops needs them (``ops=``, as ``Ledger.open`` does) to decode
    and replay its slices."""

    def __init__(
        self, genesis: Genesis, trusted: Header | None = None, ops: Sequence[OpSpec] | None = None
    ) -> None:
        adopt(genesis, ops)
        self.genesis = genesis
        self._authorities = set(genesis.authorities)
        self._headers: dict[int, Header] = {}
        self._low = self._high = 0
        if trusted is not None:
            if not isinstance(trusted, Header) or trusted.height < 1:
                raise BadHeader("the trusted header must be a Header at height 1 or more")
            self._check(trusted)
            self._headers[trusted.height] = trusted
            self._low = self._high = trusted.height

    @property
    def height(self) -> int:
        """The highest trusted height (0: only genesis)."""
        return self._high

    @property
    def lowest(self) -> int:
        """The lowest trusted height (1 once the chain down to genesis is trusted)."""
        return self._low if self._headers else 1

    def __call__(self, height: int) -> Header:
        found = self._headers.get(height)
        if found is None:
            raise LookupError(height)
        return found

    def _check(self, header: Header) -> None:
        if header.chain_id != self.genesis.chain_id:
            raise BadHeader(f"header {header.height} is for chain {header.chain_id!r}")
        if header.proposer not in self._authorities or not verify(
            header.proposer, header.body, header.signature
        ):
            raise BadHeader(f"header {header.height} is not signed by an authority")

    def extend(self, headers: Sequence[Header]) -> None:
        """Trust headers that extend the highest trusted one; BadHeader (nothing trusted) if
        one does not."""
        top = self._headers.get(self._high)
        parent = top.id if top is not None else self.genesis.id
        parent_time = top.time_ms if top is not None else 0
        checked: list[Header] = []
        for header in headers:
            expected = self._high + len(checked) + 1
            if not isinstance(header, Header):
                raise BadHeader("not a header")
            if header.height != expected or header.parent != parent:
                raise BadHeader(f"header {header.height} does not extend height {expected - 1}")
            if header.time_ms < parent_time:
                raise BadHeader(f"header {header.height} is dated before its parent")
            self._check(header)
            checked.append(header)
            parent, parent_time = header.id, header.time_ms
        for header in checked:
            self._headers[header.height] = header
        if checked:
            self._high = checked[-1].height
            self._low = self._low or 1

    def extend_back(self, headers: Sequence[Header]) -> None:
        """Trust headers below the lowest trusted one, highest first, each the parent its
        child names; BadHeader (nothing trusted) if one is not."""
        if not self._headers:
            raise BadHeader("nothing is trusted yet to extend back from")
        child = self._headers[self._low]
        checked: list[Header] = []
        for header in headers:
            if not isinstance(header, Header):
                raise BadHeader("not a header")
            if header.height != child.height - 1 or header.id != child.parent:
                raise BadHeader(f"header {header.height} is not the parent of {child.height}")
            if header.time_ms > child.time_ms:
                raise BadHeader(f"header {header.height} is dated after its child")
            self._check(header)
            checked.append(header)
            child = header
        if checked and checked[-1].height == 1 and checked[-1].parent != self.genesis.id:
            raise BadHeader("header 1 does not descend from the trusted genesis")
        for header in checked:
            self._headers[header.height] = header
        if checked:
            self._low = checked[-1].height

    def sync(self, client: Client, batch: int = 500) -> int:
        """Fetch and check headers from the node: forward to its head, and back to height 1
        when the client started from a trusted header. Returns the highest trusted height."""
        status = client.status()
        if status.get("genesis_id") != self.genesis.id.hex():
            raise BadHeader(
                f"the node at {client.url} runs another chain (genesis "
                f"{str(status.get('genesis_id'))[:16]}) than the trusted genesis "
                f"{self.genesis.id.hex()[:16]} ({self.genesis.chain_id!r})"
            )
        head = int(status["height"])
        while self._high < head:
            self.extend(client.headers(self._high + 1, min(head, self._high + batch)))
        while self._headers and self._low > 1:
            start = max(1, self._low - batch)
            self.extend_back(client.headers(start, self._low - 1)[::-1])
        return self._high

    def _asked(self, answer: Mapping[str, Any], height: int | None) -> int:
        want = self._high if height is None else height
        got = answer.get("height") if isinstance(answer, Mapping) else None
        if got != want:
            raise StaleAnswer(f"the answer is for height {got!r}, height {want} was asked")
        if want > 0 and want not in self._headers:
            raise BadHeader(f"no trusted header at height {want}: sync first")
        return want

    def verify_state(self, answer: Mapping[str, Any], height: int | None = None) -> VerifiedState:
        """Verify a ``/state?proof=1`` answer for ``height`` (default: the highest trusted)."""
        self._asked(answer, height)
        return verify_state(answer, self, self.genesis)

    def verify_slice(
        self, answer: Mapping[str, Any], height: int | None = None
    ) -> list[tuple[int, int, int]]:
        """Verify a ``/slice?proof=1`` answer for ``height`` (default: the highest trusted)."""
        self._asked(answer, height)
        return verify_slice(answer, self, self.genesis)

    def state(self, client: Client, account: bytes, height: int | None = None) -> VerifiedState:
        """Sync headers from ``client``, fetch the proven state of ``account`` and verify it."""
        self.sync(client)
        h = self._high if height is None else height
        return self.verify_state(client.state_proof(account, h), h)


# -- the HTTP client ---------------------------------------------------------------------------


def _state(doc: Mapping[str, Any]) -> AccountState:
    return AccountState(
        int(doc["nonce"]),
        {int(k): int(v) for k, v in doc["balances"].items()},
        {int(k): int(v) for k, v in doc.get("storage", {}).items()},
    )


class Client:
    """A synchronous client for one node. Errors the node reports raise NodeError."""

    def __init__(
        self, url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                raise NodeError(r.status_code, str(err["kind"]), str(err["message"]))
            except (ValueError, KeyError, TypeError):
                raise NodeError(r.status_code, "HTTPError", r.text[:200]) from None
        return r

    def _get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._check(self.http.get(path, params=clean)).json()

    def health(self) -> bool:
        return bool(self._get("/health")["ok"])

    def status(self) -> dict[str, Any]:
        return dict(self._get("/status"))

    def genesis(self) -> Genesis:
        return Genesis.from_bytes(bytes.fromhex(self._get("/genesis")["genesis"]))

    def broadcast(self, tx: Transaction) -> bytes:
        """Submit a transaction (stateless check, then the mempool); returns its id."""
        r = self._check(self.http.post("/broadcast_tx_sync", json={"tx": tx.raw.hex()}))
        return bytes.fromhex(r.json()["hash"])

    def nonce(self, account: bytes) -> int:
        """The nonce the account's next transaction should carry (mempool included)."""
        return int(self._get("/nonce", account=account.hex())["next"])

    def transfer(self, kp: Keypair, to: bytes, asset: int, amount: int) -> bytes:
        """Sign a transfer with the next nonce and submit it."""
        chain = self.status()["chain_id"]
        tx = transfer(
            kp, nonce=self.nonce(kp.account), to=to, asset=asset, amount=amount, chain_id=chain
        )
        return self.broadcast(tx)

    def block_info(self, height: int | None = None) -> dict[str, Any]:
        """A block as the node shows it (``/block``): the head's without a height."""
        return dict(self._get("/block", height=height))

    def transaction_info(self, tx_id: bytes) -> dict[str, Any]:
        """A transaction as the node shows it (``/tx``): position, sender, nonce, call."""
        return dict(self._get("/tx", id=tx_id.hex()))

    def nonces(self, account: bytes) -> dict[str, Any]:
        """``/nonce``: the account's committed nonce and the next one (mempool included)."""
        return dict(self._get("/nonce", account=account.hex()))

    def block(self, height: int) -> Block:
        r = self._check(self.http.get("/block", params={"height": height, "encoding": "raw"}))
        return Block.from_bytes(r.content)

    def header(self, height: int) -> Header:
        return Header.from_bytes(bytes.fromhex(self._get("/header", height=height)["raw"]))

    def headers(self, start: int, stop: int) -> list[Header]:
        """Headers ``start..stop`` (inclusive)."""
        doc = self._get("/headers", start=start, stop=stop)
        return [Header.from_bytes(bytes.fromhex(h)) for h in doc["headers"]]

    def transaction(self, tx_id: bytes) -> tuple[tuple[int, int, int], Transaction]:
        doc = self._get("/tx", id=tx_id.hex())
        pos = doc["position"]
        return (int(pos[0]), int(pos[1]), int(pos[2])), Transaction.from_bytes(
            bytes.fromhex(doc["raw"])
        )

    def state(self, account: bytes, height: int | None = None) -> AccountState:
        return _state(self._get("/state", account=account.hex(), height=height))

    def state_proof(self, account: bytes, height: int | None = None) -> dict[str, Any]:
        """The accountant answer for :func:`verify_state`."""
        return dict(self._get("/state", account=account.hex(), height=height, proof=1))

    def slice_proof(self, account: bytes, height: int | None = None) -> dict[str, Any]:
        """The proven slice (``/slice?proof=1``) for :func:`verify_slice`."""
        return dict(self._get("/slice", account=account.hex(), height=height, proof=1))

    def verified_state(
        self, account: bytes, chain: HeaderChain | LightClient, height: int | None = None
    ) -> VerifiedState:
        """Sync ``chain``'s headers, fetch a proven state and verify it (and, with a
        :class:`LightClient`, that it is for the height asked)."""
        if isinstance(chain, LightClient):
            return chain.state(self, account, height)
        chain.sync(self)
        h = chain.height if height is None else height
        answer = self.state_proof(account, h)
        if answer.get("height") != h:
            raise StaleAnswer(f"the answer is for height {answer.get('height')!r}, {h} was asked")
        return verify_state(answer, chain, chain.genesis)

    def slice(self, account: bytes, height: int | None = None) -> list[tuple[int, int, int]]:
        doc = self._get("/slice", account=account.hex(), height=height)
        return [(int(p[0]), int(p[1]), int(p[2])) for p in doc["positions"]]

    def receipt(self, tx_id: bytes) -> Receipt:
        doc = self._get("/receipt", id=tx_id.hex())
        p = doc["position"]
        return Receipt(bool(doc["applied"]), str(doc["reason"]), (int(p[0]), int(p[1]), int(p[2])))

    def wait_receipt(self, tx_id: bytes, timeout: float, poll: float = 0.1) -> Receipt:
        """The receipt of ``tx_id`` once it is in a block (polling ``/receipt``); NotIncluded
        after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while True:
            try:
                return self.receipt(tx_id)
            except NodeError as e:
                if e.status != 404 or time.monotonic() >= end:
                    if e.status == 404:
                        raise NotIncluded(tx_id, timeout) from None
                    raise
            time.sleep(min(poll, max(0.0, end - time.monotonic())))

    def put_blob(self, data: bytes) -> bytes:
        import blake3

        key = blake3.blake3(data).digest()
        self._check(self.http.put(f"/blob/{key.hex()}", content=data))
        return key

    def get_blob(self, key: bytes) -> bytes:
        return self._check(self.http.get(f"/blob/{key.hex()}")).content
