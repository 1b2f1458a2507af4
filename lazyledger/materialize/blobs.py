"""Blob availability, a validation rule: a transaction may enter a block only if every blob it
references is held here, hashes to its name, fits the genesis bound and is well formed for its
kind. Checking a blob is derived from the transaction's inputs alone: nothing is executed.

What a transaction references (:func:`references`):

- ``dnn_job``: its spec (a model spec), training and validation sets (datasets); a hidden
  validation set is not referenced by the job, only by its reveal;
- ``dnn_claim``: its weights, decoded against the job's spec;
- ``dnn_infer``: its inputs (a dataset);
- ``dnn_reveal``: the job's validation set (a dataset).

Private calls are transfers, mints, swaps or conditional transfers: they reference no blob."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from lazyledger.errors import BlobUnavailable, LedgerError
from lazyledger.materialize import dnn
from lazyledger.materialize.host import blob_hash
from lazyledger.model import Transaction
from lazyledger.ops import DnnClaim, DnnInfer, DnnJob, DnnReveal

JobTerms = Callable[[bytes], DnnJob | None]
"""A job account's terms (its dnn_job call), None if no such job is in an earlier block."""
BlobFetch = Callable[[bytes], bytes | None]
"""The bytes this node holds under a blob hash, None if it holds none."""

_MEMO_LIMIT = 1 << 16


@attrs.frozen
class BlobRef:
    """One blob a transaction references: its hash, the argument naming it, its kind
    ("spec", "dataset" or "weights") and, for weights, the hash of the spec they are for."""

    blob: bytes
    field: str
    kind: str
    spec: bytes | None = None


def references(tx: Transaction, terms: JobTerms) -> list[BlobRef]:
    """The blobs ``tx`` references, in argument order (none for a call naming an unknown job:
    validation refuses that on its own)."""
    call = tx.call
    if isinstance(call, DnnJob):
        refs = [BlobRef(call.spec, "spec", "spec"), BlobRef(call.train, "train", "dataset")]
        if not call.hidden:
            refs.append(BlobRef(call.validation, "validation", "dataset"))
        return refs
    if isinstance(call, DnnInfer):
        return [BlobRef(call.inputs, "inputs", "dataset")]
    if isinstance(call, DnnClaim | DnnReveal):
        job = terms(call.job)
        if job is None:
            return []
        if isinstance(call, DnnClaim):
            return [BlobRef(call.weights, "weights", "weights", job.spec)]
        return [BlobRef(job.validation, "hidden validation", "dataset")]
    return []


class BlobRule:
    """Checks the blobs of transactions against what ``fetch`` holds. A blob that passed (as
    one kind, for one spec) is remembered, so checking it again costs only a lookup that it is
    still ``held``, no decoding; the memory holds only verdicts derived from the blob's bytes."""

    def __init__(
        self, max_bytes: int, fetch: BlobFetch, held: Callable[[bytes], bool] | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.fetch = fetch
        self.held = held if held is not None else (lambda key: fetch(key) is not None)
        self._passed: set[BlobRef] = set()

    def missing(self, tx: Transaction, terms: JobTerms) -> list[bytes]:
        """The hashes of the blobs ``tx`` references that this node does not hold."""
        return [r.blob for r in references(tx, terms) if self.fetch(r.blob) is None]

    def check(self, tx: Transaction, terms: JobTerms) -> None:
        """Raise :class:`BlobUnavailable` (an InvalidTransaction naming the blob) unless every
        blob ``tx`` references is held, hashes right, is within the bound and well formed."""
        for ref in references(tx, terms):
            self.check_ref(ref)

    def check_ref(self, ref: BlobRef) -> None:
        if ref in self._passed and self.held(ref.blob):
            return
        data = self.fetch(ref.blob)
        if data is None:
            raise BlobUnavailable(ref.blob, ref.field, "not held by this node", missing=True)
        if len(data) > self.max_bytes:
            raise BlobUnavailable(
                ref.blob, ref.field, f"{len(data)} bytes exceed max_blob_bytes {self.max_bytes}"
            )
        if blob_hash(data) != ref.blob:
            raise BlobUnavailable(ref.blob, ref.field, "the bytes held do not hash to it")
        try:
            check_kind(ref.kind, data, None if ref.spec is None else self._spec(ref))
        except (LedgerError, ValueError) as e:
            if isinstance(e, BlobUnavailable):
                raise
            raise BlobUnavailable(ref.blob, ref.field, f"malformed {ref.kind}: {e}") from None
        if len(self._passed) >= _MEMO_LIMIT:
            self._passed.clear()
        self._passed.add(ref)

    def _spec(self, ref: BlobRef) -> bytes:
        assert ref.spec is not None
        spec = BlobRef(ref.spec, "spec of the job", "spec")
        self.check_ref(spec)  # held and checked when the job entered; lost since is local loss
        data = self.fetch(ref.spec)
        assert data is not None
        return data


def check_kind(kind: str, data: bytes, spec: bytes | None = None) -> None:
    """Raise a LedgerError (or ValueError) unless ``data`` decodes as a blob of ``kind``
    ("weights" need the bytes of their ``spec``)."""
    if kind == "spec":
        dnn.decode_spec(data)
    elif kind == "dataset":
        dnn.decode_dataset(data)
    elif kind == "weights" and spec is not None:
        dnn.decode_weights(dnn.decode_spec(spec), data)
    else:
        raise ValueError(f"unknown blob kind {kind!r}")
