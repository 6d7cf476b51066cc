"""QR images of a payment's code or a page's URL, drawn with segno."""

from __future__ import annotations

import io

import segno


def svg(data: str) -> bytes:
    """An SVG QR code of `data` (error correction M, a quiet zone of 4 modules)."""
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(
        out, kind="svg", scale=8, border=4, xmldecl=False, title="QR code"
    )
    return out.getvalue()


def png(data: str) -> bytes:
    """A PNG QR code of `data`, 8 pixels a module."""
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(out, kind="png", scale=8, border=4)
    return out.getvalue()
