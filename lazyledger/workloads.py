"""Deterministic synthetic workloads: keys, a genesis and blocks of signed transactions.

Shapes resemble real chains: ``uniform`` (anyone pays anyone), ``zipf`` (a few hub accounts,
like exchanges, take most of the traffic), ``clusters`` (many loosely connected groups, with a
``bridge`` share of cross-cluster transfers), ``amm`` (swaps against one hot pool), and
``adversarial`` (overdrafts, MAX-edge balances, huge swaps, self-transfers). Every choice comes
from a seeded ``random.Random``, so a (shape, parameters, seed) triple names one chain.

:class:`EthereumLike` generates transfers shaped like Ethereum mainnet, calibrated against the
aggregates of a real window (:data:`ETHEREUM_2017`, compared with :func:`chain_stats`)."""

from __future__ import annotations

import bisect
import csv
import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import attrs
import blake3
import numpy as np

from lazyledger.crypto import Keypair
from lazyledger.errors import InvalidRequest
from lazyledger.ledger import Ledger
from lazyledger.model import Block, Genesis, Transaction
from lazyledger.ops import MAX, Transfer
from lazyledger.shards import shard_of
from lazyledger.transactions import mint, private, swap, transfer

SHAPES = ("uniform", "zipf", "clusters", "amm", "adversarial")


