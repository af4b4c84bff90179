-- Facts about this server's database itself (not about any study or participant).
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

INSERT INTO server_meta (key, value)
VALUES ('schema_created_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
