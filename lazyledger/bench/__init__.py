"""The materialisation-cost benchmark suite behind ``lazyledger bench``.

Named scenarios, one module each under :mod:`lazyledger.bench.scenarios`, measure lazy against
eager work side by side in one run and declare their parameters per profile, metrics, targets
and plot; :mod:`lazyledger.bench.report` writes the results folder (JSON, CSV, Markdown, PNG
plots and a manifest) from those declarations. Nothing here is a timed assertion."""

from lazyledger.bench.model import Result, Settings
from lazyledger.bench.suite import run_suite

__all__ = ["Result", "Settings", "run_suite"]
