-- Bookings occupy a busy range (their time plus the calendar's buffers). For the calendars slotline keeps
-- itself (builtin, demo) two confirmed busy ranges of one agent can never overlap: the triggers below
-- refuse the write inside the writing statement, so concurrent bookings cannot both succeed.
-- Cal.com bookings are a mirror of Cal.com's own state and are not constrained here.
ALTER TABLE bookings ADD COLUMN busy_from TEXT;
ALTER TABLE bookings ADD COLUMN busy_until TEXT;
ALTER TABLE bookings ADD COLUMN cancel_reason TEXT;
ALTER TABLE bookings ADD COLUMN rescheduled_from TEXT REFERENCES bookings(id);
UPDATE bookings SET busy_from = start_at, busy_until = end_at;

CREATE INDEX bookings_busy ON bookings(agent_id, busy_from) WHERE status = 'confirmed';
CREATE UNIQUE INDEX bookings_external ON bookings(agent_id, external_uid) WHERE external_uid IS NOT NULL;

CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings
WHEN NEW.status = 'confirmed' AND NEW.calendar_kind <> 'calcom'
BEGIN
    SELECT RAISE(ABORT, 'slot_taken') WHERE EXISTS (
        SELECT 1 FROM bookings b
        WHERE b.agent_id = NEW.agent_id AND b.status = 'confirmed' AND b.calendar_kind <> 'calcom'
          AND b.busy_from < NEW.busy_until AND b.busy_until > NEW.busy_from);
END;

CREATE TRIGGER bookings_no_overlap_update BEFORE UPDATE OF status, busy_from, busy_until ON bookings
WHEN NEW.status = 'confirmed' AND NEW.calendar_kind <> 'calcom'
BEGIN
    SELECT RAISE(ABORT, 'slot_taken') WHERE EXISTS (
        SELECT 1 FROM bookings b
        WHERE b.agent_id = NEW.agent_id AND b.id <> NEW.id AND b.status = 'confirmed' AND b.calendar_kind <> 'calcom'
          AND b.busy_from < NEW.busy_until AND b.busy_until > NEW.busy_from);
END;

-- The built-in calendar's rules (working hours, blocked ranges, buffers, notice, horizon) as JSON.
ALTER TABLE agents ADD COLUMN calendar_rules TEXT;
-- Secret that signs Cal.com webhooks for this agent, sealed like the API key.
ALTER TABLE agents ADD COLUMN calcom_webhook_secret_sealed BLOB;
