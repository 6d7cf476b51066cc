"""What reading a channel's statement costs: lines per second and memory, for each channel.

    .venv/bin/python -m benchmarks.statement_parse [--lines 1000000] [--channel wechat ...]

For each channel a statement of `--lines` lines (payments, every tenth refunded, coupons on
some) is written to a temporary file in the channel's own format (WeChat's gzip'd CSV,
Alipay's zip of GBK CSVs, UnionPay's deflated zip), then read back as the adapter reads it
(hash check, inflating, decoding, summary check): once timed, once under tracemalloc. Prints
lines/s and the peak Python allocation of the read; asserts nothing. Parsing is one part of
reconciliation: the target for a whole run is 1,000,000 lines in under 60 s.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import os
import resource
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

from channels.alipay.protocol import statement as alipay
from channels.alipay.sim import bill as alipay_bill
from channels.sim.statements import DEFAULT_FEE_BP, fee
from channels.statement import CHINA_TIME
from channels.unionpay.protocol import statement as unionpay
from channels.unionpay.protocol.answers import parse_statement_answer
from channels.unionpay.sim import bill as unionpay_bill
from channels.wechat.protocol import statement as wechat
from channels.wechat.sim import bill as wechat_bill

DAY = date(2026, 11, 29)
START = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
"""Midnight China time of `DAY`."""


@dataclass(frozen=True)
class Result:
    channel: str
    lines: int
    file_bytes: int
    seconds: float
    peak_bytes: int

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds


def _amount(i: int) -> int:
    return 100 + (i * 7919) % 99_900


def _moment(i: int, lines: int) -> datetime:
    return START + timedelta(microseconds=86_400_000_000 * i // lines)


def wechat_rows(lines: int) -> Iterator[wechat_bill.Entry]:
    """WeChat trade-bill rows: payments, every tenth line a refund of the one before."""
    for i in range(lines):
        at, refund = _moment(i, lines), i % 10 == 9
        payment = i - 1 if refund else i
        yield wechat_bill.Entry(
            at=at,
            appid="wxd678efh567hg6787",
            mchid="1900000109",
            transaction_id=f"42000{payment:023d}",
            out_trade_no=f"pay_{payment:022d}",
            openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            trade_type="NATIVE",
            currency="CNY",
            description="Bench mug",
            attach="",
            rate_bp=DEFAULT_FEE_BP,
            total=0 if refund else _amount(i),
            coupon=0 if refund or i % 5 else 50,
            refund_id=f"503{i:026d}" if refund else "",
            out_refund_no=f"re_{i:022d}" if refund else "",
            refund=_amount(payment) // 2 if refund else 0,
        )


def write_wechat(path: Path, lines: int) -> Callable[[IO[bytes]], Iterator[object]]:
    """Write WeChat's gzip'd bill; returns its reader (SHA1 check, then the lines)."""
    digest = hashlib.sha1(usedforsecurity=False)
    with gzip.open(path, "wb") as out:
        for text in wechat_bill.render_trade_bill(wechat_rows(lines)):
            row = (text + "\r\n").encode()
            digest.update(row)
            out.write(row)
    stated = digest.hexdigest()

    def read(stream: IO[bytes]) -> Iterator[object]:
        wechat.verify_sha1(stream, stated)
        return wechat.read_trade_bill(wechat.text_rows(stream))

    return read


def write_alipay(path: Path, lines: int) -> Callable[[IO[bytes]], Iterator[object]]:
    """Write Alipay's zip of GBK detail and summary, streaming; returns its reader."""
    count = {"交易": 0, "退款": 0}
    amount = settled = fees = 0
    name = f"20889999999999990156_{DAY:%Y%m%d}"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(f"{name}_业务明细.csv", "w") as member:
            out = io.TextIOWrapper(member, encoding="gbk", newline="")
            out.write(f"#支付宝业务明细查询\r\n{alipay_bill.HEADER}\r\n")
            for i in range(lines):
                refund = i % 10 == 9
                payment = i - 1 if refund else i
                total = -(_amount(payment) // 2) if refund else _amount(i)
                coupon = 0 if refund or i % 5 else 50
                charged = fee(total - coupon, DEFAULT_FEE_BP)
                kind = "退款" if refund else "交易"
                count[kind] += 1
                amount, settled, fees = amount + total, settled + total - coupon, fees + charged
                at = _moment(i, lines).astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")
                cells = [
                    f"2026112922001{payment:015d}\t",
                    f"pay_{payment:022d}\t",
                    kind,
                    "咖啡，大杯",
                    at,
                    at,
                    *[""] * 5,
                    alipay_bill.signed_yuan(total),
                    alipay_bill.signed_yuan(total - coupon),
                    "0.00",
                    "0.00",
                    "0.00",
                    alipay_bill.signed_yuan(coupon),
                    "0.00",
                    "",
                    "0.00",
                    "0.00",
                    f"re_{i:022d}\t" if refund else "",
                    alipay_bill.signed_yuan(-charged),
                    "0.00",
                    "",
                ]
                out.write(",".join(cells) + "\r\n")
            out.write(f"#交易合计：{count['交易']}笔，退款合计：{count['退款']}笔\r\n")
            out.flush()
            out.detach()
        summary = ",".join(
            [
                "",
                "",
                str(count["交易"]),
                str(count["退款"]),
                alipay_bill.signed_yuan(amount),
                alipay_bill.signed_yuan(settled),
                alipay_bill.signed_yuan(-fees),
                alipay_bill.signed_yuan(settled - fees),
            ]
        )
        text = f"#支付宝业务汇总查询\r\n{alipay_bill.SUMMARY_HEADER}\r\n{summary}\r\n"
        archive.writestr(f"{name}_业务明细(汇总).csv", text.encode("gbk"))
    return alipay.read_bill


def unionpay_rows(lines: int) -> Iterator[unionpay_bill.Row]:
    """UnionPay settlement rows: consumes, every tenth a refund of the one before."""
    for i in range(lines):
        refund = i % 10 == 9
        payment = i - 1 if refund else i
        yield unionpay_bill.Row(
            txn_code="S30" if refund else "S22",
            trace_no=f"{i % 1_000_000:06d}",
            trace_time=_moment(i, lines).astimezone(CHINA_TIME).strftime("%m%d%H%M%S"),
            query_id=f"2026112{i:014d}",
            mer_id="777290058110048",
            order_id=f"re{i:022d}" if refund else f"pay{payment:022d}",
            txn_time="20261129000000",
            amount=_amount(payment) // 2 if refund else _amount(i),
            discount=0 if refund or i % 5 else 50,
            rate_bp=DEFAULT_FEE_BP,
            orig_query_id=f"2026112{payment:014d}" if refund else "",
            orig_order_id=f"pay{payment:022d}" if refund else "",
        )


def write_unionpay(path: Path, lines: int) -> Callable[[IO[bytes]], Iterator[object]]:
    """Write UnionPay's deflated zip as `fileContent` holds it; returns its reader."""
    with tempfile.TemporaryFile() as plain:
        name = unionpay_bill.member_name("777290058110048", DAY)
        with (
            zipfile.ZipFile(plain, "w", zipfile.ZIP_DEFLATED) as archive,
            archive.open(name, "w") as member,
        ):
            for text in unionpay_bill.render(unionpay_rows(lines)):
                member.write((text + "\r\n").encode())
        plain.seek(0)
        deflater = zlib.compressobj()
        with path.open("wb") as out:
            while chunk := plain.read(1 << 20):
                out.write(deflater.compress(chunk))
            out.write(deflater.flush())

    def read(stream: IO[bytes]) -> Iterator[object]:
        # The file-transfer answer carries this base64'd; the adapter decodes it first.
        fields = {"respCode": "00", "fileContent": base64.b64encode(stream.read()).decode()}
        content = parse_statement_answer(fields)
        assert content is not None
        del fields
        with unionpay.inflate(content) as file:
            yield from unionpay.read_file(file, DAY)

    return read


WRITERS = {"wechat": write_wechat, "alipay": write_alipay, "unionpay": write_unionpay}


def measure(channel: str, lines: int, folder: Path) -> Result:
    """Write `channel`'s statement of `lines` lines, then time and trace reading it."""
    path = folder / f"{channel}.statement"
    read = WRITERS[channel](path, lines)
    with path.open("rb") as stream:
        started = time.perf_counter()
        count = sum(1 for _ in read(stream))
        seconds = time.perf_counter() - started
    assert count == lines, (channel, count, lines)
    # A second read, traced: tracemalloc slows allocation, so it is not the timed one.
    with path.open("rb") as stream:
        tracemalloc.start()
        for _ in read(stream):
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Result(channel, lines, os.path.getsize(path), seconds, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--channel", action="append", choices=sorted(WRITERS))
    args = parser.parse_args()
    print(f"{'channel':<9} {'lines':>9} {'file MB':>8} {'s':>7} {'lines/s':>9} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for channel in args.channel or list(WRITERS):
            r = measure(channel, args.lines, Path(folder))
            print(
                f"{r.channel:<9} {r.lines:>9} {r.file_bytes / 1e6:>8.1f} {r.seconds:>7.2f} "
                f"{r.lines_per_s:>9.0f} {r.peak_bytes / 1e6:>8.2f}"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process (generation included): {rss:.0f} MB")


if __name__ == "__main__":
    main()
