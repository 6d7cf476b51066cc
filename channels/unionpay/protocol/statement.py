"""UnionPay's settlement file read as `StatementLine`s, streaming. Pure: no network.

The file transfer (`txnType` 76) answers the day's zip deflated and base64'd in `fileContent`;
`inflate` writes it out (a spooled temporary file, never a second copy in memory) and
`read_file` reads the one member line by line: space-separated padded columns

    txnCode traceNo traceTime queryId merId orderId txnTime txnAmt settleAmt discount fee
    origQryId origOrderId

(`S22` consume, `S30` refund, `S31` void; amounts 12-digit fen; `fee` `D`/`C` + 12 digits),
closed by `TOTAL <count> <net txnAmt> <net settleAmt> <net fee>`, checked against the lines.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date
from typing import IO

from channels.base import StatementLine
from channels.statement import (
    CHUNK_BYTES,
    SPOOL_BYTES,
    Totals,
    check_summary,
    china_time_ms,
    format_error,
)
from channels.unionpay.protocol.wire import WireError, from_order_id

KINDS = {"S22": "payment", "S30": "refund", "S31": "refund"}
ENCODING = "gb18030"
"""UnionPay's files are GBK; gb18030 reads every GBK file the same."""


def inflate(content: bytes) -> IO[bytes]:
    """The zip inside `fileContent` (zlib-deflated), written to a rewound temporary file."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed to caller
    inflater = zlib.decompressobj()
    try:
        for start in range(0, len(content), CHUNK_BYTES):
            out.write(inflater.decompress(content[start : start + CHUNK_BYTES]))
        out.write(inflater.flush())
    except zlib.error:
        out.close()
        raise format_error("fileContent is not zlib-deflated") from None
    out.seek(0)
    return out


def _number(text: str) -> str:
    """Our order or refund number for an `orderId`; one we did not make stays as it is."""
    try:
        return from_order_id(text)
    except WireError:
        return text


def _fen(text: str, where: str) -> int:
    if len(text) != 12 or not text.isascii() or not text.isdigit():
        raise format_error(f"{where}: {text[:32]!r} is not 12 digits of fen")
    return int(text)


def _line(cells: list[str], number: int, year: int) -> StatementLine:
    where = f"line {number}"
    if len(cells) not in (11, 13) or cells[0] not in KINDS:
        raise format_error(f"{where}: not a settlement line")
    code, _, trace_time, query_id, _, order_id, _, amt, settle, discount, fee_cell = cells[:11]
    orig_query_id, orig_order_id = cells[11:13] if len(cells) == 13 else ("", "")
    amount, settled = _fen(amt, f"{where} txnAmt"), _fen(settle, f"{where} settleAmt")
    if _fen(discount, f"{where} discount") != amount - settled:
        raise format_error(f"{where} discount: not txnAmt less settleAmt")
    if fee_cell[:1] not in ("D", "C"):
        raise format_error(f"{where} fee: {fee_cell[:32]!r} is not D or C and 12 digits")
    fee = _fen(fee_cell[1:], f"{where} fee") * (1 if fee_cell[0] == "D" else -1)
    time = china_time_ms(f"{year}{trace_time}", "%Y%m%d%H%M%S", f"{where} traceTime")
    raw = " ".join(cells)
    if KINDS[code] == "payment":
        return StatementLine(
            kind="payment",
            order_no=_number(order_id),
            refund_no=None,
            channel_trade_no=query_id,
            channel_refund_no=None,
            amount=amount,
            settled=settled,
            fee=fee,
            discount=amount - settled,
            currency="CNY",
            status="succeeded",
            time=time,
            raw=raw,
        )
    if not orig_query_id:
        raise format_error(f"{where} origQryId: a refund or void must name its payment")
    return StatementLine(
        kind="refund",
        order_no=_number(orig_order_id),
        # A void reverses the payment itself: it has no refund number of ours.
        refund_no=_number(order_id) if code == "S30" else None,
        channel_trade_no=orig_query_id,
        channel_refund_no=query_id,
        amount=amount,
        settled=settled,
        fee=fee,
        discount=amount - settled,
        currency="CNY",
        status="succeeded",
        time=time,
        raw=raw,
    )


def read_file(stream: IO[bytes], day: date) -> Iterator[StatementLine]:
    """The lines of `day`'s file (the zip in `stream`), then its TOTAL line checked.

    Raises `StatementInvalid` naming the line or the total that is wrong.
    """
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise format_error("the settlement file is not a zip") from None
    with archive:
        names = archive.namelist()
        if len(names) != 1:
            raise format_error(f"the settlement zip holds {len(names)} files, not one")
        totals = Totals()
        stated: dict[str, int] | None = None
        with archive.open(names[0]) as member:
            text = io.TextIOWrapper(member, encoding=ENCODING, newline=None)
            for number, raw in enumerate(text, 1):
                cells = raw.split()
                if not cells:
                    continue
                if stated is not None:
                    raise format_error(f"line {number}: a line after TOTAL")
                if cells[0] == "TOTAL":
                    if len(cells) != 5 or not all(c.lstrip("-").isdigit() for c in cells[1:]):
                        raise format_error(f"line {number}: a malformed TOTAL line")
                    values = [int(cell) for cell in cells[1:]]
                    stated = dict(zip(("count", "txnAmt", "settleAmt", "fee"), values, strict=True))
                    continue
                line = _line(cells, number, day.year)
                totals.add(line)
                yield line
        if stated is None:
            raise format_error("the settlement file ends without its TOTAL line")
        found = {
            "count": totals.payments + totals.refunds,
            "txnAmt": totals.amount - totals.refund_asked,
            "settleAmt": totals.settled - totals.refunded,
            "fee": totals.fees,
        }
        check_summary(stated, found, "UnionPay settlement file")
