-- An agent's own voice (JSON: engine, name, speed); NULL: the gateway's default voice.
ALTER TABLE agents ADD COLUMN voice TEXT;
