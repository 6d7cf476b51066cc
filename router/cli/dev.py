"""`payrouter dev`'s sandbox merchant and what `dev` prints at start.

The sandbox merchant's credentials are kept in `<sandbox dir>/dev-merchant.json` (mode 0600,
beside the simulators' own sandbox keys), and shown at every start: a key copied from an
earlier start keeps working. Against Redis (`PAYROUTER_REDIS_URL`) the merchant is created
once and found again; the embedded store starts empty each time, so `dev` recreates the same
merchant with the same key and webhook secret in it. These are test-mode secrets of a sandbox;
merchants made with `payrouter merchants create` still see their secrets once only.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.sandbox_files import write_secret
from router.cli.serving import SIMULATOR_PORTS
from router.ids import MERCHANT_ID
from router.settings import Settings, redacted
from router.store import Store

NAME = "Sandbox merchant (payrouter dev)"
FILE_NAME = "dev-merchant.json"


@dataclass(frozen=True)
class SandboxMerchant:
    """What a developer needs to call the API and check webhooks."""

    merchant_id: str
    key_id: str
    secret: str
    webhook_secret: str


class _Saved(BaseModel):
    # The shapes the store accepts back: a file edited into anything else is not restored.
    model_config = ConfigDict(extra="ignore")

    merchant_id: Annotated[str, Field(pattern=MERCHANT_ID.pattern)]
    key_id: Annotated[str, Field(pattern=r"^key_[A-Za-z0-9]{8,64}$")]
    secret: Annotated[str, Field(pattern=r"^sk_test_[A-Za-z0-9_-]{16,200}$")]
    webhook_secret: Annotated[str, Field(pattern=r"^whsec_[A-Za-z0-9+/]{16,256}={0,2}$")]


def _read(path: Path) -> _Saved | None:
    """The saved credentials; None when absent or unusable (unreadable, not JSON, or a field
    that is not what `dev` writes): then `dev` makes new ones."""
    try:
        return _Saved.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None


async def sandbox_merchant(store: Store, sandbox_dir: Path) -> SandboxMerchant:
    """The sandbox merchant saved under `sandbox_dir`, made to exist in `store` with the same
    credentials; created (and saved) on the first start."""
    merchants = store.merchants
    path = sandbox_dir / FILE_NAME
    saved = _read(path)
    merchant = await merchants.get(saved.merchant_id) if saved else None
    if merchant is None:
        merchant = await merchants.add(NAME, merchant_id=saved.merchant_id if saved else None)
    mch = merchant.id

    key = await merchants.key_for_secret(saved.secret) if saved else None
    if saved is not None and key is None:
        key = (await merchants.issue_key(mch, "test", secret=saved.secret)).key
        secret = saved.secret
    elif saved is not None and key is not None and merchants.works(key, mch, "test"):
        secret = saved.secret
    else:
        # Rotated away or expired since it was saved (or nothing saved): a new one.
        issued = await merchants.issue_key(mch, "test")
        key, secret = issued.key, issued.secret

    in_force = await merchants.webhook_secrets(mch)
    if saved is not None and saved.webhook_secret in in_force:
        webhook_secret = saved.webhook_secret
    elif in_force:
        webhook_secret = in_force[0]
    else:
        restored = saved.webhook_secret if saved else None
        webhook_secret = await merchants.rotate_webhook_secret(mch, secret=restored)

    found = SandboxMerchant(mch, key.id, secret, webhook_secret)
    if saved is None or found != SandboxMerchant(**saved.model_dump()):
        _save(path, found)
    return found


def _save(path: Path, found: SandboxMerchant) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret(path, json.dumps(asdict(found), indent=2) + "\n")


def describe_store(settings: Settings) -> str:
    """Which store this process uses, for the first line an operator reads."""
    if settings.redis_url is None:
        return (
            "embedded store: payments are lost when it stops; set PAYROUTER_REDIS_URL to keep them"
        )
    return f"Redis at {redacted(settings.redis_url)}"


def _simulators() -> str:
    """Every registered simulator, two to a line."""
    urls = [f"{wallet} http://127.0.0.1:{port}" for wallet, port in SIMULATOR_PORTS.items()]
    lines = ["  ".join(urls[i : i + 2]) for i in range(0, len(urls), 2)]
    return "\n              ".join(lines)


def welcome(settings: Settings, merchant: SandboxMerchant, sandbox_dir: Path) -> str:
    """What `payrouter dev` prints once it is ready: a request that works, pasted as is."""
    base = settings.base_url
    order = "try-" + secrets.token_hex(4)
    return f"""
payrouter dev is running ({describe_store(settings)})
  router      {base}   (openapi: {base}/openapi.json)
  simulators  {_simulators()}

sandbox merchant {merchant.merchant_id}
  key id          {merchant.key_id}
  secret          {merchant.secret}
  webhook secret  {merchant.webhook_secret}
  (kept in {sandbox_dir / FILE_NAME}, the same at every start; the webhook secret verifies
  the webhooks sent to a payment's notify_url)

try it:
  curl -s {base}/v1/payments -H 'Authorization: Bearer {merchant.secret}' \\
    -H 'Idempotency-Key: {order}' -H 'Content-Type: application/json' \\
    -d '{{"amount": 1999, "merchant_order_id": "{order}", "description": "Demo", "method": "qr"}}'
then pay it as the buyer (code = the payment's action.qr_code):
  curl -s http://127.0.0.1:{SIMULATOR_PORTS["wechat"]}/sim/buyer/pay -d '{{"code": "weixin://..."}}'
"""
