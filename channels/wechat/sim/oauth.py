"""WeChat's web authorisation (网页授权) and the in-app pay sheet, as a browser meets them.

    GET /connect/oauth2/authorize?appid=&redirect_uri=&response_type=code&scope=&state=
        -> 302 redirect_uri?code=...&state=...     (snsapi_base asks the buyer nothing)
    GET /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code
        -> {"access_token", "expires_in", "refresh_token", "openid", "scope"}
           or {"errcode": 40029, "errmsg": "invalid code"} (codes are single-use, 5 minutes)
    GET /sim/wallet/jsapi?package=prepay_id%3D...&redirect_url=...
        the pay sheet WeChat shows for `getBrandWCPayRequest`: the order, 确认付款 and 取消;
        once paid, back to `redirect_url` (the merchant's page)

The simulated buyer's openid is the same for every code of one app id (one buyer per sandbox),
shaped as WeChat's are (28 of A-Z a-z 0-9 - _).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from channels.sim import pages
from channels.wechat.sim.state import SIMULATOR

CODE_TTL_S = 300.0


@dataclass(frozen=True)
class _Grant:
    appid: str
    openid: str
    scope: str
    expires: float


_GRANTS = web.AppKey("wechat_oauth_grants", dict[str, _Grant])


def sandbox_openid(appid: str) -> str:
    """The sandbox buyer's openid under `appid`."""
    digest = hashlib.sha256(f"openid:{appid}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


def _error(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


def _account_secret(request: web.Request, appid: str) -> str | None:
    for account in request.app[SIMULATOR].accounts.values():
        if account.credentials.appid == appid:
            return account.credentials.oauth_secret()
    return None


async def authorize(request: web.Request) -> web.Response:
    """Issue a code for the sandbox buyer and send the browser back with it."""
    q = request.query
    appid, redirect_uri, scope = q.get("appid", ""), q.get("redirect_uri", ""), q.get("scope", "")
    if _account_secret(request, appid) is None:
        return pages.error_page("微信", "10003", "appid 参数错误")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return pages.error_page("微信", "10003", "redirect_uri 参数错误")
    if q.get("response_type") != "code" or scope not in ("snsapi_base", "snsapi_userinfo"):
        return pages.error_page("微信", "10005", "scope 参数错误或没有 scope 权限")
    code = secrets.token_urlsafe(24)
    # The simulator's own bookkeeping: wall time, like its orders' expiry.
    expires = time.monotonic() + CODE_TTL_S
    request.app[_GRANTS][code] = _Grant(appid, sandbox_openid(appid), scope, expires)
    sep = "&" if "?" in redirect_uri else "?"
    target = redirect_uri + sep + urlencode({"code": code, "state": q.get("state", "")})
    raise web.HTTPFound(target)


async def access_token(request: web.Request) -> web.Response:
    """Trade a code (once) for the buyer's openid."""
    q = request.query
    appid = q.get("appid", "")
    secret = _account_secret(request, appid)
    if secret is None:
        return _error(40013, "invalid appid")
    if not hmac.compare_digest(secret, q.get("secret", "")):
        return _error(40125, "invalid appsecret")
    if q.get("grant_type") != "authorization_code":
        return _error(40002, "invalid grant_type")
    grant = request.app[_GRANTS].pop(q.get("code", ""), None)
    if grant is None or grant.appid != appid or grant.expires < time.monotonic():
        return _error(40029, "invalid code")
    return web.json_response(
        {
            "access_token": secrets.token_urlsafe(32),
            "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(32),
            "openid": grant.openid,
            "scope": grant.scope,
        }
    )


async def jsapi_sheet(request: web.Request) -> web.Response:
    """The pay sheet of a jsapi order (`package=prepay_id=...`)."""
    package = request.query.get("package", "")
    prepay_id = package.removeprefix("prepay_id=")
    order = request.app[SIMULATOR].orders.find_by_code(prepay_id)
    if order is None:
        return pages.error_page("微信支付", "ORDER_NOT_EXIST", "订单不存在", 404)
    back = request.query.get("redirect_url", "")
    if urlsplit(back).scheme not in ("http", "https"):
        back = ""
    return pages.cashier(
        brand="微信支付",
        title=order.description,
        rows=[("商户单号", order.out_trade_no)],
        amount=f"{order.total // 100}.{order.total % 100:02d}",
        code=order.code,
        state=order.trade_state,
        state_field="trade_state",
        paid=("SUCCESS",),
        back=back or None,
    )


def routes(app: web.Application) -> list[web.RouteDef]:
    """The authorisation and pay-sheet routes; their state lives in `app`."""
    app[_GRANTS] = {}
    return [
        web.get("/connect/oauth2/authorize", authorize),
        web.get("/sns/oauth2/access_token", access_token),
        web.get("/sim/wallet/jsapi", jsapi_sheet),
    ]
