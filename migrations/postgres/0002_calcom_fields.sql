-- Add Cal.com fields to the agents table: which calendar an agent books into and how.
ALTER TABLE agents
    ADD COLUMN calendar_kind TEXT NOT NULL DEFAULT 'demo' CHECK (calendar_kind IN ('calcom', 'builtin', 'demo')),
    -- XChaCha20-Poly1305 sealed (see src/storage/crypto.rs); never plaintext.
    ADD COLUMN calcom_api_key_sealed BYTEA,
    -- Last 4 characters, shown to admins to recognise the key.
    ADD COLUMN calcom_api_key_hint TEXT,
    ADD COLUMN calcom_event_type_slug TEXT,
    ADD COLUMN calcom_event_type_id BIGINT,
    ADD COLUMN calcom_username TEXT,
    ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC',
    ADD COLUMN slot_minutes INTEGER NOT NULL DEFAULT 30 CHECK (slot_minutes BETWEEN 5 AND 480);
