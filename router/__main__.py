"""`python -m router` and the `payrouter` command (verbs added in `router.cli.main`)."""

from __future__ import annotations

from router.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
