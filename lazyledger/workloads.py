"""Deterministic synthetic workloads: keys, a genesis and blocks of signed transactions.

Shapes resemble real chains: ``uniform`` (anyone pays anyone), ``zipf`` (a few hub accounts,
like exchanges, take most of the traffic), ``clusters`` (many loosely connected groups, with a
``bridge`` share of cross-cluster transfers), ``amm`` (swaps against one hot pool), and
``adversarial`` (overdrafts, MAX-edge balances, huge swaps, self-transfers). Every choice comes
from a seeded ``random.Random``, so a (shape, parameters, seed) triple names one chain."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import attrs

from lazyledger.crypto import Keypair
from lazyledger.ledger import Ledger
from lazyledger.model import Block, Genesis, Transaction
from lazyledger.ops import MAX, Transfer
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
