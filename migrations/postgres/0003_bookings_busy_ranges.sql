-- Bookings occupy a busy range (their time plus the calendar's buffers). For the calendars slotline keeps
-- itself (builtin, demo) two confirmed busy ranges of one agent can never overlap: an exclusion
-- constraint refuses the second, so concurrent bookings cannot both succeed. Cal.com bookings are a
-- mirror of Cal.com's own state and are not constrained here. btree_gist is a trusted extension
-- (PostgreSQL 13+): the database owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

ALTER TABLE bookings
    ADD COLUMN busy_from TIMESTAMPTZ,
    ADD COLUMN busy_until TIMESTAMPTZ,
    ADD COLUMN cancel_reason TEXT,
    ADD COLUMN rescheduled_from TEXT REFERENCES bookings(id);
UPDATE bookings SET busy_from = start_at, busy_until = end_at;
ALTER TABLE bookings ALTER COLUMN busy_from SET NOT NULL, ALTER COLUMN busy_until SET NOT NULL;

ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (agent_id WITH =, tstzrange(busy_from, busy_until) WITH &&)
    WHERE (status = 'confirmed' AND calendar_kind <> 'calcom');
CREATE UNIQUE INDEX bookings_external ON bookings(agent_id, external_uid) WHERE external_uid IS NOT NULL;

-- The built-in calendar's rules (working hours, blocked ranges, buffers, notice, horizon) as JSON.
ALTER TABLE agents
    ADD COLUMN calendar_rules TEXT,
    ADD COLUMN calcom_webhook_secret_sealed BYTEA;
