"""The inbox page: the offers received, each rendered like the e-mail a customer would get.

It is rendered in the browser from ``/_sandbox/messages?redact=1``, so the page
never receives a full address (the server masks them), and every value goes
into the DOM through ``textContent``: a quote reference or a first name holding
markup is shown, never run. The Content-Security-Policy allows this one inline
script (by its hash) and requests to the sandbox itself, nothing else. Each
offer is an ``article.offer`` with ``data-trigger-id`` and ``data-provider``,
and its parts have ``offer-*`` classes: the hooks a browser test reads.
"""

from __future__ import annotations

import base64
import hashlib

_SCRIPT = """
"use strict";
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function offer(m) {
  const d = m.template_data || {};
  const card = el("article", "offer");
  card.dataset.triggerId = m.trigger_id;
  card.dataset.provider = m.provider;
  const head = el("header", "offer-head");
  head.append(el("div", "offer-subject", d.subject || "(no subject)"));
  const meta = el("div", "offer-meta");
  meta.append("To ", el("span", "offer-recipient", m.email_masked || "(profile address)"),
              " via ", el("span", "offer-provider", m.provider),
              " at ", el("span", "offer-received",
                         new Date(m.received_at * 1000).toISOString()));
  if (m.attempt > 1) meta.append(" ", el("span", "offer-attempt", "attempt " + m.attempt));
  head.append(meta);
  card.append(head);
  const body = el("section", "offer-body");
  body.append(el("p", "offer-greeting", "Hi " + (d.first_name || "there") + ","));
  body.append(el("p", "offer-description", d.offer_description || ""));
  if (d.discount_pct !== undefined && d.discount_pct !== null) {
    body.append(el("p", "offer-discount", d.discount_pct + "% off"));
  }
  const facts = el("p", "offer-facts");
  facts.append("Quote ", el("span", "offer-quote-ref", d.quote_ref || ""),
               ": ", el("span", "offer-premium", (d.premium || "") + " " + (d.currency || "")));
  body.append(facts);
  card.append(body);
  return card;
}
async function refresh() {
  const status = document.getElementById("status");
  try {
    const answer = await fetch("/_sandbox/messages?redact=1", {cache: "no-store"});
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    const messages = await answer.json();
    const list = document.getElementById("offers");
    list.replaceChildren(...messages.slice().reverse().map(offer));
    document.getElementById("count").textContent = String(messages.length);
    status.textContent = messages.length ? "" : "No offers yet.";
  } catch (error) {
    status.textContent = "Cannot read the sandbox: " + error.message;
  }
}
refresh();
setInterval(refresh, 3000);
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; color: #222; }
h1 { font-size: 1.3rem; }
.offer { border: 1px solid #ccc; border-radius: 6px; margin: 1rem 0; }
.offer-head { background: #f4f4f4; padding: .6rem 1rem; border-bottom: 1px solid #ddd; }
.offer-subject { font-weight: 600; }
.offer-meta { font-size: .85rem; color: #555; }
.offer-body { padding: .2rem 1rem; }
.offer-discount { font-weight: 600; color: #0a6; }
"""

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>quoteflow ESP sandbox: inbox</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>ESP sandbox inbox: <span id="count">0</span> offer(s)</h1>
<p id="status">Loading…</p>
<main id="offers"></main>
<script>{_SCRIPT}</script>
</body>
</html>
""".encode()

_DIGEST = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_STYLE_DIGEST = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

#: Only the page's own script and style, and requests back to the sandbox.
CSP = (
    f"default-src 'none'; script-src 'sha256-{_DIGEST}'; style-src 'sha256-{_STYLE_DIGEST}'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)
