"""lazyledger: a sharded ledger whose blocks commit only transaction inputs; account state is
materialised on demand by replaying dependency slices."""

from lazyledger.crypto import Keypair, account_of
from lazyledger.errors import (
    HeightOutOfRange,
    InvalidBlock,
    InvalidBlockTransaction,
    InvalidGenesis,
    InvalidTransaction,
    LedgerError,
    NotFound,
    SchemaMismatch,
    StorageError,
)
from lazyledger.ledger import Ledger
from lazyledger.model import AccountState, Block, Genesis, Header, Receipt, Transaction
from lazyledger.ops import MAX, Mint, Swap, Transfer
from lazyledger.shards import shard_of
from lazyledger.transactions import mint, sign, swap, transfer

__version__ = "0.1.0"

__all__ = [
    "MAX",
    "AccountState",
    "Block",
    "Genesis",
    "Header",
    "HeightOutOfRange",
    "InvalidBlock",
    "InvalidBlockTransaction",
    "InvalidGenesis",
    "InvalidTransaction",
    "Keypair",
    "Ledger",
    "LedgerError",
    "Mint",
    "NotFound",
    "Receipt",
    "SchemaMismatch",
    "StorageError",
    "Swap",
    "Transaction",
    "Transfer",
    "account_of",
    "mint",
    "shard_of",
    "sign",
    "swap",
    "transfer",
]
