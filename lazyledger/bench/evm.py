"""The eager peer: py-evm importing blocks of plain value transfers (the ``evm`` extra).

Configured as ``MiningChain`` with ``ShanghaiVM`` and ``NoProofConsensus``
over an ``AtomicDB``, ``n_accounts`` funded accounts, blocks of ``per_block`` transfers through
``chain.mine_all(txs)`` (py-evm's fastest import path). Signing happens before the clock runs."""

from __future__ import annotations

import importlib.util
import random
import time
from typing import Any

from lazyledger.bench.timing import progress


def missing() -> str | None:
    """Why the peer cannot run here, or None when it can."""
    for module, extra in (("eth", "py-evm"), ("eth_hash", "eth-hash"), ("coincurve", "coincurve")):
        if importlib.util.find_spec(module) is None:
            return (
                f"{extra} is not installed: pip install 'py-evm==0.12.1b1' "
                "'eth-hash[pycryptodome]' coincurve  (or the project's [evm] extra)"
            )
    return None


def import_rate(
    n_accounts: int, n_blocks: int, per_block: int, seed: int, on: bool = True
) -> dict[str, float]:
    """Execute ``n_blocks`` blocks of random transfers; return tx/s and per-block seconds."""
    from eth import constants
    from eth.chains.base import MiningChain
    from eth.consensus.noproof import NoProofConsensus
    from eth.db.atomic import AtomicDB
    from eth.vm.forks.shanghai import ShanghaiVM
    from eth_keys.datatypes import PrivateKey

    rng = random.Random(seed)
    pks = [PrivateKey((seed * 10**6 + i + 1).to_bytes(32, "big")) for i in range(n_accounts)]
    addrs = [pk.public_key.to_canonical_address() for pk in pks]
    vm_class = ShanghaiVM.configure(consensus_class=NoProofConsensus)
    chain_class: Any = MiningChain.configure(
        __name__="LazyledgerBenchPeer",
        vm_configuration=((constants.GENESIS_BLOCK_NUMBER, vm_class),),
        chain_id=1337,
    )
    genesis = {
        "difficulty": 0,
        "gas_limit": max(30_000_000, 21_000 * per_block * 2),
        "timestamp": 1_700_000_000,
        "coinbase": constants.ZERO_ADDRESS,
        "extra_data": b"",
        "nonce": b"\0" * 8,
        "mix_hash": constants.ZERO_HASH32,
    }
    state = {a: {"balance": 10**24, "nonce": 0, "code": b"", "storage": {}} for a in addrs}
    chain = chain_class.from_genesis(AtomicDB(), genesis, state)
    vm = chain.get_vm()
    nonces = [0] * n_accounts
    blocks: list[list[Any]] = []
    for _ in progress(range(n_blocks), "py-evm: sign", n_blocks, on):
        txs = []
        for _ in range(per_block):
            i, j = rng.randrange(n_accounts), rng.randrange(n_accounts)
            unsigned = vm.create_unsigned_transaction(
                nonce=nonces[i],
                gas_price=10**10,
                gas=21_000,
                to=addrs[j],
                value=rng.randrange(1, 2_000),
                data=b"",
            )
            nonces[i] += 1
            txs.append(unsigned.as_signed_transaction(pks[i], chain_id=1337))
        blocks.append(txs)
    per: list[float] = []
    applied = 0
    for txs in progress(blocks, "py-evm: mine_all", n_blocks, on):
        t0 = time.perf_counter()
        result, receipts, _ = chain.mine_all(txs)
        per.append(time.perf_counter() - t0)
        applied += sum(1 for rc in receipts if rc.gas_used > 0)
        if len(result.imported_block.transactions) != len(txs):
            raise RuntimeError("py-evm left transactions out of the block")
    total = sum(per)
    return {
        "tx_s": applied / total,
        "txs": float(applied),
        "seconds": total,
        "block_p50_s": sorted(per)[len(per) // 2],
    }
