-- The study team of the researcher console: members who sign in with passkeys (WebAuthn),
-- the invitations that let them register, the ceremonies in flight, their sessions and an
-- audit log. Secrets (invitation and session tokens) are stored as their SHA-256 only.

-- A study team member. `user_handle` is the WebAuthn user.id (base64url of 32 random bytes)
-- that a discoverable passkey returns on sign-in.
CREATE TABLE team_members (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'researcher', 'coder')),
    user_handle  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_sign_in BIGINT
);

-- A member's passkey: the credential id (base64url), its COSE algorithm (-7 ES256, -8 EdDSA),
-- its public key (base64url: SEC1 point for ES256, 32 bytes for EdDSA) and signature counter.
CREATE TABLE team_passkeys (
    credential_id TEXT PRIMARY KEY NOT NULL,
    member_id     TEXT NOT NULL REFERENCES team_members (id),
    algorithm     BIGINT NOT NULL CHECK (algorithm IN (-7, -8)),
    public_key    TEXT NOT NULL,
    sign_count    BIGINT NOT NULL CHECK (sign_count >= 0),
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);

CREATE INDEX team_passkeys_by_member ON team_passkeys (member_id);

-- An invitation to join with a role: single use (used_at, member_id once spent).
CREATE TABLE team_invitations (
    token_hash TEXT PRIMARY KEY NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'researcher', 'coder')),
    name       TEXT NOT NULL,
    created_by TEXT REFERENCES team_members (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    member_id  TEXT REFERENCES team_members (id)
);

-- A WebAuthn ceremony between start and finish: its challenge (base64url), single use, with
-- the origin and RP id it was started for. A registration also names its invitation, the
-- member's name and the user handle offered to the authenticator.
CREATE TABLE team_ceremonies (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('register', 'login')),
    challenge       TEXT NOT NULL,
    origin          TEXT NOT NULL,
    rp_id           TEXT NOT NULL,
    invitation_hash TEXT,
    member_name     TEXT,
    user_handle     TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

-- A signed-in session: the SHA-256 of the cookie's token.
CREATE TABLE team_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    member_id  TEXT NOT NULL REFERENCES team_members (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- What the team did (and what was refused), append-only. `member_name` is kept as it was.
CREATE TABLE team_audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    member_id   TEXT,
    member_name TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
