-- Add Cal.com fields to the agents table: which calendar an agent books into and how.
ALTER TABLE agents ADD COLUMN calendar_kind TEXT NOT NULL DEFAULT 'demo'
    CHECK (calendar_kind IN ('calcom', 'builtin', 'demo'));
-- XChaCha20-Poly1305 sealed (see src/storage/crypto.rs); never plaintext.
ALTER TABLE agents ADD COLUMN calcom_api_key_sealed BLOB;
-- Last 4 characters, shown to admins to recognise the key.
ALTER TABLE agents ADD COLUMN calcom_api_key_hint TEXT;
ALTER TABLE agents ADD COLUMN calcom_event_type_slug TEXT;
ALTER TABLE agents ADD COLUMN calcom_event_type_id INTEGER;
ALTER TABLE agents ADD COLUMN calcom_username TEXT;
ALTER TABLE agents ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE agents ADD COLUMN slot_minutes INTEGER NOT NULL DEFAULT 30 CHECK (slot_minutes BETWEEN 5 AND 480);
