"""WeChat Pay API v3 answers read as `channels.base` values. Pure functions, no I/O.

The adapter checks a 2xx answer's signature with `channels.wechat.crypto.verify_answer` first.
A refund object is the same in an answer and, slimmed down (`refund_status` instead of
`status`), in a `REFUND.*` notification (see `channels.wechat.notification`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.base import (
    Action,
    CreateResult,
    Method,
    RefundState,
    RefundStatus,
    TradeState,
    TradeStatus,
)
from channels.errors import ChannelOutcomeUnknown
from channels.http import HttpAnswer
from channels.wechat.crypto import app_pay_params, jsapi_pay_params
from channels.wechat.protocol.codes import (
    NOT_FOUND_CODES,
    REFUND_BUYER_CODES,
    error_code,
    error_from_answer,
    map_refund_state,
    map_trade_state,
)
from channels.wechat.protocol.wire import Merchant, decode_object, parse_time


def parse_transaction(data: Mapping[str, Any]) -> TradeStatus:
    """A transaction object (query answer, notification resource). Raises `ValueError`."""
    out_trade_no = data.get("out_trade_no")
    trade_state = data.get("trade_state")
    if not isinstance(out_trade_no, str) or not isinstance(trade_state, str):
        raise ValueError("transaction lacks out_trade_no or trade_state")
    amount = data.get("amount") or {}
    total = amount.get("total") if isinstance(amount, Mapping) else None
    if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
        raise ValueError("amount.total is not an integer")
    currency = amount.get("currency") if isinstance(amount, Mapping) else None
    success_time = data.get("success_time")
    transaction_id = data.get("transaction_id")
    mchid = data.get("mchid")
    return TradeStatus(
        order_no=out_trade_no,
        state=map_trade_state(trade_state),
        channel_state=trade_state,
        channel_trade_no=transaction_id if isinstance(transaction_id, str) else None,
        amount=total,
        currency=currency if isinstance(currency, str) else None,
        paid_at=parse_time(success_time) if isinstance(success_time, str) else None,
        account_id=mchid if isinstance(mchid, str) else None,
    )


def parse_create_answer(
    method: Method, answer: HttpAnswer, merchant: Merchant, *, timestamp: int, nonce: str
) -> CreateResult:
    """A verified create answer → what to show the buyer. Raises a `ChannelError`.

    `timestamp` and `nonce` are used for the jsapi/app pay-sign parameters.
    """
    if not 200 <= answer.status < 300:
        raise error_from_answer(answer)
    try:
        data = decode_object(answer.body)
        if method == "barcode":
            return _codepay_result(answer.status, data)
        field_name = {"qr": "code_url", "h5": "h5_url"}.get(method, "prepay_id")
        value = data.get(field_name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"the answer lacks {field_name}")
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable create answer: {exc}") from exc
    if method == "qr":
        return CreateResult(Action("qr_code", qr_code=value))
    if method == "h5":
        return CreateResult(Action("redirect", url=value))
    if method == "jsapi":
        params = jsapi_pay_params(
            merchant.private_key,
            appid=merchant.appid,
            prepay_id=value,
            timestamp=timestamp,
            nonce=nonce,
        )
    else:
        params = app_pay_params(
            merchant.private_key,
            appid=merchant.appid,
            mchid=merchant.mchid,
            prepay_id=value,
            timestamp=timestamp,
            nonce=nonce,
        )
    return CreateResult(Action("app_params", params=params))


def _codepay_result(status: int, data: Mapping[str, Any]) -> CreateResult:
    if status == 202 or data.get("code") in ("USERPAYING", "USER_PAYING"):
        return CreateResult(Action("none"), state=TradeState.PENDING)
    trade = parse_transaction(data)
    return CreateResult(
        Action("none"),
        state=trade.state,
        channel_trade_no=trade.channel_trade_no,
        paid_at=trade.paid_at,
        amount=trade.amount,
        currency=trade.currency,
    )


def parse_query_answer(answer: HttpAnswer, out_trade_no: str) -> TradeStatus:
    """A verified query answer; 404 ORDER_NOT_EXIST is `TradeState.NOT_FOUND`."""
    if answer.status == 404 and error_code(answer) in NOT_FOUND_CODES:
        return TradeStatus(out_trade_no, TradeState.NOT_FOUND, channel_state="ORDER_NOT_EXIST")
    if answer.status != 200:
        raise error_from_answer(answer)
    try:
        trade = parse_transaction(decode_object(answer.body))
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable query answer: {exc}") from exc
    if trade.order_no != out_trade_no:
        raise ChannelOutcomeUnknown("the query answer is about another order")
    return trade


def parse_close_answer(answer: HttpAnswer) -> None:
    """204 (or an order WeChat does not know) is done; anything else raises."""
    if answer.status in (200, 204):
        return
    if answer.status == 404 and error_code(answer) in NOT_FOUND_CODES:
        return
    raise error_from_answer(answer)


def parse_refund(data: Mapping[str, Any]) -> RefundStatus:
    """A refund object (answer, or notification resource). Raises `ValueError`."""
    out_refund_no = data.get("out_refund_no")
    status = data.get("status", data.get("refund_status"))
    if not isinstance(out_refund_no, str) or not isinstance(status, str):
        raise ValueError("refund lacks out_refund_no or status")
    amount = data.get("amount") or {}
    refund = amount.get("refund") if isinstance(amount, Mapping) else None
    if refund is not None and (not isinstance(refund, int) or isinstance(refund, bool)):
        raise ValueError("amount.refund is not an integer")
    out_trade_no = data.get("out_trade_no")
    refund_id = data.get("refund_id")
    success_time = data.get("success_time")
    return RefundStatus(
        refund_no=out_refund_no,
        state=map_refund_state(status),
        channel_state=status,
        order_no=out_trade_no if isinstance(out_trade_no, str) else None,
        channel_refund_no=refund_id if isinstance(refund_id, str) else None,
        amount=refund,
        refunded_at=parse_time(success_time) if isinstance(success_time, str) else None,
    )


def _checked(
    answer: HttpAnswer, out_refund_no: str, out_trade_no: str | None, what: str
) -> RefundStatus:
    try:
        status = parse_refund(decode_object(answer.body))
    except ValueError as exc:
        raise ChannelOutcomeUnknown(f"unreadable {what} answer: {exc}") from exc
    if status.refund_no != out_refund_no:
        raise ChannelOutcomeUnknown(f"the {what} answer is about another refund")
    if out_trade_no is not None and status.order_no not in (None, out_trade_no):
        raise ChannelOutcomeUnknown(f"the {what} answer is about a refund of another order")
    return status


def parse_refund_answer(
    answer: HttpAnswer, out_refund_no: str, out_trade_no: str | None = None
) -> RefundStatus:
    """A verified apply-for-refund answer. Raises a `ChannelError` for a refusal.

    With `out_trade_no`, an answer about a refund of another order is `ChannelOutcomeUnknown`.

    An unknown or unpaid order is `404 RESOURCE_NOT_EXISTS`: a refusal (`ChannelRejected`).
    """
    if answer.status != 200:
        raise error_from_answer(answer, buyer_codes=REFUND_BUYER_CODES)
    return _checked(answer, out_refund_no, out_trade_no, "refund")


def parse_refund_query_answer(
    answer: HttpAnswer, out_refund_no: str, out_trade_no: str | None = None
) -> RefundStatus:
    """A verified refund query answer; `404 RESOURCE_NOT_EXISTS` is `RefundState.NOT_FOUND`."""
    if answer.status == 404 and error_code(answer) in NOT_FOUND_CODES:
        return RefundStatus(
            out_refund_no, RefundState.NOT_FOUND, channel_state="RESOURCE_NOT_EXISTS"
        )
    if answer.status != 200:
        raise error_from_answer(answer, buyer_codes=REFUND_BUYER_CODES)
    return _checked(answer, out_refund_no, out_trade_no, "refund query")


class OAuthRefused(ValueError):
    """WeChat refused an authorisation code (`errcode`, `errmsg`: 40029 invalid code, ...)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


