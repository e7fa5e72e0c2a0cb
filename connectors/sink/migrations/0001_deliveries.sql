-- The ESP sink's delivery ledger: one row per trigger id, ever. The primary key is
-- what makes delivery effect-once: a trigger is claimed (state pending, with the
-- request id of the send) before any request leaves, and its outcome is written
-- before its Kafka offset is committed.
CREATE TABLE sink_deliveries (
    trigger_id       text        PRIMARY KEY,
    provider         text        NOT NULL,
    customer_id      bigint      NOT NULL,
    state            text        NOT NULL
        CHECK (state IN ('pending', 'sent', 'rejected', 'failed', 'ambiguous')),
    -- Sent as X-Request-Id with every attempt: what to quote to the ESP's support.
    request_id       uuid        NOT NULL,
    -- The id the provider deduplicates on (Customer.io's event id, the webhook id).
    dedupe_id        text,
    attempts         integer     NOT NULL DEFAULT 0,
    http_status      integer,
    esp_message_id   text,
    -- Why it was not sent; never personal data.
    error            text,
    -- Where the trigger was read: a redelivery of the same record after a crash is
    -- told apart from a replay (another offset) of an already delivered trigger.
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    first_attempt_at timestamptz,
    completed_at     timestamptz,
    -- When the outcome's receipt was committed to Kafka (with the offset): a record read
    -- again before that (a crash in between) gets the same receipt again, after it a
    -- DUPLICATE (a replay).
    receipt_at       timestamptz,
    -- A person's decision on an ambiguous delivery (`quoteflow sink resolve`).
    resolution       text        CHECK (resolution IN ('sent', 'resend')),
    resolved_at      timestamptz,
    resolved_by      text
);

-- What needs a person or a restart's attention is found without scanning history.
CREATE INDEX sink_deliveries_open ON sink_deliveries (state, claimed_at)
    WHERE state IN ('pending', 'ambiguous');
