-- The server checks what it stores (issue 10): a conflict keeps WHY it was kept, and a
-- participant code belongs to one participant record.
--
-- Conflicts before this migration were all "another revision with the same record and number
-- is stored" (`rev_taken`). Other reasons: `gap`, `parent_mismatch`,
-- `owned_by_another_device`, `code_taken` (see attune_core::sync::ConflictReason). `detail`
-- says what was found, in words.
ALTER TABLE conflicts ADD COLUMN reason TEXT NOT NULL DEFAULT 'rev_taken';
ALTER TABLE conflicts ADD COLUMN detail TEXT;

-- Which participant record holds each participant code: a participant record (kind
-- `participant`) whose code another record holds is kept as a conflict (`code_taken`).
CREATE TABLE participant_codes (
    code       TEXT PRIMARY KEY NOT NULL,
    record_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL REFERENCES devices (id),
    claimed_at INTEGER NOT NULL
) STRICT;

CREATE INDEX participant_codes_by_record ON participant_codes (record_id);

-- Filled from what is stored: each code goes to the participant record that arrived first
-- with it. A database that already holds a code under two participant records keeps them
-- both (nothing is deleted or renamed); `attune-server check` lists every holder, and the
-- number of such codes found here is noted in server_meta.
INSERT INTO participant_codes (code, record_id, device_id, claimed_at)
SELECT e.participant_code, e.record_id, e.device_id, e.received_at
FROM envelopes e
WHERE e.kind = 'participant' AND e.participant_code IS NOT NULL
  AND e.seq = (
      SELECT MIN(f.seq) FROM envelopes f
      WHERE f.kind = 'participant' AND f.participant_code = e.participant_code
  );

INSERT INTO server_meta (key, value)
SELECT 'duplicate_participant_codes_at_0007', CAST(COUNT(*) AS TEXT)
FROM (
    SELECT participant_code FROM envelopes
    WHERE kind = 'participant' AND participant_code IS NOT NULL
    GROUP BY participant_code
    HAVING COUNT(DISTINCT record_id) > 1
);
