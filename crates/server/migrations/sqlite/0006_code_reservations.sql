-- Participant codes unique across the study: the server reserves numbers per code prefix (a
-- protocol group's letter) in blocks, each block for one device, so no two tablets give out
-- the same code, even offline. Blocks are never updated or deleted; only the counter moves.

-- The next number to reserve, per prefix. The first reservation starts it above every code
-- the server holds with that prefix, so codes given out before reservations keep theirs.
CREATE TABLE code_counters (
    prefix      TEXT PRIMARY KEY NOT NULL CHECK (length(prefix) = 1 AND prefix BETWEEN 'A' AND 'Z'),
    next_number INTEGER NOT NULL CHECK (next_number >= 1)
) STRICT;

-- Numbers first_number .. first_number + numbers - 1 of a prefix, reserved for one device.
-- The id is the device's cursor: it asks for blocks after the last one it kept, so a block
-- whose answer was lost is delivered again instead of burning numbers.
CREATE TABLE code_blocks (
    id           INTEGER PRIMARY KEY,
    prefix       TEXT NOT NULL REFERENCES code_counters (prefix),
    device_id    TEXT NOT NULL REFERENCES devices (id),
    first_number INTEGER NOT NULL CHECK (first_number >= 1),
    numbers      INTEGER NOT NULL CHECK (numbers >= 1),
    reserved_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX code_blocks_by_device ON code_blocks (device_id, prefix, id);

-- The codes already given with a prefix, and a device's participant records.
CREATE INDEX envelopes_by_kind_and_code ON envelopes (kind, participant_code);
