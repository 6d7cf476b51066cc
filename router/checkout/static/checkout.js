// The hosted checkout's only script (no inline code: the page's CSP allows none).
// Every value it needs is in data-* attributes that the server escaped.
"use strict";

const FINAL = ["succeeded", "failed", "closed"];

function pad(n) {
  return String(n).padStart(2, "0");
}

function showStatus(body, status) {
  const el = document.getElementById("status");
  if (!el) return;
  el.dataset.status = status;
  el.textContent = body.dataset["label" + status[0].toUpperCase() + status.slice(1)] || status;
}

function finish(body, status) {
  showStatus(body, status);
  const pay = document.getElementById("pay");
  if (pay) pay.hidden = true;
  const qr = document.querySelector("figure.qr");
  if (qr) qr.hidden = true;
  const back = document.getElementById("back");
  if (back) back.hidden = false;
  const target = body.dataset.returnUrl;
  if (target) window.setTimeout(() => window.location.assign(target), 1200);
}

function countdown(body) {
  const el = document.getElementById("time-left");
  const end = Date.parse(body.dataset.expiresAt || "");
  if (!el || Number.isNaN(end)) return;
  const tick = () => {
    const left = Math.max(0, Math.floor((end - Date.now()) / 1000));
    el.textContent = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
    if (left > 0) window.setTimeout(tick, 1000);
  };
  tick();
}

function poll(body) {
  const url = body.dataset.statusUrl;
  const current = document.getElementById("status");
  if (!url || !current) return;
  if (FINAL.includes(current.dataset.status)) {
    finish(body, current.dataset.status);
    return;
  }
  const ask = async () => {
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      if (answer.ok) {
        const data = await answer.json();
        if (FINAL.includes(data.status)) {
          finish(body, data.status);
          return;
        }
      }
    } catch (err) {
      // Offline for a moment: ask again at the next tick.
    }
    window.setTimeout(ask, 1500);
  };
  window.setTimeout(ask, 1500);
}

function walletButton() {
  const pay = document.getElementById("pay");
  if (!pay || !pay.dataset.params) return;
  pay.addEventListener("click", () => {
    const params = JSON.parse(pay.dataset.params);
    if (window.WeixinJSBridge) {
      window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, () => {});
    } else if (pay.dataset.sandboxUrl) {
      // The sandbox: no wallet app around the page, so the simulator's confirm screen.
      window.location.assign(pay.dataset.sandboxUrl);
    }
  });
}

function autoSubmit() {
  const form = document.querySelector("form[data-autosubmit]");
  if (form) form.submit();
}

document.addEventListener("DOMContentLoaded", () => {
  const body = document.body;
  countdown(body);
  poll(body);
  walletButton();
  autoSubmit();
});
