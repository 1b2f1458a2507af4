"""Every benchmark scenario runs from an installed package: scenario code locates nothing
outside ``lazyledger/`` (no repository scripts), and the modules it runs as subprocesses are
importable package modules with a ``main``."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools

import pytest

from lazyledger.bench import scenarios
from lazyledger.bench.scenarios import SCENARIOS


def _subprocess_modules() -> set[str]:
    """Every ``-m <module>`` a scenario passes to a subprocess."""
    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(scenarios))):
        if isinstance(node, ast.List):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            for flag, module in itertools.pairwise(items):
                if flag == "-m":
                    found.add(str(module))
    return found


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_code_stays_inside_the_package(name: str) -> None:
    source = inspect.getsource(SCENARIOS[name].run)
    for outside in ("parents[", "__file__", "bench/", '.py"'):
        assert outside not in source, (name, outside)


def test_subprocess_scenarios_run_package_modules() -> None:
    modules = _subprocess_modules()
    assert modules == {"lazyledger.bench.dnn", "lazyledger.bench.private", "lazyledger.bench.node"}
    for module in modules:
        assert callable(importlib.import_module(module).main), module
