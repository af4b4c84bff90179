-- Control messages may carry a protocol update (`attune-server protocol publish`): the
-- protocol's id, version and JSON. A withdrawal keeps its participant code.
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt: a new table,
-- every row copied with its id (the ids are the devices' pull cursors and must not change),
-- the old table dropped and the new one renamed. sqlx runs this file in one transaction, so a
-- failure anywhere leaves the old table as it was. No other table refers to this one.
CREATE TABLE control_messages_v4 (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('withdrawal', 'protocol_update')),
    participant_code TEXT,
    protocol_id      TEXT,
    protocol_version INTEGER,
    protocol         TEXT,
    created_at       INTEGER NOT NULL,
    CHECK (
        (kind = 'withdrawal' AND participant_code IS NOT NULL AND protocol IS NULL)
        OR (kind = 'protocol_update' AND participant_code IS NULL AND protocol_id IS NOT NULL
            AND protocol_version IS NOT NULL AND protocol IS NOT NULL)
    )
) STRICT;

INSERT INTO control_messages_v4 (id, kind, participant_code, created_at)
SELECT id, kind, participant_code, created_at FROM control_messages ORDER BY id;

DROP TABLE control_messages;

ALTER TABLE control_messages_v4 RENAME TO control_messages;

-- One message per published version of a protocol.
CREATE UNIQUE INDEX control_messages_protocol_version
    ON control_messages (protocol_id, protocol_version) WHERE kind = 'protocol_update';
