-- 0003: API tokens. Only a SHA-256 hash of each token is kept; the token
-- itself is shown once, when it is created. Tokens are not inventory: they
-- are not versioned and their changes are not in the change log. Revoking a
-- token deletes its row, so the name can be used again.

CREATE TABLE tokens (
    name       TEXT NOT NULL PRIMARY KEY,              -- recorded as the actor of its changes
    role       TEXT NOT NULL CHECK (role IN ('read','write','admin')),
    hash       BLOB NOT NULL UNIQUE,                   -- sha256(token)
    created_at TEXT NOT NULL                           -- RFC 3339 UTC time
) STRICT;
