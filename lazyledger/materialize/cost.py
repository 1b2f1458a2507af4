"""The cost of accepting a payment, known before materialising: slice size and spread, private
dependencies, DNN checks, and an estimated time from a calibrated per-operation cost model.

Estimates are wall-clock guesses for a payee's policy; nothing here feeds back into state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import attrs
import numpy as np

from lazyledger.errors import LedgerError
from lazyledger.model import AccountState


@attrs.frozen
class CostReport:
    """What materialising ``account`` at ``height`` takes, from the index alone."""

    account: bytes
    height: int
    slice_txs: int
    slice_shards: int
    slice_accounts: int
    private_txs: int
    unreadable: list[bytes]
    dnn_checks: int
    estimated_seconds: float

    @property
    def materialisable(self) -> bool:
        """False when some private dependency cannot be read with the keyring asked about."""
        return not self.unreadable


class Measured(Protocol):
    """What :meth:`CostModel.calibrate` measures (a :class:`lazyledger.Ledger`): cost reports,
    cold materialisations, and the switch that keeps them cold."""

    checkpoint_min_rows: int

    def cost(self, account: bytes) -> CostReport: ...

    def state(self, account: bytes) -> AccountState: ...


@attrs.frozen
class CostModel:
    """t = fixed + per_tx * slice_txs + per_account * slice_accounts + per_private * private.

    The defaults were fitted by :meth:`calibrate` on the 2-core development machine; call it on
    the machine (and workload) whose estimates matter."""

    fixed_s: float = 4e-4
    per_tx_s: float = 2.5e-6
    per_account_s: float = 1.5e-5
    per_private_s: float = 6e-5
    per_dnn_check_s: float = 0.05

    def estimate(self, txs: int, accounts: int, private: int, dnn_checks: int = 0) -> float:
        return (
            self.fixed_s
            + self.per_tx_s * txs
            + self.per_account_s * accounts
            + self.per_private_s * private
            + self.per_dnn_check_s * dnn_checks
        )

    @classmethod
    def calibrate(cls, ledger: Measured, accounts: Sequence[bytes], repeats: int = 3) -> CostModel:
        """Fit the per-transaction and per-account costs from cold materialisations (no
        checkpoints) of ``accounts`` on ``ledger``; private and DNN costs keep their values."""
        saved = ledger.checkpoint_min_rows
        ledger.checkpoint_min_rows = 1 << 62  # measure cold queries: write no checkpoint
        features, seconds = [], []
        try:
            for account in accounts:
                report = ledger.cost(account)
                if not report.materialisable:
                    continue
                best = float("inf")
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    ledger.state(account)
                    best = min(best, time.perf_counter() - t0)
                features.append([1.0, report.slice_txs, report.slice_accounts])
                seconds.append(best - cls().per_private_s * report.private_txs)
        finally:
            ledger.checkpoint_min_rows = saved
        if len(features) < 3:
            raise LedgerError("calibration needs at least 3 materialisable accounts")
        coef, *_ = np.linalg.lstsq(np.array(features), np.array(seconds), rcond=None)
        fixed, per_tx, per_account = (max(float(c), 0.0) for c in coef)
        return attrs.evolve(cls(), fixed_s=fixed, per_tx_s=per_tx, per_account_s=per_account)


class PaymentRefused(LedgerError):
    """A payee policy refuses a payment whose materialisation cost exceeds its limits."""

    def __init__(self, report: CostReport, reasons: list[str]) -> None:
        self.report, self.reasons = report, reasons
        super().__init__(f"payment from {report.account.hex()[:16]} refused: " + "; ".join(reasons))


@attrs.frozen
class PayeePolicy:
    """Limits a payee puts on what it is willing to materialise to accept a payment."""

    max_slice_txs: int | None = None
    max_seconds: float | None = None
    max_private: int | None = None
    max_unreadable: int = 0
    max_dnn_checks: int | None = None

    def reasons(self, report: CostReport) -> list[str]:
        """Why ``report`` breaks this policy (empty: acceptable)."""
        out = []
        if self.max_slice_txs is not None and report.slice_txs > self.max_slice_txs:
            out.append(f"slice of {report.slice_txs} transactions > {self.max_slice_txs}")
        if self.max_seconds is not None and report.estimated_seconds > self.max_seconds:
            out.append(f"estimated {report.estimated_seconds:.3g} s > {self.max_seconds:.3g} s")
        if self.max_private is not None and report.private_txs > self.max_private:
            out.append(f"{report.private_txs} private dependencies > {self.max_private}")
        if len(report.unreadable) > self.max_unreadable:
            out.append(f"{len(report.unreadable)} private dependencies this keyring cannot read")
        if self.max_dnn_checks is not None and report.dnn_checks > self.max_dnn_checks:
            out.append(f"{report.dnn_checks} DNN checks > {self.max_dnn_checks}")
        return out

    def accepts(self, report: CostReport) -> bool:
        return not self.reasons(report)

    def check(self, report: CostReport) -> None:
        """Raise PaymentRefused unless the report is within limits."""
        reasons = self.reasons(report)
        if reasons:
            raise PaymentRefused(report, reasons)
