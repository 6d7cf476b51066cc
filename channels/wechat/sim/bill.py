"""The WeChat Pay simulator's statements: the trade bill ("交易账单") and the fund-flow bill.

Trade bill (`GET /v3/bill/tradebill`, `bill_type` ALL, SUCCESS or REFUND): one row per
payment of the day (交易状态 SUCCESS) and per refund that succeeded that day (REFUND, with
微信退款单号, 商户退款单号, 退款金额 and a negative 手续费: the fee given back), China time.
Every value is prefixed with a backquote, as WeChat does so that spreadsheets keep long
numbers as text; amounts are yuan with two decimals, fees yuan with five (whole fen: WeChat
rounds a fee half up to the fen). A merchant-funded coupon (代金券金额) lowers the settled
amount (应结订单金额) and the fee with it. The summary header and line close the file.

Fund-flow bill (`GET /v3/bill/fundflowbill`, `account_type` BASIC): every movement of the
basic account: a payment's income, its fee, a refund's expense; then its own summary.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from channels.sim.statements import Knobs, fee
from channels.wechat.protocol.wire import CHINA_TIME
from channels.wechat.sim.orders import TRADE_TYPE_NAMES, Order
from channels.wechat.sim.refunds import RefundBook

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
FUNDFLOW_HEADER = (
    "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,"
    "账户结余（元）,资金变更提交申请人,备注,业务凭证号"
)
FUNDFLOW_SUMMARY_HEADER = "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额"
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
ACCOUNT_TYPES = ("BASIC", "OPERATION", "FEES")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def yuan(fen: int) -> str:
    """Integer fen as a yuan string with two decimals: 1999 → "19.99", -6 → "-0.06"."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def fee_yuan(fen: int) -> str:
    """A fee in fen written as WeChat writes fees: five decimals ("0.06000")."""
    return yuan(fen) + "000"


def _cell(value: str) -> str:
    return "`" + value.replace(",", "，")


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a trade bill, whatever made it (an order, a refund, a generator)."""

    at: datetime
    appid: str
    mchid: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    currency: str
    description: str
    attach: str
    rate_bp: int
    total: int = 0
    coupon: int = 0
    refund_id: str = ""
    out_refund_no: str = ""
    refund: int = 0
    """The refund asked for; the refund row's settled refund is this less its coupon share."""
    refund_coupon: int = 0

    @property
    def is_refund(self) -> bool:
        return bool(self.refund_id)

    @property
    def settled(self) -> int:
        return self.refund - self.refund_coupon if self.is_refund else self.total - self.coupon

    @property
    def fee(self) -> int:
        charged = fee(self.settled, self.rate_bp)
        return -charged if self.is_refund else charged

    def cells(self) -> list[str]:
        refund = self.is_refund
        rate = f"{self.rate_bp // 100}.{self.rate_bp % 100:02d}%"
        return [
            self.at.astimezone(CHINA_TIME).strftime(TIME_FORMAT),
            self.appid,
            self.mchid,
            "0",
            "",
            self.transaction_id,
            self.out_trade_no,
            self.openid,
            self.trade_type,
            "REFUND" if refund else "SUCCESS",
            "OTHERS",
            self.currency,
            "0.00" if refund else yuan(self.settled),
            "0.00" if refund else yuan(self.coupon),
            self.refund_id or "0",
            self.out_refund_no or "0",
            yuan(self.settled) if refund else "0.00",
            "0.00",
            "ORIGINAL" if refund else "",
            "SUCCESS" if refund else "",
            self.description,
            self.attach,
            fee_yuan(self.fee),
            rate,
            "0.00" if refund else yuan(self.total),
            yuan(self.refund) if refund else "0.00",
            "",
        ]


def _entry(order: Order, at: datetime, rate_bp: int, **amounts: int | str) -> Entry:
    return Entry(
        at=at,
        appid=order.appid,
        mchid=order.mchid,
        transaction_id=order.transaction_id or "",
        out_trade_no=order.out_trade_no,
        openid=order.openid or "",
        trade_type=TRADE_TYPE_NAMES[order.kind],
        currency=order.currency,
        description=order.description,
        attach=order.attach or "",
        rate_bp=rate_bp,
        **amounts,  # type: ignore[arg-type]
    )


