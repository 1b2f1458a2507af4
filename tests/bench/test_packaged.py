"""Every benchmark scenario runs from an installed package: scenario code locates nothing
outside ``lazyledger/`` (no repository scripts), and the modules it runs as subprocesses are
importable package modules with a ``main``."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys

import pytest

from lazyledger.bench import external
from lazyledger.bench.scenarios import MODULES, SCENARIOS


def _subprocess_modules() -> set[str]:
    """Every module a scenario module passes to ``external.run_module`` (a string, or the name
    of a module-level string constant)."""
    found = set()
    for module in MODULES:
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "run_module"):
                continue
            arg = node.args[1]
            if isinstance(arg, ast.Constant):
                found.add(str(arg.value))
            else:
                assert isinstance(arg, ast.Name), ast.dump(arg)
                found.add(str(getattr(module, arg.id)))
    return found


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_code_stays_inside_the_package(name: str) -> None:
    source = inspect.getsource(sys.modules[SCENARIOS[name].run.__module__])
    for outside in ("parents[", "__file__", "bench/", '.py"'):
        assert outside not in source, (name, outside)


def test_subprocess_scenarios_run_package_modules() -> None:
    modules = _subprocess_modules()
    assert modules == {"lazyledger.bench.dnn", "lazyledger.bench.private", "lazyledger.bench.node"}
    for module in modules:
        assert callable(importlib.import_module(module).main), module
    source = inspect.getsource(external)
    assert '"-m", module' in source and "sys.executable" in source
