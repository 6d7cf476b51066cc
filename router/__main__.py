"""`python -m router` and the `payrouter` command: every verb registered on one group."""

from __future__ import annotations

from benchmarks.harness import cli as cli_bench  # noqa: F401 - registers `payrouter bench`
from router.cli import (
    routes,  # noqa: F401 - registers `payrouter routes ...`
    run,  # noqa: F401 - registers `payrouter serve|sim|dev`
    webhooks,  # noqa: F401 - registers `payrouter merchants webhook-...`
)
from router.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
