"""The materialisation-cost benchmark suite behind ``lazyledger bench``.

Named scenarios (:mod:`lazyledger.bench.scenarios`) measure lazy against eager work side by side
in one run; :mod:`lazyledger.bench.report` writes the results folder (JSON, CSV, Markdown, PNG
plots and a manifest). Nothing here is a timed assertion."""

from lazyledger.bench.model import Result, Settings
from lazyledger.bench.suite import run_suite

__all__ = ["Result", "Settings", "run_suite"]
