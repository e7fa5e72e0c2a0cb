"""The statements of the sink's claim and outcome path, and the JSON batches they read.

Every statement is one round trip over a batch: one JSON document, unpacked by
``jsonb_to_recordset`` in the database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from connectors.sink.ledger_store import Claim, Final

# One JSON document per batch: json.dumps runs in C, where psycopg would adapt every
# element of eight arrays in Python (the dispatcher thread's time is the sink's ceiling).
#: A sink (an owner) claims only in the current ownership epoch of the record's
#: partition: one that lost the partition and does not know it yet is fenced off.
CURRENT = """(x.o IS NULL OR EXISTS (
    SELECT 1 FROM sink_partition_epochs e WHERE e.group_id = x.g AND e.topic = x.st
    AND e.partition = x.sp AND e.epoch = x.ep AND e.owner = x.o))"""

STALE = "".join((
    "SELECT x.t FROM jsonb_to_recordset(%s::jsonb) AS x(t text, st text, sp int, ep bigint,",
    " o text, g text) WHERE NOT ", CURRENT,
))


# A conflict on either unique key (the trigger id, or the quote's one offer) claims
# nothing: the caller looks at what is there.
CLAIM = """
INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state, request_id, dedupe_id,
                             source_topic, source_partition, source_offset, quote_id, owner,
                             epoch)
SELECT t, p, c, 'pending', r, d, st, sp, so, q, o, ep
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, p text, c bigint, r uuid, d text, st text, sp int, so bigint, q bigint,
          o text, ep bigint, g text)
WHERE """ + CURRENT + """
ON CONFLICT DO NOTHING
RETURNING 'claimed'::text, trigger_id
"""


# Only the claim's own owner and epoch write its outcome: a claim taken over by another
# sink (or whose row is gone) matches nothing here, and the caller is told which. An
# "ambiguous" of the new holder does not hide a late "sent" its previous holder left.
RECORD = """
UPDATE sink_deliveries AS d
SET state = CASE WHEN x.s = 'ambiguous' AND d.late_outcome->>'state' = 'sent' THEN 'sent'
                 ELSE x.s END,
    attempts = x.a, http_status = x.h, error = x.e, first_attempt_at = x.f, completed_at = x.c,
    esp_message_id = CASE WHEN x.s = 'ambiguous' AND d.late_outcome->>'state' = 'sent'
                          THEN d.late_outcome->>'esp_message_id' ELSE x.m END,
    resolution = CASE WHEN x.s = 'ambiguous' AND d.late_outcome->>'state' = 'sent'
                      THEN 'sent' ELSE d.resolution END
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, s text, a int, h int, m text, e text, f timestamptz, c timestamptz, o text,
          ep bigint)
WHERE d.trigger_id = x.t AND d.state = 'pending' AND d.owner IS NOT DISTINCT FROM x.o
  AND d.epoch = x.ep
RETURNING 'recorded'::text, d.trigger_id
"""


#: Outcomes and the next claims in one round trip (a dispatcher turn usually has both):
#: data-modifying WITH clauses always run to completion, referenced or not.
RECORD_AND_CLAIM = "".join((
    "WITH recorded AS (", RECORD.strip(), "), claimed AS (", CLAIM.strip(), ")\n",
    "SELECT * FROM recorded UNION ALL SELECT * FROM claimed",
))


# A trigger for a quote that already has its offer: recorded (never sent), naming the offer.
DUPLICATE = """
INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state, request_id, dedupe_id,
                             source_topic, source_partition, source_offset, quote_id, owner,
                             epoch, duplicate_of, error, attempts, completed_at)
SELECT t, p, c, 'duplicate', r, d, st, sp, so, q, o, ep, dup, err, 0, now()
FROM jsonb_to_recordset(%s::jsonb)
     AS x(t text, p text, c bigint, r uuid, d text, st text, sp int, so bigint, q bigint,
          o text, ep bigint, dup text, err text)
ON CONFLICT (trigger_id) DO NOTHING
RETURNING trigger_id
"""


# The outcome of a claim taken over by another sink: kept in late_outcome, never dropped.
# A late "sent" settles a row the new owner could only hold as ambiguous; a sent (or
# maybe sent) trigger whose row is gone (a person's resend meanwhile) is written back.
LATE = """
WITH x AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb)
        AS x(t text, s text, a int, h int, m text, e text, f timestamptz, c timestamptz,
             o text, ep bigint, p text, cu bigint, r uuid, d text, st text, sp int, so bigint,
             q bigint)
), kept AS (
    UPDATE sink_deliveries AS d
    SET late_outcome = jsonb_build_object('state', x.s, 'owner', x.o, 'epoch', x.ep,
                                          'http_status', x.h, 'esp_message_id', x.m,
                                          'error', x.e, 'completed_at', x.c),
        state = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN 'sent' ELSE d.state END,
        esp_message_id = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN x.m
                              ELSE d.esp_message_id END,
        http_status = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN x.h
                           ELSE d.http_status END,
        resolution = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN 'sent'
                          ELSE d.resolution END,
        resolved_at = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent' THEN now()
                           ELSE d.resolved_at END,
        resolved_by = CASE WHEN d.state = 'ambiguous' AND x.s = 'sent'
                           THEN 'late outcome of ' || coalesce(x.o, 'a sink')
                           ELSE d.resolved_by END
    FROM x WHERE d.trigger_id = x.t
    RETURNING d.trigger_id
), restored AS (
    INSERT INTO sink_deliveries (trigger_id, provider, customer_id, state, request_id,
                                 dedupe_id, source_topic, source_partition, source_offset,
                                 quote_id, owner, epoch, attempts, http_status, esp_message_id,
                                 error, first_attempt_at, completed_at)
    SELECT x.t, x.p, x.cu, x.s, x.r, x.d, x.st, x.sp, x.so, x.q, x.o, x.ep, x.a, x.h, x.m,
           x.e, x.f, x.c
    FROM x WHERE x.s IN ('sent', 'ambiguous') AND x.p IS NOT NULL
             AND x.t NOT IN (SELECT trigger_id FROM kept)
    ON CONFLICT DO NOTHING
    RETURNING trigger_id
)
SELECT 'kept'::text, trigger_id FROM kept
UNION ALL SELECT 'restored'::text, trigger_id FROM restored
"""


def final_rows(finals: Sequence[Final], owner: str | None) -> str:
    return json.dumps([
        {"t": f.trigger_id, "s": f.state, "a": f.attempts, "h": f.http_status,
         "m": f.esp_message_id, "e": f.error,
         "f": f.first_attempt_at.isoformat() if f.first_attempt_at else None,
         "c": f.completed_at.isoformat(), "o": owner,
         "ep": f.claim.epoch if f.claim else 0}
        for f in finals
    ])  # fmt: skip


def claim_row(c: Claim, owner: str | None, group: str | None = None) -> dict[str, Any]:
    return {"t": c.trigger_id, "p": c.provider, "c": c.customer_id, "r": str(c.request_id),
            "d": c.dedupe_id, "st": c.topic, "sp": c.partition, "so": c.offset,
            "q": c.quote_id, "o": owner, "ep": c.epoch, "g": group}  # fmt: skip

