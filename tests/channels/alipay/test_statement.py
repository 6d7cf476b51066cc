"""Alipay's trade bill: golden GBK files zipped as Alipay does, read to exact lines, and refused
when the footer, the summary or a value is wrong.

`statement/detail.csv` and `statement/summary.csv` are GBK, with Alipay's `#` comment lines,
tabs after long numbers, a full-width comma inside a value, a red packet (Alipay's money:
the merchant still receives it) beside a merchant coupon (商家优惠, which it does not), a
negative refund line that gives the coupon's share and the fee back, and a 合计 summary row.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.alipay.protocol.statement import read_bill
from channels.alipay.sim.bill import gbk_entry
from channels.base import StatementLine
from channels.statement import StatementInvalid

HERE = Path(__file__).parent / "statement"
DETAIL = (HERE / "detail.csv").read_bytes()
SUMMARY = (HERE / "summary.csv").read_bytes()
NAME = "20889999999999990156_20261129"


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).astimezone(UTC).timestamp()) * 1000


def bill(detail: bytes = DETAIL, summary: bytes = SUMMARY) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(gbk_entry(f"{NAME}_业务明细.csv"), detail)
        archive.writestr(gbk_entry(f"{NAME}_业务明细(汇总).csv"), summary)
    buffer.seek(0)
    return buffer


def raw_line(number: int) -> str:
    return DETAIL.decode("gbk").split("\r\n")[number - 1]


def test_the_zip_names_its_files_in_gbk_as_alipay_does() -> None:
    with zipfile.ZipFile(bill()) as archive:
        assert not any(entry.flag_bits & 0x800 for entry in archive.infolist())
        raw_names = [entry.orig_filename for entry in archive.infolist()]
    assert raw_names[0].encode("cp437") == f"{NAME}_业务明细.csv".encode("gbk")


def test_the_golden_bill_reads_to_exact_lines() -> None:
    assert list(read_bill(bill())) == [
        StatementLine(
            kind="payment",
            order_no="pay_0A1b2C3d4E5f6G7h8I9j0K",
            refund_no=None,
            channel_trade_no="2026112922001400001234567890",
            channel_refund_no=None,
            amount=10_000,
            settled=9_200,
            fee=55,
            discount=800,
            currency="CNY",
            status="succeeded",
            time=ms("2026-11-29T10:00:00+08:00"),
            raw=raw_line(6),
        ),
        StatementLine(
            kind="refund",
            order_no="pay_0A1b2C3d4E5f6G7h8I9j0K",
            refund_no="re_0A1b2C3d4E5f6G7h8I9j0K",
            channel_trade_no="2026112922001400001234567890",
            channel_refund_no=None,
            amount=3_000,
            settled=2_760,
            fee=-17,
            discount=240,
            currency="CNY",
            status="succeeded",
            time=ms("2026-11-29T11:00:00+08:00"),
            raw=raw_line(7),
        ),
        StatementLine(
            kind="payment",
            order_no="pos00000000000000000001",
            refund_no=None,
            channel_trade_no="2026112922001400009876543210",
            channel_refund_no=None,
            amount=100,
            settled=100,
            fee=1,
            discount=0,
            currency="CNY",
            status="succeeded",
            time=ms("2026-11-29T23:59:59+08:00"),
            raw=raw_line(8),
        ),
    ]


def gbk(text: str) -> bytes:
    return text.encode("gbk")


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("2,1,71.00,65.40,-0.39,65.01\r\n合计", "2,1,71.00,65.40,-0.40,65.00\r\n合计", "服务费"),
        ("2,1,71.00,65.40,-0.39,65.01\r\n合计", "2,1,71.00,65.41,-0.39,65.02\r\n合计", "商家实收"),
        ("2,1,71.00,65.40,-0.39,65.01\r\n合计", "2,2,71.00,65.40,-0.39,65.01\r\n合计", "退款"),
        ("2,1,71.00,65.40,-0.39,65.01\r\n合计", "2,1,70.00,65.40,-0.39,65.01\r\n合计", "订单金额"),
    ],
)
def test_a_summary_that_disagrees_with_the_detail_is_refused(
    old: str, new: str, named: str
) -> None:
    summary = SUMMARY.decode("gbk")
    assert summary.count(old) == 1
    with pytest.raises(StatementInvalid) as caught:
        list(read_bill(bill(summary=gbk(summary.replace(old, new)))))
    assert caught.value.code == "STATEMENT_SUMMARY"
    assert named in caught.value.message


def test_a_footer_that_disagrees_with_the_detail_is_refused() -> None:
    detail = DETAIL.decode("gbk").replace("交易合计：2笔", "交易合计：3笔")
    with pytest.raises(StatementInvalid, match="交易合计") as caught:
        list(read_bill(bill(detail=gbk(detail))))
    assert caught.value.code == "STATEMENT_SUMMARY"


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (",100.00,92.00,", ",100.00,92.005,", "detail line 6 商家实收（元）"),
        (",-30.00,-27.60,", ",30.00,27.60,", "detail line 7 订单金额（元）"),
        (",交易,门店收款,", ",转账,门店收款,", "detail line 8 业务类型"),
        (",-0.01,0.00,", ",-0.01,", "detail line 8: 24 columns"),
    ],
)
def test_a_malformed_detail_line_is_refused_naming_it(old: str, new: str, named: str) -> None:
    detail = DETAIL.decode("gbk")
    assert detail.count(old) == 1
    with pytest.raises(StatementInvalid) as caught:
        list(read_bill(bill(detail=gbk(detail.replace(old, new)))))
    assert caught.value.code == "STATEMENT_FORMAT"
    assert named in caught.value.message


def test_a_zip_without_its_two_files_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{NAME}_业务明细.csv", DETAIL)
    with pytest.raises(StatementInvalid, match="汇总"):
        list(read_bill(buffer))
    with pytest.raises(StatementInvalid, match="not a zip"):
        list(read_bill(io.BytesIO(DETAIL)))


def test_columns_are_found_by_name_and_a_missing_one_is_named() -> None:
    detail = DETAIL.decode("gbk").split("\r\n")
    # A newer file: one more column at the front of the header and of every row.
    widened = [f"门店类型,{row}" if 4 <= i <= 7 else row for i, row in enumerate(detail)]
    lines = list(read_bill(bill(detail=gbk("\r\n".join(widened)))))
    assert [(line.order_no, line.settled, line.fee) for line in lines] == [
        (line.order_no, line.settled, line.fee) for line in read_bill(bill())
    ]
    renamed = DETAIL.decode("gbk").replace(",服务费（元）,", ",手续费（元）,")
    with pytest.raises(StatementInvalid, match="detail line 5: the header has no 服务费"):
        list(read_bill(bill(detail=gbk(renamed))))
