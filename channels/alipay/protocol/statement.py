"""Alipay's trade bill read as `StatementLine`s, streaming. Pure: no network.

The bill is a zip of two GBK CSV files: the detail (`..._业务明细.csv`) and the summary
(`..._业务明细(汇总).csv`). Lines starting `#` are comments (title, account, period, the
ruler lines, and the detail's closing `#交易合计：N笔，退款合计：M笔`); amounts are yuan with
two decimals, a refund's negative; 服务费 is written as a deduction (negative on a payment).
Each member is inflated and decoded as it is read: the whole file is never in memory.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from typing import IO

from channels.base import StatementLine
from channels.statement import (
    Totals,
    check_summary,
    china_time_ms,
    columns,
    format_error,
    yuan_to_fen,
)

_HEADER_TEXT = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)
_SUMMARY_TEXT = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,服务费（元）,"
    "实收净额（元）"
)
HEADER = _HEADER_TEXT.split(",")
"""The detail's columns as Alipay writes them today; they are found by name (`NEEDED`)."""
SUMMARY_HEADER = _SUMMARY_TEXT.split(",")
DETAIL_SUFFIX = "_业务明细.csv"
SUMMARY_SUFFIX = "_业务明细(汇总).csv"
ENCODING = "gb18030"
"""A superset of GBK: every GBK file reads the same, and nothing it writes is refused."""
NEEDED = (
    "支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）", "商家实收（元）",
    "退款批次号/请求号", "服务费（元）",
)  # fmt: skip
"""The columns a line is read from; others (a newer file's) are kept in `raw` only."""
_SUMMARY_COUNTS = {"交易": "交易订单总笔数", "退款": "退款订单总笔数"}
_SUMMARY_AMOUNTS = {
    "订单金额": "订单金额（元）",
    "商家实收": "商家实收（元）",
    "服务费": "服务费（元）",
    "实收净额": "实收净额（元）",
}
_FOOTER = re.compile(r"#交易合计：([0-9]+)笔，退款合计：([0-9]+)笔")
_TIME = "%Y-%m-%d %H:%M:%S"


def _member(archive: zipfile.ZipFile, suffix: str) -> str:
    found = [name for name in archive.namelist() if name.endswith(suffix)]
    if len(found) != 1:
        raise format_error(f"the bill's zip holds {len(found)} files named *{suffix}, not one")
    return found[0]


def _rows(archive: zipfile.ZipFile, name: str) -> Iterator[list[str]]:
    with archive.open(name) as member:
        text = io.TextIOWrapper(member, encoding=ENCODING, newline="")
        yield from csv.reader(text)


def _line(row: list[str], number: int, column: dict[str, int], width: int) -> StatementLine:
    if len(row) != width:
        raise format_error(f"detail line {number}: {len(row)} columns, not {width}")

    def cell(name: str) -> str:
        return row[column[name]].strip()

    def fen(name: str) -> int:
        return yuan_to_fen(cell(name), f"detail line {number} {name}")

    kind = cell("业务类型")
    amount, settled, fee = fen("订单金额（元）"), fen("商家实收（元）"), -fen("服务费（元）")
    refund = kind == "退款"
    if kind not in ("交易", "退款"):
        raise format_error(f"detail line {number} 业务类型: {kind[:32]!r} unknown")
    if (amount < 0) != refund:
        raise format_error(f"detail line {number} 订单金额（元）: the sign disagrees with {kind}")
    if refund:
        amount, settled = -amount, -settled
    return StatementLine(
        kind="refund" if refund else "payment",
        order_no=cell("商户订单号"),
        refund_no=cell("退款批次号/请求号") or None if refund else None,
        channel_trade_no=cell("支付宝交易号"),
        channel_refund_no=None,
        amount=amount,
        settled=settled,
        fee=fee,
        discount=amount - settled,
        currency="CNY",
        status="succeeded",
        time=china_time_ms(cell("完成时间"), _TIME, f"detail line {number} 完成时间"),
        raw=",".join(row),
    )


def _summary(archive: zipfile.ZipFile) -> dict[str, int]:
    stated = dict.fromkeys(("交易", "退款", "订单金额", "商家实收", "服务费", "实收净额"), 0)
    header: list[str] | None = None
    column: dict[str, int] = {}
    for number, row in enumerate(_rows(archive, _member(archive, SUMMARY_SUFFIX)), 1):
        if not row or row[0].startswith("#"):
            continue
        if header is None:
            header = row
            needed = [*_SUMMARY_COUNTS.values(), *_SUMMARY_AMOUNTS.values()]
            column = columns(row, needed, f"summary line {number}")
            continue
        if header is None or len(row) != len(header):
            raise format_error(f"summary line {number}: not a summary row")
        if row[0].strip() == "合计":
            continue
        where = f"summary line {number}"
        for name, title in _SUMMARY_COUNTS.items():
            count = row[column[title]].strip()
            if not count.isdigit():
                raise format_error(f"{where} {title}: not a count")
            stated[name] += int(count)
        for name, title in _SUMMARY_AMOUNTS.items():
            stated[name] += yuan_to_fen(row[column[title]].strip(), f"{where} {title}")
    if header is None:
        raise format_error("the summary file has no header")
    return stated


def read_bill(stream: IO[bytes]) -> Iterator[StatementLine]:
    """The detail's lines, then its footer and the summary file checked against them.

    Raises `StatementInvalid` naming the line, or the summary figure, that is wrong.
    """
    try:
        archive = zipfile.ZipFile(stream, metadata_encoding="gbk")
    except zipfile.BadZipFile:
        raise format_error("the bill is not a zip file") from None
    with archive:
        totals = Totals()
        footer: tuple[int, int] | None = None
        header: list[str] | None = None
        column: dict[str, int] = {}
        for number, row in enumerate(_rows(archive, _member(archive, DETAIL_SUFFIX)), 1):
            if not row:
                continue
            if row[0].startswith("#"):
                match = _FOOTER.fullmatch(",".join(row).strip())
                if match is not None:
                    footer = (int(match.group(1)), int(match.group(2)))
                continue
            if header is None:
                # The first row that is not a comment names the columns.
                header = row
                column = columns(row, NEEDED, f"detail line {number}")
                continue
            if header is None or footer is not None:
                raise format_error(f"detail line {number}: a row outside the detail list")
            line = _line(row, number, column, len(header))
            totals.add(line)
            yield line
        if footer is None:
            raise format_error("the detail ends without #交易合计")
        check_summary(
            {"交易合计": footer[0], "退款合计": footer[1]},
            {"交易合计": totals.payments, "退款合计": totals.refunds},
            "Alipay bill detail",
        )
        settled = totals.settled - totals.refunded
        check_summary(
            _summary(archive),
            {
                "交易": totals.payments,
                "退款": totals.refunds,
                "订单金额": totals.amount - totals.refund_asked,
                "商家实收": settled,
                "服务费": -totals.fees,
                "实收净额": settled - totals.fees,
            },
            "Alipay bill summary",
        )
