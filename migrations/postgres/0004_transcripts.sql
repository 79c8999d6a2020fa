-- What was said in a call, both sides, line by line (voice.transcripts; purged after
-- voice.transcript_retention_days).
CREATE TABLE transcript_lines (
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    speaker TEXT NOT NULL CHECK (speaker IN ('caller', 'agent')),
    text    TEXT NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX transcript_lines_at ON transcript_lines(at);
