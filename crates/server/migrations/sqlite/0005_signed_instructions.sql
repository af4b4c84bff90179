-- Signed study instructions (issue 10): the study signing key's public half, control messages
-- numbered and signed by the study team's CLI, withdrawals naming the participant by id,
-- revocations as signed control messages, and one-time enrolment challenges.
--
-- Rows from before keep their ids (the devices' pull cursors) and stay readable: their seq
-- and signature are NULL (unsigned, so never served to devices), a withdrawal's
-- participant_id is NULL (it named only a code).

-- The signing key's public half and its signature over the study public key. NULL for a
-- study made before signing (`attune-server study upgrade-key` sets them).
ALTER TABLE study ADD COLUMN signing_public_key TEXT;
ALTER TABLE study ADD COLUMN public_key_signature TEXT;

-- SQLite cannot change a CHECK constraint in place: the table is rebuilt as in 0004, every row
-- copied with its id. sqlx runs this file in one transaction. No other table refers to it.
CREATE TABLE control_messages_v5 (
    id               INTEGER PRIMARY KEY,
    -- The study's instruction number, 1, 2, 3... (signed); NULL for rows from before.
    seq              INTEGER UNIQUE CHECK (seq >= 1),
    kind             TEXT NOT NULL CHECK (kind IN ('withdrawal', 'protocol_update', 'revocation')),
    participant_id   TEXT,
    participant_code TEXT,
    protocol_id      TEXT,
    protocol_version INTEGER,
    protocol         TEXT,
    device_id        TEXT,
    reason           TEXT,
    created_at       INTEGER NOT NULL,
    -- The study signing key's Ed25519 signature (base64) over seq, kind, fields, created_at.
    signature        TEXT,
    CHECK ((seq IS NULL) = (signature IS NULL)),
    CHECK (
        (kind = 'withdrawal' AND participant_code IS NOT NULL
            AND (participant_id IS NOT NULL OR seq IS NULL)
            AND protocol IS NULL AND device_id IS NULL)
        OR (kind = 'protocol_update' AND participant_code IS NULL AND participant_id IS NULL
            AND protocol_id IS NOT NULL AND protocol_version IS NOT NULL AND protocol IS NOT NULL
            AND device_id IS NULL)
        OR (kind = 'revocation' AND seq IS NOT NULL AND device_id IS NOT NULL
            AND reason IS NOT NULL AND participant_code IS NULL AND protocol IS NULL)
    )
) STRICT;

INSERT INTO control_messages_v5
    (id, kind, participant_code, protocol_id, protocol_version, protocol, created_at)
SELECT id, kind, participant_code, protocol_id, protocol_version, protocol, created_at
FROM control_messages ORDER BY id;

DROP TABLE control_messages;

ALTER TABLE control_messages_v5 RENAME TO control_messages;

-- One signed message per published version of a protocol (a version published unsigned
-- before may be published again, signed, for devices enrolled since).
CREATE UNIQUE INDEX control_messages_protocol_version
    ON control_messages (protocol_id, protocol_version)
    WHERE kind = 'protocol_update' AND seq IS NOT NULL;

-- The signed revocation of a revoked device (handed to it on pull). No foreign key, so a
-- later rebuild of control_messages stays as simple as this one.
ALTER TABLE devices ADD COLUMN revocation_message_id INTEGER;

-- One-time enrolment challenges: a device signs one with the key it registers.
CREATE TABLE enrol_challenges (
    challenge  TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
