-- Sync: the study key, enrolment, devices, envelopes (ciphertext plus minimal metadata),
-- conflicts, control messages and the export log. Times are milliseconds since the epoch.

-- One study per server. Only its public key: the private key stays with the researchers.
CREATE TABLE study (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    public_key TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- One-time enrolment codes, stored as SHA-256 hex: the code itself is never kept.
CREATE TABLE enrolment_codes (
    code_hash   TEXT PRIMARY KEY NOT NULL,
    fieldworker TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   TEXT
) STRICT;

CREATE TABLE devices (
    id             TEXT PRIMARY KEY NOT NULL,
    fieldworker    TEXT NOT NULL,
    name           TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    -- SHA-256 hex of the device token; the token is shown to the device once.
    token_hash     TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    revoked_reason TEXT,
    enrolled_at    INTEGER NOT NULL,
    revoked_at     INTEGER
) STRICT;

-- The first revision to arrive for (record_id, rev) is kept here; a different one for the
-- same (record_id, rev) goes to `conflicts`. Never updated, never deleted.
CREATE TABLE envelopes (
    seq              INTEGER PRIMARY KEY,
    record_id        TEXT NOT NULL,
    rev              INTEGER NOT NULL,
    hash             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    participant_code TEXT,
    device_id        TEXT NOT NULL REFERENCES devices (id),
    time             INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    envelope         TEXT NOT NULL,
    UNIQUE (record_id, rev)
) STRICT;

CREATE TABLE conflicts (
    seq              INTEGER PRIMARY KEY,
    record_id        TEXT NOT NULL,
    rev              INTEGER NOT NULL,
    hash             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    participant_code TEXT,
    device_id        TEXT NOT NULL REFERENCES devices (id),
    time             INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    envelope         TEXT NOT NULL,
    UNIQUE (record_id, rev, hash)
) STRICT;

-- Messages for devices, delivered on pull in id order (the id is the pull cursor).
CREATE TABLE control_messages (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('withdrawal')),
    participant_code TEXT NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE export_log (
    id   INTEGER PRIMARY KEY,
    who  TEXT NOT NULL,
    at   INTEGER NOT NULL,
    what TEXT NOT NULL
) STRICT;
