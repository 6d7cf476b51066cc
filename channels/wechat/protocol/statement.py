"""WeChat Pay's trade bill read as `StatementLine`s, streaming. Pure: no network.

The file (gzip'd when asked with `tar_type=GZIP`) is UTF-8 CSV: a header row, one row per
payment (交易状态 SUCCESS) or refund (REFUND), every value prefixed with a backquote; then
the summary header and the summary line. `verify_sha1` checks WeChat's hash over the
uncompressed bytes before anything is read; `read_trade_bill` yields the rows one by one and,
at the end, holds the summary against the sums of the rows; `read_fundflow_bill` does the same
for the fund-flow bill's movements. Nothing here holds the whole file.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, cast

from channels.base import StatementLine, StatementStatus
from channels.statement import (
    StatementInvalid,
    Totals,
    check_summary,
    china_time_ms,
    chunks,
    columns,
    format_error,
    yuan_to_fen,
)

_HEADER_TEXT = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
_SUMMARY_TEXT = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
HEADER = _HEADER_TEXT.split(",")
SUMMARY_HEADER = _SUMMARY_TEXT.split(",")
NEEDED = (
    "交易时间", "微信订单号", "商户订单号", "交易状态", "货币种类", "应结订单金额", "微信退款单号",
    "商户退款单号", "退款金额", "退款状态", "手续费", "订单金额", "申请退款金额",
)  # fmt: skip
"""The columns a line is read from; others (a newer file's) are kept in `raw` only."""
SUMMARY_NEEDED = (
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
)
_REFUND_STATES: dict[str, StatementStatus] = {
    "SUCCESS": "succeeded",
    "PROCESSING": "pending",
    "CHANGE": "failed",
    "REFUNDCLOSE": "failed",
}
_GZIP_MAGIC = b"\x1f\x8b"


def uncompressed(stream: IO[bytes]) -> IO[bytes]:
    """The bill's bytes, inflated as they are read when the file is gzip'd (rewinds)."""
    stream.seek(0)
    magic = stream.read(2)
    stream.seek(0)
    if magic == _GZIP_MAGIC:
        return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    return stream


def verify_sha1(stream: IO[bytes], expected: str) -> None:
    """WeChat's SHA1 over the uncompressed bill. Raises `StatementInvalid` on a mismatch."""
    digest = hashlib.sha1(usedforsecurity=False)
    for chunk in chunks(uncompressed(stream)):
        digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise StatementInvalid(
            f"the bill's SHA1 is {digest.hexdigest()}, WeChat Pay said {expected}",
            code="STATEMENT_HASH",
        )
    stream.seek(0)


def text_rows(stream: IO[bytes]) -> Iterator[list[str]]:
    """The bill's CSV rows, read from the (possibly gzip'd) stream as UTF-8."""
    text = io.TextIOWrapper(uncompressed(stream), encoding="utf-8-sig", newline="")
    yield from csv.reader(text)


def _plain(cell: str) -> str:
    return cell[1:] if cell.startswith("`") else cell


def _line(row: list[str], number: int, column: dict[str, int], width: int) -> StatementLine:
    if len(row) != width:
        raise format_error(f"line {number}: {len(row)} columns, the header has {width}")

    def cell(name: str) -> str:
        return _plain(row[column[name]])

    def fen(name: str, places: int = 2) -> int:
        return yuan_to_fen(cell(name), f"line {number} {name}", places=places)

    state = cell("交易状态")
    fee = fen("手续费", 5)
    time = china_time_ms(cell("交易时间"), "%Y-%m-%d %H:%M:%S", f"line {number} 交易时间")
    raw = ",".join(row)
    if state == "SUCCESS":
        amount, settled = fen("订单金额"), fen("应结订单金额")
        return StatementLine(
            kind="payment",
            order_no=cell("商户订单号"),
            refund_no=None,
            channel_trade_no=cell("微信订单号"),
            channel_refund_no=None,
            amount=amount,
            settled=settled,
            fee=fee,
            discount=amount - settled,
            currency=cell("货币种类"),
            status="succeeded",
            time=time,
            raw=raw,
        )
    if state == "REFUND":
        status = _REFUND_STATES.get(cell("退款状态"))
        if status is None:
            raise format_error(f"line {number} 退款状态: {cell('退款状态')[:32]!r} unknown")
        amount, settled = fen("申请退款金额"), fen("退款金额")
        return StatementLine(
            kind="refund",
            order_no=cell("商户订单号"),
            refund_no=cell("商户退款单号"),
            channel_trade_no=cell("微信订单号"),
            channel_refund_no=cell("微信退款单号"),
            amount=amount,
            settled=settled,
            fee=fee,
            discount=amount - settled,
            currency=cell("货币种类"),
            status=status,
            time=time,
            raw=raw,
        )
    raise format_error(f"line {number} 交易状态: {state[:32]!r} is neither SUCCESS nor REFUND")


def read_trade_bill(rows: Iterable[list[str]]) -> Iterator[StatementLine]:
    """The bill's lines, then its summary checked. Raises `StatementInvalid`."""
    source = iter(rows)
    header = next(source, None)
    if not header or header[0] != HEADER[0]:
        raise format_error("line 1: not WeChat Pay's trade bill header")
    column = columns(header, NEEDED, "line 1")
    totals = Totals()
    number = 1
    for row in source:
        number += 1
        if row and row[0] == SUMMARY_HEADER[0]:
            summary_header = row
            break
        line = _line(row, number, column, len(header))
        totals.add(line)
        yield line
    else:
        raise format_error("the bill ends without its summary")
    where = f"line {number + 1}"
    named = columns(summary_header, SUMMARY_NEEDED, f"line {number}")
    summary = next(source, None)
    if summary is None or len(summary) != len(summary_header):
        raise format_error(f"{where}: the summary line is missing or malformed")

    def value(name: str, places: int = 2) -> int:
        return yuan_to_fen(_plain(summary[named[name]]), f"{where} {name}", places=places)

    count = _plain(summary[named["总交易单数"]])
    if not count.isdigit():
        raise format_error(f"{where} 总交易单数: {count[:32]!r} is not a count")
    stated = {
        "总交易单数": int(count),
        "应结订单总金额": value("应结订单总金额"),
        "退款总金额": value("退款总金额"),
        "手续费总金额": value("手续费总金额", 5),
        "订单总金额": value("订单总金额"),
        "申请退款总金额": value("申请退款总金额"),
    }
    found = {
        "总交易单数": totals.payments + totals.refunds,
        "应结订单总金额": totals.settled,
        "退款总金额": totals.refunded,
        "手续费总金额": totals.fees,
        "订单总金额": totals.amount,
        "申请退款总金额": totals.refund_asked,
    }
    check_summary(stated, found, "WeChat Pay trade bill")
    if any(any(cell.strip() for cell in row) for row in source):
        raise format_error(f"lines after the summary (line {number + 1})")


FUNDFLOW_NEEDED = (
    "记账时间",
    "微信支付业务单号",
    "资金流水单号",
    "业务类型",
    "收支类型",
    "收支金额（元）",
)
FUNDFLOW_SUMMARY = ("资金流水总笔数", "收入笔数", "收入金额", "支出笔数", "支出金额")


@dataclass(frozen=True, slots=True)
class FundFlow:
    """One movement of the basic account in WeChat Pay's fund-flow bill."""

    time: int
    """UTC epoch milliseconds."""
    business_no: str
    """The payment's or refund's WeChat number (微信支付业务单号)."""
    flow_no: str
    kind: str
    """业务类型: 交易, 扣除交易手续费, 退款, ..."""
    amount: int
    """Positive for income (收入), negative for expense (支出), minor units."""
    raw: str


def read_fundflow_bill(rows: Iterable[list[str]]) -> Iterator[FundFlow]:
    """The fund-flow bill's movements, then its summary checked. Raises `StatementInvalid`."""
    source = iter(rows)
    header = next(source, None)
    if not header or header[0] != FUNDFLOW_NEEDED[0]:
        raise format_error("line 1: not WeChat Pay's fund-flow bill header")
    column = columns(header, FUNDFLOW_NEEDED, "line 1")
    found = dict.fromkeys(FUNDFLOW_SUMMARY, 0)
    number = 1
    for row in source:
        number += 1
        if row and row[0] == FUNDFLOW_SUMMARY[0]:
            named, width = columns(row, FUNDFLOW_SUMMARY, f"line {number}"), len(row)
            break
        if len(row) != len(header):
            raise format_error(f"line {number}: {len(row)} columns, the header has {len(header)}")

        def cell(name: str, row: list[str] = row) -> str:
            return _plain(row[column[name]])

        where = f"line {number}"
        amount = yuan_to_fen(cell("收支金额（元）"), f"{where} 收支金额（元）")
        direction = cell("收支类型")
        if direction not in ("收入", "支出") or amount < 0:
            raise format_error(f"{where} 收支类型: {direction[:32]!r} with {amount}")
        income = direction == "收入"
        found["资金流水总笔数"] += 1
        found["收入笔数" if income else "支出笔数"] += 1
        found["收入金额" if income else "支出金额"] += amount
        yield FundFlow(
            time=china_time_ms(cell("记账时间"), "%Y-%m-%d %H:%M:%S", f"{where} 记账时间"),
            business_no=cell("微信支付业务单号"),
            flow_no=cell("资金流水单号"),
            kind=cell("业务类型"),
            amount=amount if income else -amount,
            raw=",".join(row),
        )
    else:
        raise format_error("the fund-flow bill ends without its summary")
    summary = next(source, None)
    where = f"line {number + 1}"
    if summary is None or len(summary) != width:
        raise format_error(f"{where}: the summary line is missing or malformed")
    stated: dict[str, int] = {}
    for name in FUNDFLOW_SUMMARY:
        text = _plain(summary[named[name]])
        if name.endswith("金额"):
            stated[name] = yuan_to_fen(text, f"{where} {name}")
        elif text.isdigit():
            stated[name] = int(text)
        else:
            raise format_error(f"{where} {name}: {text[:32]!r} is not a count")
    check_summary(stated, found, "WeChat Pay fund-flow bill")
