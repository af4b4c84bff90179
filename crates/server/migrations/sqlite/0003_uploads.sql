-- Attachment uploads: sealed bytes named by their SHA-256. The bytes live in the blob folder
-- (`uploads/<sha256>.part` while arriving, `blobs/<xx>/<sha256>` once complete and checked);
-- this row says which attachment (blob id) they are, so export can find an Attachment
-- record's file. Times are milliseconds since the epoch.
CREATE TABLE uploads (
    sha256       TEXT PRIMARY KEY NOT NULL,
    blob_id      TEXT NOT NULL,
    length       INTEGER NOT NULL CHECK (length >= 0),
    device_id    TEXT NOT NULL REFERENCES devices (id),
    created_at   INTEGER NOT NULL,
    completed_at INTEGER
) STRICT;

CREATE INDEX uploads_by_blob ON uploads (blob_id);
