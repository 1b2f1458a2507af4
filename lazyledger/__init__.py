"""lazyledger: a sharded ledger whose blocks commit only transaction inputs; account state is
materialised on demand by replaying dependency slices."""

from lazyledger.client import LightClient, VerificationError
from lazyledger.crypto import Keypair, account_of
from lazyledger.errors import (
    BlobMissing,
    BlobUnavailable,
    HeightOutOfRange,
    InvalidBlock,
    InvalidBlockTransaction,
    InvalidGenesis,
    InvalidRequest,
    InvalidTransaction,
    LedgerError,
    NotFound,
    PrivateStateUnavailable,
    ReadOnlyLedger,
    ReplicaBehind,
    ReplicaMismatch,
    SchemaMismatch,
    StorageError,
)
from lazyledger.ledger import Ledger
from lazyledger.materialize.cost import CostModel, CostReport, PayeePolicy, PaymentRefused
from lazyledger.materialize.keyring import Keyring
from lazyledger.materialize.policy import CheckpointPolicy
from lazyledger.model import AccountState, Block, Genesis, Header, Receipt, Transaction
from lazyledger.ops import (
    MAX,
    DnnClaim,
    DnnInfer,
    DnnJob,
    DnnReveal,
    JobInfo,
    Mint,
    Private,
    Swap,
    Transfer,
    TransferIf,
    job_account,
)
from lazyledger.scale import RayExecutor, RayUnavailable
from lazyledger.shards import shard_of
from lazyledger.store import EnvStats, StorageStats, TableStats
from lazyledger.transactions import (
    dnn_claim,
    dnn_infer,
    dnn_job,
    dnn_reveal,
    mint,
    private,
    sign,
    swap,
    transfer,
    transfer_if,
)

__version__ = "0.1.0"

__all__ = [
    "MAX",
    "AccountState",
    "BlobMissing",
    "BlobUnavailable",
    "Block",
    "CheckpointPolicy",
    "CostModel",
    "CostReport",
    "DnnClaim",
    "DnnInfer",
    "DnnJob",
    "DnnReveal",
    "EnvStats",
    "Genesis",
    "Header",
    "HeightOutOfRange",
    "InvalidBlock",
    "InvalidBlockTransaction",
    "InvalidGenesis",
    "InvalidRequest",
    "InvalidTransaction",
    "JobInfo",
    "Keypair",
    "Keyring",
    "Ledger",
    "LedgerError",
    "LightClient",
    "Mint",
    "NotFound",
    "PayeePolicy",
    "PaymentRefused",
    "Private",
    "PrivateStateUnavailable",
    "RayExecutor",
    "RayUnavailable",
    "ReadOnlyLedger",
    "Receipt",
    "ReplicaBehind",
    "ReplicaMismatch",
    "SchemaMismatch",
    "StorageError",
    "StorageStats",
    "Swap",
    "TableStats",
    "Transaction",
    "Transfer",
    "TransferIf",
    "VerificationError",
    "account_of",
    "dnn_claim",
    "dnn_infer",
    "dnn_job",
    "dnn_reveal",
    "job_account",
    "mint",
    "private",
    "shard_of",
    "sign",
    "swap",
    "transfer",
    "transfer_if",
]
