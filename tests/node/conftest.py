"""Fixtures for node tests: node processes are always reaped, whatever happens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nodehelp import NodeProcess


@pytest.fixture(scope="module")
def spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., NodeProcess]]:
    """Start node processes; every one is killed at the end of the module whatever happens."""
    started: list[NodeProcess] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(datadir: Path, *args: str) -> NodeProcess:
        node = NodeProcess(datadir, list(args), logs / f"{datadir.name}-{len(started)}.log")
        started.append(node)
        return node.start()

    yield start
    for node in started:
        node.reap()
