-- Control messages may carry a protocol update (`attune-server protocol publish`): the
-- protocol's id, version and JSON. A withdrawal keeps its participant code. Existing rows
-- (withdrawals) keep their ids: they are the devices' pull cursors.
ALTER TABLE control_messages ALTER COLUMN participant_code DROP NOT NULL;
ALTER TABLE control_messages
    ADD COLUMN protocol_id TEXT,
    ADD COLUMN protocol_version BIGINT,
    ADD COLUMN protocol TEXT;
ALTER TABLE control_messages DROP CONSTRAINT control_messages_kind_check;
ALTER TABLE control_messages
    ADD CONSTRAINT control_messages_kind_check
        CHECK (kind IN ('withdrawal', 'protocol_update'));
ALTER TABLE control_messages
    ADD CONSTRAINT control_messages_shape CHECK (
        (kind = 'withdrawal' AND participant_code IS NOT NULL AND protocol IS NULL)
        OR (kind = 'protocol_update' AND participant_code IS NULL AND protocol_id IS NOT NULL
            AND protocol_version IS NOT NULL AND protocol IS NOT NULL)
    );

-- One message per published version of a protocol.
CREATE UNIQUE INDEX control_messages_protocol_version
    ON control_messages (protocol_id, protocol_version) WHERE kind = 'protocol_update';