@attrs.define
class Workload:
    """A generator of signed transactions over ``n_accounts`` funded accounts."""

    shape: str
    n_accounts: int = 100
    n_shards: int = 4
    seed: int = 0
    cluster_size: int = 10
    bridge: float = 0.0
    zipf_s: float = 1.2
    chain_id: str = "bench"
    private_share: float = 0.0
    keys: list[Keypair] = attrs.field(init=False)
    issuer: Keypair = attrs.field(init=False)
    pool: bytes = attrs.field(init=False)
    rng: random.Random = attrs.field(init=False)
    nonces: dict[bytes, int] = attrs.field(init=False, factory=dict)
    _cum_weights: list[float] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown workload shape {self.shape!r}; pick one of {SHAPES}")
        self.rng = random.Random(self.seed)
        self.issuer = Keypair.from_seed(self.seed.to_bytes(8, "big") + b"issuer".ljust(24, b"\0"))
        self.keys = [
            Keypair.from_seed(self.seed.to_bytes(8, "big") + i.to_bytes(24, "big"))
            for i in range(self.n_accounts)
        ]
        self.pool = b"\xaa" * 16 + self.seed.to_bytes(16, "big")
        if self.shape == "zipf":
            # cumulative once: ``choices`` then bisects (O(log n) a pick, not O(n)); it would
            # accumulate the same floats itself, so the chains are the same as with weights=
            weights = (1.0 / (i + 1) ** self.zipf_s for i in range(self.n_accounts))
            self._cum_weights = list(itertools.accumulate(weights))

    def genesis(self) -> Genesis:
        """Genesis: the issuer is the authority and issues assets 0 and 1; accounts are funded."""
        fund = 10**6 if self.shape != "adversarial" else MAX - 10
        balances = {k.account: {0: fund, 1: fund} for k in self.keys}
        balances[self.pool] = {0: 10**9, 1: 10**9}
        return Genesis(
            chain_id=self.chain_id,
            n_shards=self.n_shards,
            authorities=[self.issuer.public_key],
            assets={0: self.issuer.account, 1: self.issuer.account},
            balances=balances,
            pools={self.pool: (0, 1)},
        )

    def _next_nonce(self, kp: Keypair) -> int:
        n = self.nonces.get(kp.account, 0)
        self.nonces[kp.account] = n + 1
        return n

    def _pick(self) -> int:
        if self.shape == "zipf":
            return self.rng.choices(range(self.n_accounts), cum_weights=self._cum_weights)[0]
        return self.rng.randrange(self.n_accounts)

    def _peer(self, i: int) -> int:
        if self.shape == "clusters" and self.rng.random() >= self.bridge:
            base = i - i % self.cluster_size
            return base + self.rng.randrange(min(self.cluster_size, self.n_accounts - base))
        return self._pick()

    def transaction(self) -> Transaction:
        """One more signed transaction of this workload's shape."""
        rng = self.rng
        i = self._pick()
        kp = self.keys[i]
        if self.shape == "amm" and rng.random() < 0.7:
            amount = rng.randrange(1, 5_000)
            return swap(
                kp,
                nonce=self._next_nonce(kp),
                pool=self.pool,
                asset_in=rng.randrange(2),
                amount_in=amount,
                min_out=0,
                chain_id=self.chain_id,
            )
        if self.shape == "adversarial":
            return self._adversarial(kp)
        peer = self.keys[self._peer(i)]
        asset, amount = rng.randrange(2), rng.randrange(1, 2_000)
        if self.private_share and rng.random() < self.private_share:
            return private(
                kp,
                nonce=self._next_nonce(kp),
                call=Transfer(peer.account, asset, amount),
                recipients=sorted({kp.public_key, peer.public_key}),
                chain_id=self.chain_id,
            )
        return transfer(
            kp,
            nonce=self._next_nonce(kp),
            to=peer.account,
            asset=asset,
            amount=amount,
            chain_id=self.chain_id,
        )

    def _adversarial(self, kp: Keypair) -> Transaction:
        rng = self.rng
        kind = rng.randrange(6)
        to = self.keys[self._pick()].account
        asset = rng.randrange(2)
        big = rng.choice([MAX, MAX - 1, MAX // 2, 2**62, 10**18, 1])
        if kind == 0:  # self-transfer, possibly overdrawn
            return transfer(
                kp,
                nonce=self._next_nonce(kp),
                to=kp.account,
                asset=asset,
                amount=big,
                chain_id=self.chain_id,
            )
        if kind == 1:  # MAX-edge: pushes the recipient past MAX unless it spent first
            return transfer(
                kp,
                nonce=self._next_nonce(kp),
                to=to,
                asset=asset,
                amount=rng.choice([11, 20, big]),
                chain_id=self.chain_id,
            )
        if kind == 2:  # mint near MAX
            k = self.issuer
            return mint(
                k,
                nonce=self._next_nonce(k),
                to=to,
                asset=asset,
                amount=rng.choice([1, 10, big]),
                chain_id=self.chain_id,
            )
        if kind == 3:  # huge swap: 136-bit products
            return swap(
                kp,
                nonce=self._next_nonce(kp),
                pool=self.pool,
                asset_in=asset,
                amount_in=big,
                min_out=rng.choice([0, 1, big]),
                chain_id=self.chain_id,
            )
        if kind == 4:  # small swap with an impossible min_out or rounding to zero
            return swap(
                kp,
                nonce=self._next_nonce(kp),
                pool=self.pool,
                asset_in=asset,
                amount_in=rng.randrange(1, 3),
                min_out=rng.choice([0, 10**12]),
                chain_id=self.chain_id,
            )
        return transfer(
            kp,
            nonce=self._next_nonce(kp),
            to=to,
            asset=asset,
            amount=rng.randrange(1, 10**6),
            chain_id=self.chain_id,
        )

    def transactions(self, n: int) -> list[Transaction]:
        return [self.transaction() for _ in range(n)]

    def blocks(self, ledger: Ledger, n_blocks: int, per_block: int) -> Iterator[Block]:
        """Propose and append ``n_blocks`` blocks of ``per_block`` transactions to ``ledger``."""
        for _ in range(n_blocks):
            block = ledger.propose(self.transactions(per_block), self.issuer)
            ledger.append(block)
            yield block


# -- an Ethereum-like chain (issue 9) ---------------------------------------------------------

Pick = tuple[int, int, int]
"""An unsigned transfer of :class:`EthereumLike`: (sender index, recipient index, amount)."""

ZERO_VALUE = 1
"""The amount that stands for Ethereum's zero-value transactions (lazyledger forbids 0)."""


@attrs.frozen
class EthereumShape:
    """Knobs of :class:`EthereumLike`; shares are per transaction. The defaults land near
    :data:`ETHEREUM_2017` at 20,000 transactions and keep its shares on longer chains."""

    mean_block: float = 15.0  # mean transactions per block (geometric, at least 1)
    exchanges: int = 4  # hot wallets: deposits in from many, batched withdrawals out
    pools: int = 3  # mining pools: payout bursts to their miners
    airdrops: int = 16  # distributors funded for one long burst each (rare)
    contracts: int = 400  # contract-like accounts: receive from many, never send
    funded_users: int = 6000  # users funded at genesis, with Zipf activity
    payout_share: float = 0.5  # share of txs in payout bursts (exchanges, pools, airdrops)
    hub_zipf: float = 1.0  # payout volume of the k-th payer ~ (k + hub_offset) ** -hub_zipf
    hub_offset: float = 5.0  # (payers by rank: exchange, pool, exchange, pool, ...)
    batch: int = 20  # mean length of an exchange's withdrawal batch
    burst: int = 100  # mean length of a pool's payout burst
    airdrop_rate: float = 2e-4  # chance that a new burst is an airdrop (~3 per 10**6 txs)
    airdrop_burst: int = 2000  # mean length of an airdrop
    new_payee: float = 0.35  # chance that a withdrawal goes to a new account
    new_miner: float = 0.8  # chance that a pool pays a new miner, not one it paid before
    deposit_share: float = 0.33  # share of the other txs that pay an exchange
    call_share: float = 0.25  # share of the other txs that call a contract
    zero_value: float = 0.8  # chance that a contract call carries no value
    target_zipf: float = 1.5  # popularity of exchanges and of contracts
    user_zipf: float = 0.6  # activity of funded users
    new_peer: float = 0.6  # chance that a user-to-user transfer goes to a new account
    send_back: float = 0.5  # chance that a new account sends later (once it has funds)
    miner_send_back: float = 0.0  # the same for new miners and airdrop payees
    again: float = 0.2  # chance that it sends once more after each send
    from_new: float = 0.5  # chance that a user tx comes from such an account (if one waits)


K = TypeVar("K", bound=Hashable)


def _next_transfer(
    nonces: dict[K, int],
    sender: K,
    kp: Keypair,
    to: bytes,
    amount: int,
    chain_id: str,
) -> Transaction:
    """A transfer of asset 0 signed by ``kp`` with the next nonce of ``sender`` in ``nonces``
    (which it advances)."""
    nonce = nonces.get(sender, 0)
    nonces[sender] = nonce + 1
    return transfer(kp, nonce=nonce, to=to, asset=0, amount=amount, chain_id=chain_id)


def _cumulative(n: int, s: float, offset: float = 1.0) -> list[float]:
    """Cumulative Zipf weights ``(k + offset) ** -s`` for k < n: one bisect picks a rank."""
    return list(itertools.accumulate((k + offset) ** -s for k in range(n)))


@attrs.define
class EthereumLike:
    """A seeded generator of signed transfers shaped like Ethereum mainnet: heavy-tailed
    activity, exchange hot wallets, payout bursts, popular contracts and a long tail of
    one-off accounts. Accounts are numbered; keys of new ones are derived only when needed.

    Each pick costs O(1) random draws plus bisects into cumulative weights built once."""

    seed: int = 0
    n_shards: int = 4
    chain_id: str = "eth"
    shape: EthereumShape = attrs.field(factory=EthereumShape)
    proposer: Keypair = attrs.field(init=False)
    first_new: int = attrs.field(init=False)
    """Index of the first account created during the chain (all below exist at genesis)."""
    n_accounts: int = attrs.field(init=False)
    """Accounts created so far (genesis ones included)."""
    _rng: random.Random = attrs.field(init=False)
    _sizes: random.Random = attrs.field(init=False)
    _size_rate: float = attrs.field(init=False)
    _keys: dict[int, Keypair] = attrs.field(init=False, factory=dict)
    _ids: dict[int, bytes] = attrs.field(init=False, factory=dict)
    _nonces: dict[int, int] = attrs.field(init=False, factory=dict)
    _payers: list[int] = attrs.field(init=False)
    _volume: list[float] = attrs.field(init=False)
    _passes: list[tuple[float, int]] = attrs.field(init=False)
    _exchange_cum: list[float] = attrs.field(init=False)
    _contract_cum: list[float] = attrs.field(init=False)
    _user_cum: list[float] = attrs.field(init=False)
    _burst_hub: int = attrs.field(init=False, default=0)
    _burst_left: int = attrs.field(init=False, default=0)
    _airdrops_used: int = attrs.field(init=False, default=0)
    _seen: list[int] = attrs.field(init=False, factory=list)
    _miners: dict[int, list[int]] = attrs.field(init=False, factory=dict)
    _waiting: list[int] = attrs.field(init=False, factory=list)
    _staged: list[int] = attrs.field(init=False, factory=list)
    _balance: dict[int, int] = attrs.field(init=False, factory=dict)
    _incoming: dict[int, int] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        s = self.shape
        if s.mean_block < 1:
            raise ValueError(f"mean_block must be at least 1, got {s.mean_block}")
        self._rng = random.Random(f"ethereum/{self.seed}/picks")
        self._sizes = random.Random(f"ethereum/{self.seed}/blocks")
        # 1 + floor(Exp(rate)) is geometric with mean 1 + 1/(e**rate - 1) = mean_block
        self._size_rate = math.log1p(1 / (s.mean_block - 1)) if s.mean_block > 1 else math.inf
        self.proposer = Keypair.from_seed(self._key_seed(-1))
        self.first_new = self._users + s.funded_users
        self.n_accounts = self.first_new
        # payers by rank: exchange 0, pool 0, exchange 1, pool 1, ... then the unpaired rest
        ex, pools = list(range(s.exchanges)), list(range(s.exchanges, self._airdrop0))
        paired = [i for pair in zip(ex, pools, strict=False) for i in pair]
        self._payers = paired + ex[len(paired) // 2 :] + pools[len(paired) // 2 :]
        # stride scheduling: the payer with the least pass pays the next burst, then its pass
        # grows by length / volume, so payout volumes follow Zipf closely at any chain length
        self._volume = [(k + s.hub_offset) ** -s.hub_zipf for k in range(len(self._payers))]
        self._passes = [
            (self._rng.random() * self._mean_burst(i) / v, k)
            for k, (i, v) in enumerate(zip(self._payers, self._volume, strict=True))
        ]
        heapq.heapify(self._passes)
        self._exchange_cum = _cumulative(s.exchanges, s.target_zipf)
        self._contract_cum = _cumulative(s.contracts, s.target_zipf)
        self._user_cum = _cumulative(s.funded_users, s.user_zipf)

    # -- account numbering: exchanges, pools, airdrops, contracts, funded users, new ones --

    @property
    def _airdrop0(self) -> int:
        return self.shape.exchanges + self.shape.pools

    @property
    def _contract0(self) -> int:
        return self._airdrop0 + self.shape.airdrops

    @property
    def _users(self) -> int:
        return self._contract0 + self.shape.contracts

    def _mean_burst(self, payer: int) -> int:
        return self.shape.batch if payer < self.shape.exchanges else self.shape.burst

    def _key_seed(self, i: int) -> bytes:
        return b"eth\0" + self.seed.to_bytes(8, "big", signed=True) + (i + 1).to_bytes(20, "big")

    def is_contract(self, i: int) -> bool:
        """Whether account ``i`` is contract-like (no key: it never sends)."""
        return self._contract0 <= i < self._users

    def keypair(self, i: int) -> Keypair:
        """The key of account ``i`` (derived from the seed; cached for genesis accounts)."""
        if self.is_contract(i):
            raise ValueError(f"account {i} is contract-like and has no key")
        kp = self._keys.get(i)
        if kp is None:
            kp = Keypair.from_seed(self._key_seed(i))
            if i < self.first_new:
                self._keys[i] = kp
            self._ids[i] = kp.account
        return kp

    def account(self, i: int) -> bytes:
        """The 32-byte account id of account ``i``."""
        found = self._ids.get(i)
        if found is None:
            if self.is_contract(i):
                found = blake3.blake3(b"eth contract" + self._key_seed(i)).digest()
                self._ids[i] = found
            else:
                found = self.keypair(i).account
        return found

    def genesis(self) -> Genesis:
        """Genesis: the proposer issues asset 0; payers hold 10**17, funded users 10**15."""
        hubs = {self.account(i): {0: 10**17} for i in range(self._contract0)}
        users = {self.account(i): {0: 10**15} for i in range(self._users, self.first_new)}
        return Genesis(
            chain_id=self.chain_id,
            n_shards=self.n_shards,
            authorities=[self.proposer.public_key],
            assets={0: self.proposer.account},
            balances={**hubs, **users},
            pools={},
        )

    # -- picks ------------------------------------------------------------------------------

    def block_size(self) -> int:
        """The size of the next block: geometric around ``mean_block``, at least 1."""
        return (
            1 + int(self._sizes.expovariate(self._size_rate)) if self._size_rate < math.inf else 1
        )

    def block_picks(self) -> list[Pick]:
        """The unsigned transfers of the next block. A new account spends only in a block
        after the one that funded it, so shard order inside a block never overdraws it."""
        picks = [self._pick() for _ in range(self.block_size())]
        self._waiting += self._staged
        self._staged.clear()
        self._incoming.clear()
        return picks

    def picks(self, n_txs: int) -> list[list[Pick]]:
        """Blocks of unsigned transfers, ``n_txs`` in all (the last block cut short)."""
        blocks: list[list[Pick]] = []
        left = n_txs
        while left > 0:
            block = self.block_picks()[:left]
            left -= len(block)
            blocks.append(block)
        return blocks

    def _new(self, amount: int, send_back: float) -> int:
        """A new account that receives ``amount``; some (``send_back``) spend from it later."""
        i = self.n_accounts
        self.n_accounts += 1
        if self._rng.random() < send_back:
            self._staged.append(i)
            self._balance[i] = amount
        return i

    def _payee(self, p_new: float, amount: int, sender: int) -> int:
        """A new account (chance ``p_new``) or a user already seen, by degree."""
        rng, seen = self._rng, self._seen
        if seen and rng.random() >= p_new:
            to = seen[int(rng.random() * len(seen))]
            if to != sender:
                if to in self._balance:
                    self._balance[to] += amount
                    self._incoming[to] = self._incoming.get(to, 0) + amount
                seen.append(to)
                return to
        to = self._new(amount, self.shape.send_back)
        seen.append(to)
        return to

    def _pick(self) -> Pick:
        if self._rng.random() < self.shape.payout_share:
            return self._payout()
        return self._user_tx()

    def _payout(self) -> Pick:
        """The next transfer of the current payout burst (a new burst when it is over)."""
        s, rng = self.shape, self._rng
        if not self._burst_left:
            self._start_burst()
        self._burst_left -= 1
        hub, amount = self._burst_hub, int(10 ** (4 + 5 * rng.random()))
        if hub < s.exchanges:
            return (hub, self._payee(s.new_payee, amount, -1), amount)
        # pools pay their own miners, airdrops new accounts; nothing else picks these, so
        # their slices (and their payees') hold only their own payouts
        miners = self._miners.setdefault(hub, [])
        if hub >= self._airdrop0 or not miners or rng.random() < s.new_miner:
            miners.append(self._new(amount, s.miner_send_back))
            return (hub, miners[-1], amount)
        return (hub, miners[int(rng.random() * len(miners))], amount)

    def _user_tx(self) -> Pick:
        """A deposit, a contract call or a transfer to a peer, by a funded user or by a new
        account that received funds in an earlier block."""
        s, rng, waiting = self.shape, self._rng, self._waiting
        held = spendable = -1  # a new account's balance and what it may spend, when it sends
        if waiting and rng.random() < s.from_new:
            j = int(rng.random() * len(waiting))
            sender = waiting[j]
            waiting[j] = waiting[-1]
            waiting.pop()
            held = self._balance.pop(sender)
            spendable = held - self._incoming.get(sender, 0)
            amount = max(1, int(spendable * (0.05 + 0.9 * rng.random())))
        else:
            sender = self._users + bisect.bisect(self._user_cum, rng.random() * self._user_cum[-1])
            amount = int(10 ** (3 + 6 * rng.random()))
        self._seen.append(sender)
        kind = rng.random()
        if kind < s.deposit_share:
            to = bisect.bisect(self._exchange_cum, rng.random() * self._exchange_cum[-1])
        elif kind < s.deposit_share + s.call_share:
            to = self._contract0 + bisect.bisect(
                self._contract_cum, rng.random() * self._contract_cum[-1]
            )
            if rng.random() < s.zero_value:
                amount = ZERO_VALUE
        else:
            to = self._payee(s.new_peer, amount, sender)
        if held >= 0 and spendable > amount and rng.random() < s.again:
            self._staged.append(sender)
            self._balance[sender] = held - amount
        return (sender, to, amount)

    def _start_burst(self) -> None:
        s, rng = self.shape, self._rng
        if s.airdrops and rng.random() < s.airdrop_rate:
            self._burst_hub = self._airdrop0 + self._airdrops_used % s.airdrops
            self._airdrops_used += 1
            self._burst_left = max(1, round(s.airdrop_burst * (0.5 + rng.random())))
            return
        pass_, k = self._passes[0]
        self._burst_hub = self._payers[k]
        self._burst_left = max(1, round(self._mean_burst(self._burst_hub) * (0.5 + rng.random())))
        heapq.heapreplace(self._passes, (pass_ + self._burst_left / self._volume[k], k))

    # -- signed transactions ----------------------------------------------------------------

    def sign(self, picks: Sequence[Pick]) -> list[Transaction]:
        """Signed transfers of asset 0 for ``picks`` (in pick order: nonces follow it)."""
        return [
            _next_transfer(self._nonces, sender, self.keypair(sender), self.account(to), amount,
                           self.chain_id)
            for sender, to, amount in picks
        ]  # fmt: skip

    def blocks(self, n_txs: int) -> Iterator[list[Transaction]]:
        """Signed blocks' transactions, ``n_txs`` in all (the last block cut short)."""
        left = n_txs
        while left > 0:
            block = self.block_picks()[:left]
            left -= len(block)
            yield self.sign(block)


# -- a recorded trace, replayed -----------------------------------------------------------------

TRACE_VALUE = 2
"""The amount of a trace row whose value is not zero (zero-value rows move ``ZERO_VALUE``)."""


@attrs.define
class TraceWorkload:
    """Transfers read from a CSV trace, in its order, as signed lazyledger transfers of asset
    0: one row per transfer, columns ``from`` and ``to`` (addresses, any text; hex is compared
    case-insensitively), optional ``block`` (non-decreasing integers: rows of one block share
    a lazyledger block; without it, blocks of ``per_block`` rows) and optional ``value`` (an
    integer: 0 moves ``ZERO_VALUE``, any other ``TRACE_VALUE``). The trace's graph and order
    are kept, its values are not: genesis funds every sender with exactly what it sends, so
    every transfer applies. Keys derive from the address (and ``chain_id``); an address that
    never sends gets a key-less account id. Reading is two passes over the file (senders and
    funding first), so a trace of any length streams."""

    path: str | Path
    n_shards: int = 4
    chain_id: str = "trace"
    per_block: int = 15
    proposer: Keypair = attrs.field(init=False)
    rows: int = attrs.field(init=False)
    """Transfers in the trace."""
    _sends: dict[str, int] = attrs.field(init=False, factory=dict)  # address -> amount sent
    _keys: dict[str, Keypair] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.per_block, int) or self.per_block < 1:
            raise InvalidRequest(f"per_block must be a positive integer, got {self.per_block!r}")
        self.proposer = Keypair.from_seed(self._seed("proposer"))
        self.rows = 0
        for _, sender, _, amount in self._read():
            self._sends[sender] = self._sends.get(sender, 0) + amount
            self.rows += 1

    def _seed(self, address: str) -> bytes:
        return blake3.blake3(f"lazyledger trace key\0{self.chain_id}\0{address}".encode()).digest()

    def _read(self) -> Iterator[tuple[int, str, str, int]]:
        """(block, sender, recipient, amount) per row; InvalidRequest names a bad row."""
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                yield from self._rows(csv.DictReader(f))
        except OSError as e:
            raise InvalidRequest(f"cannot read trace {self.path}: {e.strerror}") from None
        except (UnicodeDecodeError, csv.Error) as e:
            raise InvalidRequest(f"{self.path} is not a UTF-8 CSV file ({e})") from None

    def _rows(self, rows: csv.DictReader[str]) -> Iterator[tuple[int, str, str, int]]:
        cols = set(rows.fieldnames or ())
        if not {"from", "to"} <= cols:
            raise InvalidRequest(f"{self.path}: a trace needs columns 'from' and 'to'")
        last = -1
        for n, row in enumerate(rows):
            where = f"{self.path}:{rows.line_num}"
            sender, to = _address(row.get("from")), _address(row.get("to"))
            if not sender or not to:
                raise InvalidRequest(f"{where}: an empty 'from' or 'to'")
            try:
                block = int(row["block"]) if "block" in cols else n // self.per_block
                value = int(row["value"]) if "value" in cols else 1
            except (TypeError, ValueError):
                raise InvalidRequest(f"{where}: 'block' and 'value' must be integers") from None
            if block < last:
                raise InvalidRequest(f"{where}: block {block} after block {last}")
            if value < 0:
                raise InvalidRequest(f"{where}: a negative value")
            last = block
            yield block, sender, to, ZERO_VALUE if value == 0 else TRACE_VALUE

    def keypair(self, address: str) -> Keypair:
        """The key of a sending address (recent ones cached)."""
        kp = self._keys.get(address)
        if kp is None:
            if len(self._keys) >= 1 << 16:
                self._keys.clear()
            kp = self._keys[address] = Keypair.from_seed(self._seed(address))
        return kp

    def account(self, address: str) -> bytes:
        """The 32-byte account id standing for ``address``."""
        if address in self._sends:
            return self.keypair(address).account
        return blake3.blake3(f"lazyledger trace account\0{address}".encode()).digest()

    def genesis(self) -> Genesis:
        """Genesis: the proposer issues asset 0; every sender holds what it sends."""
        return Genesis(
            chain_id=self.chain_id,
            n_shards=self.n_shards,
            authorities=[self.proposer.public_key],
            assets={0: self.proposer.account},
            balances={self.account(a): {0: v} for a, v in sorted(self._sends.items())},
            pools={},
        )

    def blocks(self) -> Iterator[list[Transaction]]:
        """The trace's blocks of signed transfers, in order."""
        nonces: dict[str, int] = {}
        block: list[Transaction] = []
        current = None
        for number, sender, to, amount in self._read():
            if number != current and block:
                yield block
                block = []
            current = number
            block.append(
                _next_transfer(nonces, sender, self.keypair(sender), self.account(to), amount,
                               self.chain_id)
            )  # fmt: skip
        if block:
            yield block


def _address(text: str | None) -> str:
    """A trace address as compared ("" if missing): hex ones lower-cased."""
    a = (text or "").strip()
    return a.lower() if a[:2] in ("0x", "0X") else a


# -- aggregates a chain is compared on ----------------------------------------------------------


@attrs.frozen
class ChainStats:
    """Aggregates of a chain of transfers, as :data:`ETHEREUM_2017` gives them for Ethereum.
    Slice fractions are slice size / chain transactions at the head, over accounts; fields
    that were not computed (or are not known for the real window) are None."""

    txs: int
    accounts: int
    senders: int
    recipients: int
    top_sender_share: float
    top5_sender_share: float
    top_recipient_share: float
    zero_value_share: float  # amount == ZERO_VALUE, the stand-in for a zero-value tx
    one_off_share: float | None = None  # accounts that appear in exactly one transaction
    slice_p10: float | None = None
    slice_p50: float | None = None
    slice_p90: float | None = None
    failed_share: float | None = None  # transactions that fail at materialisation

    def rows(self) -> list[tuple[str, float | int | None]]:
        """(name, value) of every aggregate, in a fixed order."""
        return list(attrs.asdict(self).items())


ETHEREUM_2017 = ChainStats(
    txs=19_968,
    accounts=10_896,
    senders=5_986,
    recipients=9_628,
    top_sender_share=0.106,
    top5_sender_share=0.40,
    top_recipient_share=0.097,
    zero_value_share=0.10,
    slice_p10=0.001,
    slice_p50=0.22,
    slice_p90=0.65,
)
"""A real window of Ethereum mainnet: 20,000 consecutive transactions of 2017 (~1,300 blocks,
~15 per block). The defaults of :class:`EthereumShape` are calibrated against it."""

Transfers = Iterable[tuple[Hashable, Hashable | None, int | None]]
"""(sender, recipient or None, amount or None) of each transaction, in chain order."""


def transfer_stats(transfers: Transfers) -> ChainStats:
    """Counts and shares of ``transfers`` (no slice fractions): picks of
    :class:`EthereumLike` qualify as they are."""
    sent: Counter[Hashable] = Counter()
    received: Counter[Hashable] = Counter()
    touched: Counter[Hashable] = Counter()
    zero = 0
    for sender, to, amount in transfers:
        sent[sender] += 1
        touched[sender] += 1
        if to is not None:
            received[to] += 1
            if to != sender:
                touched[to] += 1
        zero += amount == ZERO_VALUE
    n = max(1, sum(sent.values()))
    top = [c for _, c in sent.most_common(5)] or [0]
    return ChainStats(
        txs=sum(sent.values()),
        accounts=len(touched),
        senders=len(sent),
        recipients=len(received),
        top_sender_share=top[0] / n,
        top5_sender_share=sum(top) / n,
        top_recipient_share=max(received.values(), default=0) / n,
        zero_value_share=zero / n,
        one_off_share=sum(c == 1 for c in touched.values()) / max(1, len(touched)),
    )


def _transfers(txs: Iterable[Transaction]) -> Transfers:
    for tx in txs:
        call = tx.call
        if isinstance(call, Transfer):
            yield tx.sender, call.to, call.amount
        else:
            yield tx.sender, None, None


def global_order(blocks: Iterable[Sequence[Transaction]], n_shards: int) -> list[Transaction]:
    """The transactions of ``blocks`` in the order a ledger gives them: block by block, by
    the sender's shard, the given order kept inside a shard (as ``Ledger.propose`` does)."""
    out: list[Transaction] = []
    for txs in blocks:
        out += sorted(txs, key=lambda tx: shard_of(tx.sender, n_shards))  # stable
    return out


def head_slice_sizes(
    accesses: Sequence[Sequence[Hashable]], queries: Sequence[Hashable]
) -> list[int]:
    """Dependency-slice size at the head of each of ``queries``, without checkpoints, for a
    chain given by the access set of each transaction in global order: one backward pass.

    ``reach[a]`` has one bit per query whose closure already holds account ``a``; a
    transaction joins the slices of the bits its accounts hold, and its accounts then share
    them. Agrees with ``Ledger.slice(a, use_checkpoints=False)`` (tested)."""
    reach: dict[Hashable, int] = {}
    for k, q in enumerate(queries):
        reach[q] = reach.get(q, 0) | 1 << k
    width = (len(queries) + 7) // 8
    counts = np.zeros(width * 8, dtype=np.int64)
    chunk: list[bytes] = []

    def flush() -> None:
        if chunk:
            bits = np.frombuffer(b"".join(chunk), dtype=np.uint8).reshape(len(chunk), width)
            counts[:] += np.unpackbits(bits, axis=1, bitorder="little").sum(axis=0, dtype=np.int64)
            chunk.clear()

    for access in reversed(accesses):
        joined = 0
        for a in access:
            joined |= reach.get(a, 0)
        if joined:
            for a in access:
                reach[a] = joined
            chunk.append(joined.to_bytes(width, "little"))
            if len(chunk) * width >= 1 << 21:  # 2 MB of bits, 16 MB unpacked
                flush()
    flush()
    return [int(c) for c in counts[: len(queries)]]


def _percentiles(fractions: Sequence[float]) -> tuple[float, float, float]:
    if not fractions:
        return (0.0, 0.0, 0.0)
    p10, p50, p90 = np.percentile(np.asarray(fractions, dtype=np.float64), [10, 50, 90])
    return (float(p10), float(p50), float(p90))


def sample_accounts(accounts: Sequence[bytes], k: int | None, seed: int = 0) -> list[bytes]:
    """A seeded sample of ``k`` of ``accounts`` (all of them when ``k`` is None or larger)."""
    if k is None or k >= len(accounts):
        return list(accounts)
    return random.Random(seed).sample(list(accounts), k)


def chain_stats(
    txs: Sequence[Transaction], *, sample: int | None = None, seed: int = 0
) -> ChainStats:
    """:func:`transfer_stats` of ``txs`` (in global order, see :func:`global_order`) with the
    slice-fraction percentiles over every account, or a seeded ``sample`` of them."""
    accesses = [tx.access() for tx in txs]
    accounts = sample_accounts(sorted({a for acc in accesses for a in acc}), sample, seed)
    sizes = head_slice_sizes(accesses, accounts)
    p10, p50, p90 = _percentiles([k / max(1, len(txs)) for k in sizes])
    base = transfer_stats(_transfers(txs))
    return attrs.evolve(base, slice_p10=p10, slice_p50=p50, slice_p90=p90)


def slice_fractions(
    led: Ledger,
    accounts: Sequence[bytes] | None = None,
    *,
    sample: int | None = None,
    seed: int = 0,
) -> dict[bytes, float]:
    """Slice size / chain transactions at the head by ``led.slice(a, use_checkpoints=False)``,
    for ``accounts`` (default: every account the chain touches) or a seeded ``sample``."""
    txs = [tx for b in led.blocks() for sec in b.sections for tx in sec]
    if accounts is None:
        accounts = sorted({a for tx in txs for a in tx.access()})
    n = max(1, len(txs))
    return {
        a: len(led.slice(a, use_checkpoints=False)) / n
        for a in sample_accounts(accounts, sample, seed)
    }


def failed_share(led: Ledger) -> float:
    """The share of ``led``'s transactions that fail at materialisation (overdrafts), by the
    pure-Python reference replay of the whole chain."""
    from lazyledger.materialize.reference import replay_chain

    _, receipts = replay_chain(led.genesis, led.blocks())
    return sum(not ok for ok, _ in receipts.values()) / max(1, len(receipts))


def ledger_stats(led: Ledger, *, sample: int | None = 500, seed: int = 0) -> ChainStats:
    """:func:`transfer_stats` of a stored chain, slice-fraction percentiles by ``led.slice``
    over a seeded ``sample`` of its accounts (None: all of them; each costs about a lazy
    query) and :func:`failed_share`."""
    txs = [tx for b in led.blocks() for sec in b.sections for tx in sec]
    p10, p50, p90 = _percentiles(list(slice_fractions(led, sample=sample, seed=seed).values()))
    return attrs.evolve(
        transfer_stats(_transfers(txs)),
        slice_p10=p10,
        slice_p50=p50,
        slice_p90=p90,
        failed_share=failed_share(led),
    )
