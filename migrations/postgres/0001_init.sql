-- slotline schema, PostgreSQL. Ids are UUID text (the same values as on SQLite); instants are timestamptz.

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    prompt      TEXT NOT NULL DEFAULT '',
    greeting    TEXT NOT NULL DEFAULT '',
    language    TEXT NOT NULL DEFAULT 'en',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE phone_numbers (
    e164       TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX phone_numbers_agent ON phone_numbers(agent_id);

CREATE TABLE number_prefixes (
    prefix     TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE bookings (
    id              TEXT PRIMARY KEY,
    agent_id        TEXT REFERENCES agents(id) ON DELETE SET NULL,
    calendar_kind   TEXT NOT NULL,
    external_uid    TEXT,
    start_at        TIMESTAMPTZ NOT NULL,
    end_at          TIMESTAMPTZ NOT NULL,
    attendee_name   TEXT NOT NULL,
    attendee_email  TEXT,
    attendee_phone  TEXT,
    notes           TEXT,
    status          TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled', 'rescheduled')),
    source_call_id  TEXT,
    idempotency_key TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX bookings_agent_start ON bookings(agent_id, start_at);
CREATE UNIQUE INDEX bookings_idempotency ON bookings(agent_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    sip_call_id TEXT NOT NULL,
    agent_id    TEXT REFERENCES agents(id) ON DELETE SET NULL,
    dialed      TEXT NOT NULL,
    caller      TEXT NOT NULL,
    transport   TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ,
    ended_at    TIMESTAMPTZ,
    end_reason  TEXT,
    sip_status  INTEGER
);
CREATE INDEX calls_started ON calls(started_at);
CREATE INDEX calls_agent ON calls(agent_id, started_at);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'analyst')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);
