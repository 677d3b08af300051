-- 0007: web UI sessions. A browser that gave a token once holds a session
-- id in a cookie; only the id's SHA-256 is stored. A session ends at its
-- expiry, at logout, or when its token is revoked (the row goes with the
-- token). It acts as its token: the change log records the token's name.

CREATE TABLE ui_sessions (
    hash       BLOB NOT NULL PRIMARY KEY,                          -- sha256(session id)
    token      TEXT NOT NULL REFERENCES tokens(name) ON DELETE CASCADE,
    created_at TEXT NOT NULL,                                      -- RFC 3339 UTC time
    expires_at TEXT NOT NULL                                       -- RFC 3339 UTC time
) STRICT;

CREATE INDEX ui_sessions_by_token ON ui_sessions(token);
