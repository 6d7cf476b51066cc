// The simulators' buyer pages: Pay / Decline act as the buyer through /sim/buyer/*.
// Values come from data-* attributes (escaped by the server), never from inline code.
"use strict";

async function act(what) {
  const data = document.body.dataset;
  const answer = await fetch("/sim/buyer/" + what, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code: data.code }),
  });
  const body = await answer.json();
  const state = body[data.stateField];
  const error = document.getElementById("error");
  if (!answer.ok || !state) {
    error.textContent = (body.error && body.error.message) || String(answer.status);
    error.hidden = false;
    return;
  }
  document.getElementById("state").textContent = state;
  for (const id of ["pay", "decline"]) document.getElementById(id).disabled = true;
  if (data.back && (data.paid || "").split(",").includes(state)) {
    window.location.assign(data.back);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-act]")) {
    button.addEventListener("click", () => act(button.dataset.act));
  }
  const form = document.querySelector("form[data-autosubmit]");
  if (form) form.submit();
});
