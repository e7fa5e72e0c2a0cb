-- A trigger older than sink.max_trigger_age when it would have gone out is never sent:
-- its row records that (state expired), so a redelivery or a replay does not send it.
ALTER TABLE sink_deliveries DROP CONSTRAINT sink_deliveries_state_check;
ALTER TABLE sink_deliveries ADD CONSTRAINT sink_deliveries_state_check
    CHECK (state IN ('pending', 'sent', 'rejected', 'failed', 'ambiguous', 'expired'));
