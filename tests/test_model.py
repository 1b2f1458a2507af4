"""Readers on the value types."""

from __future__ import annotations

import lazyledger as ll
from lazyledger.ops import JOB_STATUS, MAX_REGISTER, REGISTER_BASE, RESERVED_ASSETS


def test_registers_read_inference_results_from_storage() -> None:
    st = ll.AccountState.split(
        2,
        {
            0: 5,
            REGISTER_BASE: 1,  # register 0 holds class 0
            REGISTER_BASE + 7: 10,  # register 7 holds class 9
            REGISTER_BASE + MAX_REGISTER: 4,  # the last register
            JOB_STATUS: 3,  # a job's status is storage, not a register
            RESERVED_ASSETS: 8,
        },
    )
    assert st.balances == {0: 5}
    assert st.registers == {0: 0, 7: 9, MAX_REGISTER: 3}
    assert ll.AccountState(0).registers == {}
