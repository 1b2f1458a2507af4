"""``python -m lazyledger.node``."""

from lazyledger.node.cli import main

raise SystemExit(main())
