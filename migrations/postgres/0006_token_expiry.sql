-- API tokens may expire; a token past expires_at is refused. NULL: never.
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
