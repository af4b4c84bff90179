-- Sync: the study key, enrolment, devices, envelopes (ciphertext plus minimal metadata),
-- conflicts, control messages and the export log. Times are milliseconds since the epoch.

-- One study per server. Only its public key: the private key stays with the researchers.
CREATE TABLE study (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One-time enrolment codes, stored as SHA-256 hex: the code itself is never kept.
CREATE TABLE enrolment_codes (
    code_hash   TEXT PRIMARY KEY NOT NULL,
    fieldworker TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    device_id   TEXT
);

CREATE TABLE devices (
    id             TEXT PRIMARY KEY NOT NULL,
    fieldworker    TEXT NOT NULL,
    name           TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    -- SHA-256 hex of the device token; the token is shown to the device once.
    token_hash     TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    revoked_reason TEXT,
    enrolled_at    BIGINT NOT NULL,
    revoked_at     BIGINT
);

-- The first revision to arrive for (record_id, rev) is kept here; a different one for the
-- same (record_id, rev) goes to `conflicts`. Never updated, never deleted.
CREATE TABLE envelopes (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id        TEXT NOT NULL,
    rev              BIGINT NOT NULL,
    hash             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    participant_code TEXT,
    device_id        TEXT NOT NULL REFERENCES devices (id),
    time             BIGINT NOT NULL,
    received_at      BIGINT NOT NULL,
    envelope         TEXT NOT NULL,
    UNIQUE (record_id, rev)
);

CREATE TABLE conflicts (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id        TEXT NOT NULL,
    rev              BIGINT NOT NULL,
    hash             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    participant_code TEXT,
    device_id        TEXT NOT NULL REFERENCES devices (id),
    time             BIGINT NOT NULL,
    received_at      BIGINT NOT NULL,
    envelope         TEXT NOT NULL,
    UNIQUE (record_id, rev, hash)
);

-- Messages for devices, delivered on pull in id order (the id is the pull cursor).
CREATE TABLE control_messages (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('withdrawal')),
    participant_code TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);

CREATE TABLE export_log (
    id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    who  TEXT NOT NULL,
    at   BIGINT NOT NULL,
    what TEXT NOT NULL
);
