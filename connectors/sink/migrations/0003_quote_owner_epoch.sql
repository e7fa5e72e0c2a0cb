-- Effect-once by QUOTE (one offer per quote, ever), and claims fenced by owner + epoch.
--
-- quote_id: the quote a row is about. At most one *offer* row per quote (any state but
-- duplicate): a second trigger for the quote (another rules version, another processor
-- app) is recorded as state 'duplicate' naming the offer's trigger (duplicate_of) and is
-- never sent. Rows written before this migration have no quote id (the ledger never
-- stored it, and a trigger id is a hash): they block their own trigger id as before, and
-- get their quote id when that trigger is read again (a replay backfills them).
ALTER TABLE sink_deliveries ADD COLUMN quote_id bigint;
ALTER TABLE sink_deliveries ADD COLUMN duplicate_of text;
ALTER TABLE sink_deliveries DROP CONSTRAINT sink_deliveries_state_check;
ALTER TABLE sink_deliveries ADD CONSTRAINT sink_deliveries_state_check
    CHECK (state IN ('pending', 'sent', 'rejected', 'failed', 'ambiguous', 'expired',
                     'duplicate'));
CREATE UNIQUE INDEX sink_deliveries_one_offer_per_quote ON sink_deliveries (quote_id)
    WHERE quote_id IS NOT NULL AND state <> 'duplicate';
-- A quote's rows with its duplicates (a re-offer sets them all aside).
CREATE INDEX sink_deliveries_quote ON sink_deliveries (quote_id) WHERE quote_id IS NOT NULL;

-- owner/epoch: who holds a pending claim. owner is one sink process; epoch is the
-- ownership epoch of the partition the trigger was read from in the sink's consumer
-- group, bumped in sink_partition_epochs at every assignment. A claim is made or taken
-- over only while its epoch is the partition's current one (a sink that lost its
-- partitions and does not know it yet is fenced off), and released or recorded only
-- with the (owner, epoch) it holds, so such a sink can neither delete nor overwrite the
-- claim the partition's next owner took over. Rows from before (owner NULL, epoch 0)
-- are a stopped sink's: taken over like one.
ALTER TABLE sink_deliveries ADD COLUMN owner text;
ALTER TABLE sink_deliveries ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
-- The outcome a sink found after its claim had been taken over (never dropped silently).
ALTER TABLE sink_deliveries ADD COLUMN late_outcome jsonb;

CREATE TABLE sink_partition_epochs (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    epoch       bigint      NOT NULL,
    owner       text        NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- The one way to offer a quote again (`quoteflow sink reoffer QUOTE_ID --reason`): who,
-- why, and the rows it set aside (kept here, removed from sink_deliveries, so exactly the
-- next trigger for the quote is claimed as its new offer).
CREATE TABLE sink_reoffers (
    id           bigserial   PRIMARY KEY,
    quote_id     bigint      NOT NULL,
    reason       text        NOT NULL CHECK (length(btrim(reason)) > 0),
    requested_by text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    previous     jsonb       NOT NULL
);
CREATE INDEX sink_reoffers_quote ON sink_reoffers (quote_id);
