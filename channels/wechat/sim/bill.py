"""The WeChat Pay simulator's trade statement ("交易账单"), in WeChat's CSV style.

One row per successful payment of the day (China time); every value is prefixed with a
backquote, as WeChat does so that spreadsheets keep long numbers as text; amounts are yuan
with two decimals, fees yuan with five. A summary header and line close the file.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from channels.wechat.protocol.wire import CHINA_TIME
from channels.wechat.sim.orders import Order

FEE_RATE_PER_MILLE = 6
"""0.60%, WeChat's usual rate; fees are computed in integers of 1e-5 yuan."""

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")


def yuan(fen: int) -> str:
    """Integer fen as a yuan string with two decimals: 1999 → "19.99"."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def fee_units(fen: int) -> int:
    """The fee on `fen` in 1e-5 yuan (one fen is 1000 units), rounded half up."""
    return (fen * 1000 * FEE_RATE_PER_MILLE + 500) // 1000


def fee_yuan(units: int) -> str:
    return f"{units // 100_000}.{units % 100_000:05d}"


def _cell(value: str) -> str:
    return "`" + value.replace(",", "，")


def statement(orders: Iterable[Order], mchid: str, day: date, bill_type: str) -> str | None:
    """The day's statement for `mchid`, or `None` when there is nothing to report."""
    if bill_type == "REFUND":
        return None
    paid = sorted(
        (
            order
            for order in orders
            if order.mchid == mchid
            and order.success_time is not None
            and order.success_time.astimezone(CHINA_TIME).date() == day
        ),
        key=lambda order: order.success_time or order.created_at,
    )
    if not paid:
        return None
    lines = [HEADER]
    total_fen = total_fee = 0
    for order in paid:
        assert order.success_time is not None
        fee = fee_units(order.total)
        total_fen += order.total
        total_fee += fee
        cells = [
            order.success_time.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
            order.appid,
            order.mchid,
            "0",
            "",
            order.transaction_id or "",
            order.out_trade_no,
            order.openid or "",
            order.kind.upper() if order.kind != "h5" else "MWEB",
            "SUCCESS",
            "OTHERS",
            order.currency,
            yuan(order.total),
            "0.00",
            "0",
            "0",
            "0.00",
            "0.00",
            "",
            "",
            order.description,
            order.attach or "",
            fee_yuan(fee),
            f"{FEE_RATE_PER_MILLE / 10:.2f}%",
            yuan(order.total),
            "0.00",
            "",
        ]
        lines.append(",".join(_cell(cell) for cell in cells))
    lines.append(SUMMARY_HEADER)
    summary = [str(len(paid)), yuan(total_fen), "0.00", "0.00", fee_yuan(total_fee)]
    summary += [yuan(total_fen), "0.00"]
    lines.append(",".join(_cell(cell) for cell in summary))
    return "\r\n".join(lines) + "\r\n"


@dataclass(frozen=True)
class Bill:
    """A statement handed out under a download token."""

    mchid: str
    content: bytes
    gzipped: bool

    @property
    def sha1(self) -> str:
        """The hash WeChat reports: over the uncompressed statement."""
        return hashlib.sha1(self.content, usedforsecurity=False).hexdigest()

    def download(self) -> bytes:
        # mtime=0 keeps the archive bytes repeatable for a seeded run.
        return gzip.compress(self.content, mtime=0) if self.gzipped else self.content
