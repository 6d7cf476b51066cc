"""Risk tests reuse the store fixtures (every topology) and the end-to-end fixtures."""

from __future__ import annotations

from tests.e2e.conftest import http, processes, simulator
from tests.router.conftest import clock, store

__all__ = ["clock", "http", "processes", "simulator", "store"]