def parse_oauth_token_answer(body: bytes) -> str:
    """The openid in `/sns/oauth2/access_token`'s answer (`{"access_token", "expires_in",
    "refresh_token", "openid", "scope"}`). Raises `OAuthRefused` or `ValueError`."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    if data.get("errcode"):
        raise OAuthRefused(int(data["errcode"]), str(data.get("errmsg", "")))
    openid = data.get("openid")
    if not isinstance(openid, str) or not openid:
        raise ValueError("the answer lacks openid")
    return openid


@dataclass(frozen=True)
class StatementFile:
    """Where a bill is and what its uncompressed bytes hash to."""

    download_url: str
    hash_type: str
    hash_value: str


def parse_statement_answer(answer: HttpAnswer) -> StatementFile | None:
    """The bill's URL and hash; `None` when WeChat has no bill for the day
    (`400 NO_STATEMENT_EXIST`: nothing happened). Other errors raise."""
    if answer.status == 400 and error_code(answer) == "NO_STATEMENT_EXIST":
        return None
    if answer.status != 200:
        raise error_from_answer(answer)
    try:
        data = decode_object(answer.body)
    except ValueError:
        raise ChannelOutcomeUnknown("unreadable bill answer", code="BAD_ANSWER") from None
    url, hash_type, hash_value = (data.get(n) for n in ("download_url", "hash_type", "hash_value"))
    if not (isinstance(url, str) and isinstance(hash_type, str) and isinstance(hash_value, str)):
        raise ChannelOutcomeUnknown("bill answer lacks download_url or hash", code="BAD_ANSWER")
    if hash_type != "SHA1":
        raise ChannelOutcomeUnknown(f"bill hash_type {hash_type!r} unknown", code="BAD_ANSWER")
    return StatementFile(url, hash_type, hash_value.lower())
