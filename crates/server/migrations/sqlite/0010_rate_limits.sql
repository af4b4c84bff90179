-- Rate limits kept in the database, so several server instances on one database count
-- together. One row per (bucket, key): how many attempts were counted in the fixed window
-- that starts at window_start (ms since the epoch, a multiple of the bucket's window). A key
-- is a client address, the SHA-256 of a normalised enrolment code, or a device id: never a
-- raw code. Rows of past windows are deleted when a new window starts for any key of the
-- bucket, so the table holds at most the keys seen in the last two windows.
CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL CHECK (count >= 1),
    PRIMARY KEY (bucket, key)
) STRICT;

CREATE INDEX rate_limits_by_window ON rate_limits (bucket, window_start);
