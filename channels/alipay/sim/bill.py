"""The Alipay simulator's statement of the day ("业务明细"), in Alipay's zip-of-GBK-CSV style.

`alipay.data.dataservice.bill.downloadurl.query` (`bill_type=trade`, `bill_date=yyyy-MM-dd`)
answers a `bill_download_url`; the file there is a zip holding two GBK CSV files: the detail
(`<account>_<yyyymmdd>_业务明细.csv`: one row per payment and per refund of the day, Beijing
time) and the summary (`..._业务明细(汇总).csv`). Comment lines start with `#`; amounts are
yuan with two decimals, refunds negative; the service fee (服务费, written as a deduction:
negative on a payment, positive on a refund that gives it back) is the account's rate (0.60%
unless `/sim/statement/fee_rate` says otherwise), rounded half up to the fen. A coupon the
merchant funds (商家优惠) lowers what the merchant receives (商家实收); a refund gives back
the coupon's share of what it refunds. The detail ends with `#交易合计：N笔，退款合计：M笔`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from channels.alipay.protocol.wire import BEIJING, TIME_FORMAT, fen_to_yuan
from channels.alipay.sim.orders import Trade
from channels.sim.statements import Knobs, fee

HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
)
SUMMARY_HEADER = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,服务费（元）,"
    "实收净额（元）"
)


def signed_yuan(fen: int) -> str:
    return ("-" if fen < 0 else "") + fen_to_yuan(abs(fen))


@dataclass(frozen=True)
class Row:
    trade: Trade
    kind: str
    amount: int
    """Signed: negative for a refund."""
    at: datetime
    rate_bp: int
    coupon: int = 0
    """The merchant-funded discount in this line (signed like `amount`)."""
    refund_no: str = ""

    @property
    def settled(self) -> int:
        return self.amount - self.coupon

    @property
    def fee(self) -> int:
        return fee(self.settled, self.rate_bp)

    def cells(self) -> list[str]:
        trade = self.trade
        return [
            trade.trade_no,
            trade.out_trade_no,
            self.kind,
            trade.subject.replace(",", "，"),
            trade.created_at.astimezone(BEIJING).strftime(TIME_FORMAT),
            self.at.astimezone(BEIJING).strftime(TIME_FORMAT),
            "",
            "",
            "",
            "",
            trade.buyer_id or "",
            signed_yuan(self.amount),
            signed_yuan(self.settled),
            "0.00",
            "0.00",
            "0.00",
            signed_yuan(self.coupon),
            "0.00",
            "",
            "0.00",
            "0.00",
            self.refund_no,
            signed_yuan(-self.fee),
            "0.00",
            "",
        ]


def rows(trades: Iterable[Trade], knobs: Knobs, app_id: str, day: date) -> list[Row]:
    """The day's payments and refunds of `app_id`, in time order."""
    out: list[Row] = []
    rate = knobs.rate_bp(app_id)
    for trade in trades:
        if trade.app_id != app_id:
            continue
        coupon = knobs.coupon(app_id, trade.out_trade_no)
        if trade.gmt_payment is not None and trade.gmt_payment.astimezone(BEIJING).date() == day:
            out.append(Row(trade, "交易", trade.total, trade.gmt_payment, rate, coupon))
        for refund in trade.refunds.values():
            if refund.at.astimezone(BEIJING).date() == day:
                share = coupon * refund.amount // trade.total
                out.append(
                    Row(
                        trade,
                        "退款",
                        -refund.amount,
                        refund.at,
                        rate,
                        -share,
                        refund.out_request_no,
                    )
                )
    return sorted(out, key=lambda row: row.at)


def statement(
    trades: Iterable[Trade], knobs: Knobs, app_id: str, seller_id: str, day: date
) -> bytes | None:
    """The zip file for the day, or `None` when nothing happened that day."""
    found = rows(trades, knobs, app_id, day)
    if not found:
        return None
    return archive(found, seller_id, day)


def archive(found: Iterable[Row], seller_id: str, day: date) -> bytes:
    """The zip of the detail and summary files for these rows."""
    found = list(found)
    stamp = day.strftime("%Y%m%d")
    span = f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day:%Y年%m月%d日} 23:59:59]"
    detail = [
        "#支付宝业务明细查询",
        f"#账号：[{seller_id}0156]",
        span,
        "#-----------------------------------------业务明细列表----------------------------------------",
        HEADER,
        *(",".join(row.cells()) for row in found),
        "#-----------------------------------------业务明细列表结束------------------------------------",
    ]
    payments = [row for row in found if row.amount > 0]
    refunds = [row for row in found if row.amount < 0]
    total = sum(row.amount for row in found)
    settled = sum(row.settled for row in found)
    fees = sum(row.fee for row in found)
    detail.append(f"#交易合计：{len(payments)}笔，退款合计：{len(refunds)}笔")
    summary = [
        "#支付宝业务汇总查询",
        f"#账号：[{seller_id}0156]",
        span,
        "#-----------------------------------------业务汇总列表----------------------------------------",
        SUMMARY_HEADER,
        ",".join(
            [
                "",
                "",
                str(len(payments)),
                str(len(refunds)),
                signed_yuan(total),
                signed_yuan(settled),
                signed_yuan(-fees),
                signed_yuan(settled - fees),
            ]
        ),
        "#-----------------------------------------业务汇总列表结束------------------------------------",
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        name = f"{seller_id}0156_{stamp}"
        for suffix, lines in (("_业务明细.csv", detail), ("_业务明细(汇总).csv", summary)):
            content = ("\r\n".join(lines) + "\r\n").encode("gbk", "replace")
            archive.writestr(gbk_entry(name + suffix), content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


class _GbkName(zipfile.ZipInfo):
    # Alipay names the files in GBK without the zip's UTF-8 flag, as Windows tools do.
    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gbk"), self.flag_bits


def gbk_entry(name: str) -> zipfile.ZipInfo:
    """A zip entry whose name is written in GBK, as in Alipay's bills."""
    entry = _GbkName(name, date_time=(2026, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


@dataclass(frozen=True)
class Bill:
    app_id: str
    day: date
    content: bytes
