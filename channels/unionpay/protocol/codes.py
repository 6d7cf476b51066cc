"""UnionPay's `respCode`s and what each means for the router. Pure data and functions.

From the ACP appendix ("应答码"): `00` success (`A6`, "success with defects", counts as success
in notifications and queries); `03`/`04`/`05` processing or unknown: query again, on the
suggested schedule `QUERY_SCHEDULE`; everything else is a failure. In a query answer `respCode`
is about the query itself (`34`: no such transaction) and `origRespCode` about the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import RefundState, TradeState
from channels.errors import (
    ChannelError,
    ChannelOutcomeUnknown,
    ChannelRejected,
    ChannelUnavailable,
    Fault,
)

SUCCESS = frozenset({"00", "A6"})
PROCESSING = frozenset({"03", "04", "05"})
NOT_FOUND = "34"
ORIGINAL_NOT_USABLE = "35"
"""原交易不存在或状态不正确: a refund or void of a transaction that cannot take it."""
VOIDED = "45"
NO_FILE = "98"
"""A file transfer for a day without a settlement file (文件不存在)."""
"""已被成功退货或已被成功撤销: in a query, the transaction was voided (closed)."""

QUERY_SCHEDULE: tuple[float, ...] = (1, 2, 4, 8, 16, 32)
"""Seconds between queries of a server-side transaction answered 03/04/05, as documented."""

MESSAGES: Mapping[str, str] = {
    "00": "成功[0000000]",
    "01": "交易失败。详情请咨询95516",
    "02": "系统未开放或暂时关闭，请稍后再试",
    "03": "交易通讯超时，请发起查询交易",
    "04": "交易状态未明，请查询对账结果",
    "05": "交易已受理，请稍后查询交易结果",
    "06": "系统繁忙，请稍后再试",
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "30": "交易未通过，请尝试使用其他银联卡支付或联系95516",
    "31": "商户状态不正确",
    "32": "无此交易权限",
    "33": "交易金额超限",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "36": "与原交易信息不符",
    "37": "已超过最大查询次数或操作过于频繁",
    "38": "银联风险受限",
    "39": "交易不在受理时间范围内",
    "42": "扣款成功但交易超过规定支付时间",
    "43": "无此业务权限，详情请咨询95516",
    "45": "已被成功退货或已被成功撤销",
    "60": "交易失败，详情请咨询您的发卡行",
    "63": "卡状态不正确",
    "64": "卡上的余额不足",
    "99": "通用错误",
    "A6": "有缺陷的成功",
}

UNAVAILABLE = frozenset({"02", "06", "37"})
"""Not processed: closed, busy or throttled. Safe to try another channel."""
REQUEST_FAULTS = frozenset({"10", "11", "12", "13", "14", "33", "34", "35", "36", "39", "45"})
"""Refusals caused by what we sent."""
CHANNEL_FAULTS = frozenset({"31", "32", "43"})
"""Refusals caused by the account's standing at UnionPay: another channel may work."""


def message(code: str) -> str:
    return MESSAGES.get(code, "交易失败")


def fault_of(code: str) -> Fault:
    if code in REQUEST_FAULTS:
        return "request"
    if code in CHANNEL_FAULTS or code in {"01", "99"} or not (code.isascii() and code.isdigit()):
        return "channel"
    # 30 (declined), 38 (risk), 42 and the 6x/7x card and issuer codes concern the buyer.
    return "buyer"


def error_for(code: str, resp_msg: str, what: str) -> ChannelError:
    """The `channels.errors` value for a failed `respCode` on `what` (create, refund, ...)."""
    described = f"UnionPay refused the {what}: {code} {resp_msg or message(code)}".rstrip()
    if code in PROCESSING:
        return ChannelOutcomeUnknown(
            f"UnionPay is still processing the {what} ({code}): query again", code=code
        )
    if code in UNAVAILABLE:
        return ChannelUnavailable(described, code=code)
    return ChannelRejected(described, code=code, fault=fault_of(code))


def map_trade_state(orig_resp_code: str) -> TradeState:
    """A transaction's `origRespCode` (query) or `respCode` (notification) → `TradeState`."""
    if orig_resp_code in SUCCESS:
        return TradeState.SUCCEEDED
    if orig_resp_code in PROCESSING:
        return TradeState.PENDING
    if orig_resp_code == VOIDED:
        return TradeState.CLOSED
    return TradeState.FAILED


def map_refund_state(orig_resp_code: str) -> RefundState:
    """A refund's `origRespCode` (query) or `respCode` (notification) → `RefundState`."""
    if orig_resp_code in SUCCESS:
        return RefundState.SUCCEEDED
    if orig_resp_code in PROCESSING:
        return RefundState.PENDING
    return RefundState.FAILED
