"""WeChat Pay's trade bill: a golden file read to exact lines, and every way it is refused.

`statement/tradebill.csv` is written as WeChat writes it: backquoted values, a full-width
comma inside a value, a coupon, a refund of a couponed payment with its fee given back,
fees with five decimals, payments either side of midnight China time, the summary at the end.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.base import StatementLine
from channels.statement import StatementInvalid
from channels.wechat.protocol.statement import read_trade_bill, text_rows, verify_sha1

GOLDEN = (Path(__file__).parent / "statement" / "tradebill.csv").read_bytes()


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).astimezone(UTC).timestamp()) * 1000


def read(content: bytes) -> list[StatementLine]:
    return list(read_trade_bill(text_rows(io.BytesIO(content))))


def raw_line(number: int) -> str:
    return GOLDEN.decode().split("\r\n")[number - 1]


def test_the_golden_bill_reads_to_exact_lines() -> None:
    assert read(GOLDEN) == [
        StatementLine(
            kind="payment",
            order_no="pay_0A1b2C3d4E5f6G7h8I9j0K",
            refund_no=None,
            channel_trade_no="4200000001202611281234567890",
            channel_refund_no=None,
            amount=10_000,
            settled=9_200,
            fee=55,
            discount=800,
            currency="CNY",
            status="succeeded",
            time=ms("2026-11-28T23:59:59+08:00"),
            raw=raw_line(2),
        ),
        StatementLine(
            kind="refund",
            order_no="pay_0A1b2C3d4E5f6G7h8I9j0K",
            refund_no="re_0A1b2C3d4E5f6G7h8I9j0K",
            channel_trade_no="4200000001202611281234567890",
            channel_refund_no="50300000012026112900000000001",
            amount=3_000,
            settled=2_760,
            fee=-17,
            discount=240,
            currency="CNY",
            status="succeeded",
            time=ms("2026-11-29T00:00:01+08:00"),
            raw=raw_line(3),
        ),
        StatementLine(
            kind="payment",
            order_no="pos00000000000000000001",
            refund_no=None,
            channel_trade_no="4200000002202611299876543210",
            channel_refund_no=None,
            amount=100,
            settled=100,
            fee=1,
            discount=0,
            currency="CNY",
            status="succeeded",
            time=ms("2026-11-29T04:00:00Z"),
            raw=raw_line(4),
        ),
    ]


def test_a_gzipd_bill_is_verified_and_reads_the_same() -> None:
    packed = io.BytesIO(gzip.compress(GOLDEN))
    verify_sha1(packed, hashlib.sha1(GOLDEN, usedforsecurity=False).hexdigest().upper())
    assert list(read_trade_bill(text_rows(packed))) == read(GOLDEN)


def test_a_bill_whose_hash_differs_is_refused() -> None:
    stated = hashlib.sha1(GOLDEN, usedforsecurity=False).hexdigest()
    tampered = GOLDEN.replace(b"`92.00", b"`93.00")
    with pytest.raises(StatementInvalid) as caught:
        verify_sha1(io.BytesIO(gzip.compress(tampered)), stated)
    assert caught.value.code == "STATEMENT_HASH"


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (b"`0.39000", b"`0.40000", "手续费总金额"),
        (b"`93.00", b"`93.01", "应结订单总金额"),
        (b"`3,`93.00", b"`4,`93.00", "总交易单数"),
        (b"`101.00", b"`100.00", "订单总金额"),
        (b"`27.60,`0.00,`0.39", b"`27.00,`0.00,`0.39", "退款总金额"),
    ],
)
def test_a_summary_that_disagrees_with_the_lines_is_refused(
    old: bytes, new: bytes, named: str
) -> None:
    assert GOLDEN.count(old) == 1
    with pytest.raises(StatementInvalid) as caught:
        read(GOLDEN.replace(old, new))
    assert caught.value.code == "STATEMENT_SUMMARY"
    assert named in caught.value.message


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (b"`92.00", b"`92.001", "line 2 应结订单金额"),
        (b"`92.00", b"`9.2e1", "line 2 应结订单金额"),
        (b"`0.55000", b"`0.55100", "line 2 手续费"),
        (b"`0.55000", b"`0.55", "line 2 手续费"),
        (b"`NATIVE,`REFUND", b"`NATIVE,`CLOSED", "line 3 交易状态"),
        (b"`2026-11-29 12:00:00", b"`2026-11-29 25:00:00", "line 4 交易时间"),
    ],
)
def test_a_malformed_value_is_refused_naming_its_line_and_column(
    old: bytes, new: bytes, named: str
) -> None:
    with pytest.raises(StatementInvalid) as caught:
        read(GOLDEN.replace(old, new, 1))
    assert caught.value.code == "STATEMENT_FORMAT"
    assert named in caught.value.message


def test_a_bill_cut_short_is_refused() -> None:
    body = GOLDEN.split(b"\r\n")
    with pytest.raises(StatementInvalid, match="without its summary"):
        read(b"\r\n".join(body[:4]) + b"\r\n")
    with pytest.raises(StatementInvalid, match="header"):
        read(b"\r\n".join(body[1:]))


def test_columns_are_found_by_name_and_a_missing_one_is_named() -> None:
    rows = GOLDEN.decode().split("\r\n")
    widened = [row + (",费率备注2" if i == 0 else ",`x") for i, row in enumerate(rows[:4])]
    lines = read(("\r\n".join(widened + rows[4:])).encode())
    assert [(line.order_no, line.amount, line.fee) for line in lines] == [
        (line.order_no, line.amount, line.fee) for line in read(GOLDEN)
    ]
    with pytest.raises(StatementInvalid, match="line 1: the header has no 手续费"):
        read(GOLDEN.replace("手续费,".encode(), "服务费,".encode(), 1))
