-- 0005: the token audit list. Every creation and revocation of an API token
-- is one row: when, who did it, to which token and role. Tokens are not
-- inventory, so these are not in the change log; and a row never holds the
-- token's secret or its hash, only the name, so the list can be shown to
-- any admin. Rows are only ever added.

CREATE TABLE token_audit (
    id         INTEGER PRIMARY KEY,                    -- order of events; paging key
    at         TEXT NOT NULL,                          -- RFC 3339 UTC time
    actor      TEXT NOT NULL,                          -- the token used, 'anonymous', or 'clustod/USER' on the command line
    action     TEXT NOT NULL CHECK (action IN ('create','revoke')),
    token      TEXT NOT NULL,                          -- the token's name
    role       TEXT NOT NULL CHECK (role IN ('read','write','admin')),
    request_id TEXT                                    -- the API request, NULL from the command line
) STRICT;

-- Tokens made before this list existed are entered as made when they were
-- made, by nobody known.
INSERT INTO token_audit(at, actor, action, token, role)
    SELECT created_at, '(not recorded)', 'create', name, role FROM tokens ORDER BY created_at, name;
