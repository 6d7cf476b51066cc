"""Checks on a create request before anything is routed, stored or sent to a channel.

In this order, so the merchant hears about the first thing to fix:

1. The method: an account that could take the payment (its mode, the pinned `channel`, the
   given `wallet`) must offer it. `jsapi` at UnionPay is refused naming `method`, not
   `payer_id`: no `payer_id` would help.
2. The method's own fields: `jsapi` needs `payer_id`, `h5` `client_ip`, `barcode`
   `auth_code`; `auth_code` is for `barcode` only.
3. The buyer's code names the wallet, so a payment goes only where that code can be paid
   (each channel package declares its codes' shapes, `channels.spec.BuyerCode`):

   | method    | field       | wallet by its shape                                         |
   |-----------|-------------|-------------------------------------------------------------|
   | `barcode` | `auth_code` | WeChat Pay 10-15…, Alipay 25-30…, UnionPay 62… (prefix)     |
   | `jsapi`   | `payer_id`  | WeChat Pay openid (28 of `A-Z a-z 0-9 - _`), Alipay buyer   |
   |           |             | id (16 digits starting 2088)                                |

   Without `wallet` (or a pinned `channel`), the request is routed as if it named the code's
   wallet; with one, the code must be of that wallet. A payment code of no known prefix
   needs `wallet` (the channel then judges the code); a `payer_id` of neither shape is
   refused, since no channel could use it.

Every refusal is a `InvalidField` naming the field to fix; nothing has been written yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import Wallet
from channels.registry import REGISTRY
from channels.spec import BuyerCode
from router.domain_errors import InvalidField
from router.models import CreatePaymentRequest
from router.routing.decide import Candidate


def _name(wallet: Wallet) -> str:
    return str(REGISTRY[wallet].name)


def _auth_codes() -> list[tuple[Wallet, BuyerCode]]:
    """Payment-code prefixes per wallet, as each channel package declares them."""
    return [(s.wallet, s.auth_code) for s in REGISTRY.values() if s.auth_code is not None]


def _payer_ids() -> list[tuple[Wallet, BuyerCode]]:
    """The `payer_id` a `jsapi` payment takes per wallet, as each channel package declares."""
    return [(s.wallet, s.payer_id) for s in REGISTRY.values() if s.payer_id is not None]


def check_create(
    req: CreatePaymentRequest, accounts: Mapping[str, Candidate], livemode: bool
) -> CreatePaymentRequest:
    """`req`, with `wallet` set to the buyer's code's wallet when it named none.

    Raises `InvalidField` naming the field at fault (see the module docstring).
    """
    _check_method(req, accounts, livemode)
    _require_method_fields(req)
    wallet = _buyer_wallet(req, _given_wallet(req, accounts))
    if wallet is None or wallet == req.wallet:
        return req
    field = "auth_code" if req.method == "barcode" else "payer_id"
    if _offered(accounts, livemode, req.method, wallet, req.channel) is False:
        raise InvalidField(
            "method_unsupported",
            f"{field} is for {_name(wallet)}, and no {wallet} account takes "
            f"{req.method!r} payments",
            param=field,
        )
    return req.model_copy(update={"wallet": wallet})


def _offered(
    accounts: Mapping[str, Candidate],
    livemode: bool,
    method: str,
    wallet: Wallet | None,
    pinned: str | None,
) -> bool | None:
    """Whether an account that could take the payment offers `method`; None when no account
    could take it at all (the routing decision names that problem)."""
    eligible = [
        c.channel.capabilities
        for name, c in accounts.items()
        if c.livemode == livemode
        and (pinned is None or name == pinned)
        and (wallet is None or c.channel.capabilities.wallet == wallet)
    ]
    if not eligible:
        return None
    return any(method in caps.methods for caps in eligible)


def _check_method(
    req: CreatePaymentRequest, accounts: Mapping[str, Candidate], livemode: bool
) -> None:
    if _offered(accounts, livemode, req.method, req.wallet, req.channel) is not False:
        return
    if req.channel:
        which = f"channel account {req.channel!r} does not take"
    else:
        wallet = f"{req.wallet} " if req.wallet else ""
        which = f"no {wallet}account {'in live mode' if livemode else 'in the sandbox'} takes"
    raise InvalidField("method_unsupported", f"{which} method {req.method!r}", param="method")


def _require_method_fields(req: CreatePaymentRequest) -> None:
    if req.method == "jsapi" and req.payer_id is None:
        raise InvalidField("parameter_missing", "jsapi payments need payer_id", param="payer_id")
    if req.method == "barcode" and req.auth_code is None:
        raise InvalidField(
            "parameter_missing", "barcode payments need auth_code", param="auth_code"
        )
    if req.method == "h5" and req.client_ip is None:
        raise InvalidField("parameter_missing", "h5 payments need client_ip", param="client_ip")
    if req.auth_code is not None and req.method != "barcode":
        raise InvalidField(
            "parameter_unexpected", "auth_code is for barcode payments only", param="auth_code"
        )


def _given_wallet(req: CreatePaymentRequest, accounts: Mapping[str, Candidate]) -> Wallet | None:
    """The wallet the merchant chose: `wallet`, else the pinned channel's."""
    if req.wallet is not None:
        return req.wallet
    pinned = accounts.get(req.channel) if req.channel else None
    return pinned.channel.capabilities.wallet if pinned is not None else None


def _buyer_wallet(req: CreatePaymentRequest, given: Wallet | None) -> Wallet | None:
    if req.method == "barcode" and req.auth_code is not None:
        return _auth_code_wallet(req.auth_code, given)
    if req.method == "jsapi" and req.payer_id is not None:
        return _payer_id_wallet(req.payer_id, given)
    return None


def _auth_code_wallet(code: str, given: Wallet | None) -> Wallet | None:
    codes = _auth_codes()
    found = next((w for w, known in codes if known.pattern.match(code)), None)
    if found is None:
        if given is None:
            prefixes = ", ".join(f"{_name(w)} {known.described}" for w, known in codes)
            raise InvalidField(
                "wallet_required",
                f"auth_code starts like no wallet's payment code ({prefixes}): name the "
                "buyer's wallet in wallet",
                param="wallet",
            )
        return None
    if given is not None and found != given:
        raise InvalidField(
            "auth_code_wallet_mismatch",
            f"auth_code is a payment code of {_name(found)}, but the payment is for {_name(given)}",
            param="auth_code",
        )
    return found


def _payer_id_wallet(payer_id: str, given: Wallet | None) -> Wallet | None:
    ids = _payer_ids()
    found = next((w for w, known in ids if known.pattern.fullmatch(payer_id)), None)
    if given is None or found == given:
        if found is not None:
            return found
    elif all(w != given for w, _ in ids):
        # A wallet without jsapi: the method check, or routing, refuses the payment.
        return None
    wanted = " or ".join(known.described for w, known in ids if given in (None, w))
    seems = f" (it looks like {dict(ids)[found].described})" if found is not None else ""
    raise InvalidField(
        "payer_id_invalid",
        f"payer_id must be {wanted} for jsapi payments{seems}",
        param="payer_id",
    )
