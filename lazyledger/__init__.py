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
    PrivateStateUnavailable,
    SchemaMismatch,
    StorageError,
)
from lazyledger.ledger import Ledger
from lazyledger.materialize.cost import CostModel, CostReport, PayeePolicy, PaymentRefused
from lazyledger.materialize.keyring import Keyring
from lazyledger.model import AccountState, Block, Genesis, Header, Receipt, Transaction
from lazyledger.ops import MAX, Mint, Private, Swap, Transfer
from lazyledger.shards import shard_of
from lazyledger.transactions import mint, private, sign, swap, transfer

__version__ = "0.1.0"

__all__ = [
    "MAX",
    "AccountState",
    "Block",
    "CostModel",
    "CostReport",
    "Genesis",
    "Header",
    "HeightOutOfRange",
    "InvalidBlock",
    "InvalidBlockTransaction",
    "InvalidGenesis",
    "InvalidTransaction",
    "Keypair",
    "Keyring",
    "Ledger",
    "LedgerError",
    "Mint",
    "NotFound",
    "PayeePolicy",
    "PaymentRefused",
    "Private",
    "PrivateStateUnavailable",
    "Receipt",
    "SchemaMismatch",
    "StorageError",
    "Swap",
    "Transaction",
    "Transfer",
    "account_of",
    "mint",
    "private",
    "shard_of",
    "sign",
    "swap",
    "transfer",
]
