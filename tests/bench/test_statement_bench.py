"""Reading a statement streams: ten times the lines, not ten times the memory
(`benchmarks/statement_parse.py`; README Performance has the numbers at a million lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.statement_parse import WRITERS, measure
from channels.statement import SPOOL_BYTES


@pytest.mark.parametrize("channel", sorted(WRITERS))
def test_a_statement_is_read_in_flat_memory(channel: str, tmp_path: Path) -> None:
    small = measure(channel, 500, tmp_path)
    large = measure(channel, 5_000, tmp_path)
    print(f"{channel}: {small} / {large}")
    if channel == "unionpay":
        # The file transfer answers the file inline (deflated, base64'd): that much is held;
        # the inflated zip spools to disk past SPOOL_BYTES, and its lines are read one by one.
        assert large.peak_bytes < 3 * large.file_bytes + SPOOL_BYTES + 1_000_000
    else:
        assert large.peak_bytes < 2 * small.peak_bytes + 200_000
