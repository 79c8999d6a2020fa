-- Calls that came through LiveKit keep their room: its name, and its sid, which is unique per room
-- instance (a room name can be used again later). The webhook and the worker both record the call;
-- the unique sid makes the second writer find the first one's row.
ALTER TABLE calls ADD COLUMN room TEXT;
ALTER TABLE calls ADD COLUMN room_sid TEXT;
CREATE UNIQUE INDEX calls_room_sid ON calls(room_sid) WHERE room_sid IS NOT NULL;
