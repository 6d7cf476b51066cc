"""`python -m router` and the `payrouter` command: every verb registered on one group."""

from __future__ import annotations

from router import (
    cli_routes,  # noqa: F401 - registers `payrouter routes ...`
    cli_run,  # noqa: F401 - registers `payrouter serve|sim|dev`
    cli_webhooks,  # noqa: F401 - registers `payrouter merchants webhook-...`
)
from router.bench import cli as cli_bench  # noqa: F401 - registers `payrouter bench`
from router.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