def entries(
    orders: Iterable[Order], refunds: RefundBook, knobs: Knobs, mchid: str, day: date
) -> list[Entry]:
    """The day's payments and successful refunds of `mchid`, in time order."""
    out: list[Entry] = []
    rate = knobs.rate_bp(mchid)
    mine = [order for order in orders if order.mchid == mchid]
    for order in mine:
        paid = order.success_time
        if paid is not None and paid.astimezone(CHINA_TIME).date() == day:
            coupon = knobs.coupon(mchid, order.out_trade_no)
            out.append(_entry(order, paid, rate, total=order.total, coupon=coupon))
    for refund in (refund for order in mine for refund in refunds.of_order(order)):
        done = refund.success_time
        order = refund.order
        if done is None or done.astimezone(CHINA_TIME).date() != day:
            continue
        # A refund gives back the coupon's share of what it refunds, not the merchant's money.
        share = knobs.coupon(mchid, order.out_trade_no) * refund.refund // order.total
        out.append(
            _entry(
                order,
                done,
                rate,
                refund_id=refund.refund_id,
                out_refund_no=refund.out_refund_no,
                refund=refund.refund,
                refund_coupon=share,
            )
        )
    return sorted(out, key=lambda entry: entry.at)


def render_trade_bill(rows: Iterable[Entry], bill_type: str = "ALL") -> Iterator[str]:
    """The trade bill's lines (without line ends): header, rows, summary header and line."""
    yield HEADER
    count = settled = refunded = fees = ordered = asked = 0
    for row in rows:
        if (bill_type == "SUCCESS" and row.is_refund) or (
            bill_type == "REFUND" and not row.is_refund
        ):
            continue
        count += 1
        if row.is_refund:
            refunded += row.settled
            asked += row.refund
        else:
            settled += row.settled
            ordered += row.total
        fees += row.fee
        yield ",".join(_cell(cell) for cell in row.cells())
    yield SUMMARY_HEADER
    summary = [str(count), yuan(settled), yuan(refunded), "0.00", fee_yuan(fees)]
    yield ",".join(_cell(cell) for cell in [*summary, yuan(ordered), yuan(asked)])


def render_fundflow_bill(rows: Iterable[Entry]) -> Iterator[str]:
    """The basic account's fund-flow bill: income, fee and refund movements, then a summary."""
    yield FUNDFLOW_HEADER
    balance = count = income_count = income = expense_count = expense = 0
    for row in rows:
        moves: list[tuple[str, str, int]] = []
        if row.is_refund:
            moves.append(("退款", "支出", row.settled))
            if row.fee:
                moves.append(("退款手续费返还", "收入", -row.fee))
        else:
            moves.append(("交易", "收入", row.settled))
            if row.fee:
                moves.append(("扣除交易手续费", "支出", row.fee))
        for kind, direction, amount in moves:
            count += 1
            if direction == "收入":
                balance += amount
                income_count += 1
                income += amount
            else:
                balance -= amount
                expense_count += 1
                expense += amount
            serial = f"{row.transaction_id}{count:06d}"
            cells = [
                row.at.astimezone(CHINA_TIME).strftime(TIME_FORMAT),
                row.refund_id or row.transaction_id,
                serial,
                "退款" if row.is_refund else "交易",
                kind,
                direction,
                yuan(amount),
                yuan(balance),
                "system",
                "",
                row.out_refund_no or row.out_trade_no,
            ]
            yield ",".join(_cell(cell) for cell in cells)
    yield FUNDFLOW_SUMMARY_HEADER
    summary = [str(count), str(income_count), yuan(income), str(expense_count), yuan(expense)]
    yield ",".join(_cell(cell) for cell in summary)


def as_file(lines: Iterable[str]) -> bytes:
    """The bill's bytes: UTF-8, CRLF line ends, as WeChat Pay serves them."""
    return ("\r\n".join(lines) + "\r\n").encode()


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
