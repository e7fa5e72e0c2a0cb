"""``quoteflow sink`` as a user meets it: one-line errors, the ambiguous list, a resolution."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from connectors.sink.ledger import Claim, Final, Ledger
from quoteflow.settings import Settings
from tests.test_quoteflow.test_cli import quoteflow


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"QUOTEFLOW_SINK__PROVIDER": "sendgrid", "QUOTEFLOW_SINK__SECRET": "s3cr3t-v4lue"},
         "setting sink.sendgrid.from_email: the sendgrid provider needs it"),
        ({"QUOTEFLOW_SINK__PROVIDER": "customerio",
          "QUOTEFLOW_SINK__CUSTOMERIO__SITE_ID": "s"}, "QUOTEFLOW_SINK__SECRET"),
        ({"QUOTEFLOW_SINK__BASE_URL": "http://esp.example.com"}, "setting sink.base_url"),
        ({"QUOTEFLOW_SINK__PROVIDER": "mailchimp"}, "setting sink.provider"),
    ],
)  # fmt: skip
def test_sink_configuration_mistakes_are_one_line(env: dict[str, str], fragment: str) -> None:
    done = quoteflow("sink", env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert "s3cr3t-v4lue" not in done.stdout + done.stderr


@pytest.mark.integration
def test_ambiguous_deliveries_are_listed_and_resolved(stack: object, settings: Settings) -> None:
    trigger_id = f"cli-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    with Ledger(settings.postgres.ops_conninfo()) as ledger:
        ledger.claim([Claim(trigger_id, "sendgrid", 42, uuid.uuid4(), None, "t", 1, 7)])
        ledger.record([Final(trigger_id, "ambiguous", 1, None, None,
                             "read timeout: the ESP may have accepted it", now, now)])  # fmt: skip
    listed = quoteflow("sink", "ambiguous", "--limit", "10000", timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert trigger_id in listed.stdout and "read timeout" in listed.stdout
    done = quoteflow("sink", "resolve", trigger_id, "--sent", "--by", "alice", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "recorded as sent (decided by alice)" in done.stdout
    again = quoteflow("sink", "resolve", trigger_id, "--sent", timeout=60)
    assert again.returncode == 1 and "is sent, not ambiguous" in again.stderr
    assert "Traceback" not in again.stderr
    neither = quoteflow("sink", "resolve", trigger_id, timeout=60)
    assert neither.returncode == 2 and "--sent or --resend" in neither.stderr
    with Ledger(settings.postgres.ops_conninfo()) as ledger:
        (entry,) = ledger.entries([trigger_id])
        assert (entry.state, entry.resolution) == ("sent", "sent")
        ledger._run("DELETE FROM sink_deliveries WHERE trigger_id = %s", [trigger_id])
