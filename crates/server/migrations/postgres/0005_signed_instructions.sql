-- Signed study instructions (issue 10): the study signing key's public half, control messages
-- numbered and signed by the study team's CLI, withdrawals naming the participant by id,
-- revocations as signed control messages, and one-time enrolment challenges.
--
-- Rows from before keep their ids (the devices' pull cursors) and stay readable: their seq
-- and signature are NULL (unsigned, so never served to devices), a withdrawal's
-- participant_id is NULL (it named only a code).

-- The signing key's public half and its signature over the study public key. NULL for a
-- study made before signing (`attune-server study upgrade-key` sets them).
ALTER TABLE study
    ADD COLUMN signing_public_key TEXT,
    ADD COLUMN public_key_signature TEXT;

ALTER TABLE control_messages
    -- The study's instruction number, 1, 2, 3... (signed); NULL for rows from before.
    ADD COLUMN seq BIGINT UNIQUE CHECK (seq >= 1),
    ADD COLUMN participant_id TEXT,
    ADD COLUMN device_id TEXT,
    ADD COLUMN reason TEXT,
    -- The study signing key's Ed25519 signature (base64) over seq, kind, fields, created_at.
    ADD COLUMN signature TEXT;
ALTER TABLE control_messages DROP CONSTRAINT control_messages_kind_check;
ALTER TABLE control_messages
    ADD CONSTRAINT control_messages_kind_check
        CHECK (kind IN ('withdrawal', 'protocol_update', 'revocation'));
ALTER TABLE control_messages DROP CONSTRAINT control_messages_shape;
ALTER TABLE control_messages
    ADD CONSTRAINT control_messages_shape CHECK (
        (kind = 'withdrawal' AND participant_code IS NOT NULL
            AND (participant_id IS NOT NULL OR seq IS NULL)
            AND protocol IS NULL AND device_id IS NULL)
        OR (kind = 'protocol_update' AND participant_code IS NULL AND participant_id IS NULL
            AND protocol_id IS NOT NULL AND protocol_version IS NOT NULL AND protocol IS NOT NULL
            AND device_id IS NULL)
        OR (kind = 'revocation' AND seq IS NOT NULL AND device_id IS NOT NULL
            AND reason IS NOT NULL AND participant_code IS NULL AND protocol IS NULL)
    );
ALTER TABLE control_messages
    ADD CONSTRAINT control_messages_signed CHECK ((seq IS NULL) = (signature IS NULL));

-- One signed message per published version of a protocol (a version published unsigned
-- before may be published again, signed, for devices enrolled since).
DROP INDEX control_messages_protocol_version;
CREATE UNIQUE INDEX control_messages_protocol_version
    ON control_messages (protocol_id, protocol_version)
    WHERE kind = 'protocol_update' AND seq IS NOT NULL;

-- The signed revocation of a revoked device (handed to it on pull).
ALTER TABLE devices ADD COLUMN revocation_message_id BIGINT;

-- One-time enrolment challenges: a device signs one with the key it registers.
CREATE TABLE enrol_challenges (
    challenge  TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
