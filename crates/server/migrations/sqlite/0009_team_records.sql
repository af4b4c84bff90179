-- The study team's own records, made in the researcher console: safeguarding
-- acknowledgements and conflict resolutions. Each is sealed to the study key and signed with
-- the study signing key in the browser: the server stores the sealed bytes (base64) and the
-- signature as posted, checked against the study signing key, and cannot read them.
-- Append-only: a record is never changed or deleted.
CREATE TABLE team_records (
    -- UUIDv7 made by the console; posting the same record again is harmless.
    id         TEXT PRIMARY KEY NOT NULL,
    -- When the server stored it (the server's clock).
    created_at INTEGER NOT NULL,
    -- The member whose session posted it.
    member_id  TEXT NOT NULL REFERENCES team_members (id),
    sealed     TEXT NOT NULL,
    signature  TEXT NOT NULL
) STRICT;
