"""UnionPay's settlement file: a golden file as the file transfer sends it (zipped, deflated,
base64'd in `fileContent`), read to exact lines, and refused when its TOTAL or a value is wrong.

`statement/INN26112988ZM_777290058110048` holds a couponed consume just before midnight, its
refund just after (the coupon's share and the fee given back), an order made without the
router, and a consume voided the same day.
"""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from channels.base import StatementLine
from channels.statement import StatementInvalid
from channels.unionpay.protocol.answers import parse_statement_answer
from channels.unionpay.protocol.statement import inflate, read_file

GOLDEN_PATH = Path(__file__).parent / "statement" / "INN26112988ZM_777290058110048"
GOLDEN = GOLDEN_PATH.read_bytes()
DAY = date(2026, 11, 29)


def ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).astimezone(UTC).timestamp()) * 1000


def file_content(text: bytes) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(GOLDEN_PATH.name, text)
    return base64.b64encode(zlib.compress(buffer.getvalue())).decode()


def read(text: bytes = GOLDEN) -> list[StatementLine]:
    content = parse_statement_answer({"respCode": "00", "fileContent": file_content(text)})
    assert content is not None
    with inflate(content) as stream:
        return list(read_file(stream, DAY))


def raw(number: int) -> str:
    return " ".join(GOLDEN.decode().split("\r\n")[number - 1].split())


def line(**fields: object) -> StatementLine:
    base: dict[str, object] = {
        "kind": "payment",
        "refund_no": None,
        "channel_refund_no": None,
        "currency": "CNY",
        "status": "succeeded",
    }
    return StatementLine(**{**base, **fields})  # type: ignore[arg-type]


def test_the_golden_file_reads_to_exact_lines() -> None:
    assert read() == [
        line(
            order_no="pay_0A1b2C3d4E5f6G7h8I9j0K",
            channel_trade_no="202611282359591234567",
            amount=10_000,
            settled=9_200,
            fee=55,
            discount=800,
            time=ms("2026-11-28T23:59:59+08:00"),
            raw=raw(1),
        ),
        line(
            kind="refund",
            order_no="pay_0A1b2C3d4E5f6G7h8I9j0K",
            refund_no="re_0A1b2C3d4E5f6G7h8I9j0K",
            channel_trade_no="202611282359591234567",
            channel_refund_no="202611290000017654321",
            amount=3_000,
            settled=2_760,
            fee=-17,
            discount=240,
            time=ms("2026-11-29T00:00:01+08:00"),
            raw=raw(2),
        ),
        line(
            order_no="pos00000000000000000001",
            channel_trade_no="202611291200001111111",
            amount=100,
            settled=100,
            fee=1,
            discount=0,
            time=ms("2026-11-29T12:00:00+08:00"),
            raw=raw(3),
        ),
        line(
            order_no="pay123abc",
            channel_trade_no="202611291300002222222",
            amount=500,
            settled=500,
            fee=3,
            discount=0,
            time=ms("2026-11-29T13:00:00+08:00"),
            raw=raw(4),
        ),
        line(
            kind="refund",
            order_no="pay123abc",
            channel_trade_no="202611291300002222222",
            channel_refund_no="202611291305003333333",
            amount=500,
            settled=500,
            fee=-3,
            discount=0,
            time=ms("2026-11-29T13:05:00+08:00"),
            raw=raw(5),
        ),
    ]


def test_a_day_without_a_file_is_none() -> None:
    assert parse_statement_answer({"respCode": "98", "respMsg": "文件不存在"}) is None


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (b"TOTAL 5 7100 6540 39", b"TOTAL 5 7100 6540 40", "fee"),
        (b"TOTAL 5 7100 6540 39", b"TOTAL 4 7100 6540 39", "count"),
        (b"TOTAL 5 7100 6540 39", b"TOTAL 5 7101 6540 39", "txnAmt"),
        (b"TOTAL 5 7100 6540 39", b"TOTAL 5 7100 6541 39", "settleAmt"),
    ],
)
def test_a_total_that_disagrees_with_the_lines_is_refused(
    old: bytes, new: bytes, named: str
) -> None:
    with pytest.raises(StatementInvalid) as caught:
        read(GOLDEN.replace(old, new))
    assert caught.value.code == "STATEMENT_SUMMARY"
    assert f"summary {named} " in caught.value.message


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (b"000000009200", b"00000009200", "line 1 settleAmt"),
        (b"000000000800", b"000000000700", "line 1 discount"),
        (b"D000000000055", b"X000000000055", "line 1 fee"),
        (b" 202611282359591234567 pay0A1b", b" pay0A1b", "line 2"),
        (b"TOTAL 5 7100 6540 39\r\n", b"", "without its TOTAL"),
    ],
)
def test_a_malformed_line_is_refused_naming_it(old: bytes, new: bytes, named: str) -> None:
    with pytest.raises(StatementInvalid) as caught:
        read(GOLDEN.replace(old, new, 1))
    assert caught.value.code == "STATEMENT_FORMAT"
    assert named in caught.value.message


def test_a_file_content_that_is_not_deflated_is_refused() -> None:
    with pytest.raises(StatementInvalid, match="zlib"):
        inflate(b"plainly not deflated")
