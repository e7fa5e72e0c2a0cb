"""The inbox as a browser renders it: each offer like an e-mail, addresses masked.

Integration: it runs headless Chromium (installed by the set-up when missing).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from devstack.esp_sandbox import Sandbox
from tests.test_sink.browser import dump_dom, ensure_chromium
from tests.test_sink.conftest import Deliver
from tests.test_sink.triggers import make_trigger

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def chromium() -> str:
    return ensure_chromium()


def _offer(dom: str, trigger_id: str) -> str:
    match = re.search(
        rf'<article class="offer" data-trigger-id="{re.escape(trigger_id)}".*?</article>',
        dom, re.DOTALL,
    )  # fmt: skip
    assert match, f"no offer element for {trigger_id} in:\n{dom[:3000]}"
    return match.group(0)


def test_the_inbox_renders_each_offer_with_masked_addresses_and_escaped_values(
    chromium: str, sandbox: Sandbox, deliver: Deliver, tmp_path: Path
) -> None:
    plain = make_trigger(email="alice.smith@example.com", first_name="Alice")
    hostile = make_trigger(first_name="<img src=x onerror=alert(1)>", quote_ref="QF-<b>9</b>")
    assert deliver("sendgrid", plain).status_code == 202
    assert deliver("webhook", hostile).status_code == 200

    dom = dump_dom(chromium, sandbox.url + "/", tmp_path / "profile")

    offer = _offer(dom, plain["trigger_id"])
    assert 'data-provider="sendgrid"' in offer
    assert html.escape(plain["subject"], quote=False) in offer
    assert "Hi Alice," in offer
    assert "10% off your first year of motor cover" in offer
    assert '<p class="offer-discount">10% off</p>' in offer
    assert plain["quote_ref"] in offer
    assert "412.50 GBP" in offer
    assert '<span class="offer-recipient">a***@e***.com</span>' in offer
    assert "alice.smith@example.com" not in dom
    assert "@example.com" not in dom  # no address of any offer, anywhere on the page
    assert '<span id="count">2</span>' in dom

    other = _offer(dom, hostile["trigger_id"])
    assert "Hi &lt;img src=x onerror=alert(1)&gt;," in other  # shown, not run
    assert "QF-&lt;b&gt;9&lt;/b&gt;" in other
    assert "<img" not in other
