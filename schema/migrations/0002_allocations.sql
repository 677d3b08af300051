-- 0002: IP address allocations and idempotency keys.

-- One row per address handed out from a block, versioned like the inventory
-- (since/until change numbers) so past allocations stay readable. `offset`
-- is the address's distance from the block's network address, biased by
-- 2^63 (offset XOR 0x8000000000000000 as a signed integer) so that signed
-- integer order is address order across the whole of an IPv6 /64.
CREATE TABLE ip_allocations (
    rid       INTEGER PRIMARY KEY,
    block_id  INTEGER NOT NULL REFERENCES entity_ids(id),
    offset    INTEGER NOT NULL,
    address   BLOB    NOT NULL,                          -- 16 bytes, IPv4 mapped
    entity_id INTEGER NOT NULL REFERENCES entity_ids(id), -- who holds it
    interface TEXT    NOT NULL DEFAULT '',
    since     INTEGER NOT NULL REFERENCES changes(id),
    until     INTEGER REFERENCES changes(id)
) STRICT;
-- An address is handed out once per block: the database refuses a second.
CREATE UNIQUE INDEX ipalloc_cur_offset ON ip_allocations(block_id, offset) WHERE until IS NULL;
CREATE INDEX        ipalloc_cur_entity ON ip_allocations(entity_id)        WHERE until IS NULL;
CREATE INDEX        ipalloc_cur_addr   ON ip_allocations(address)          WHERE until IS NULL;
CREATE INDEX        ipalloc_hist       ON ip_allocations(block_id, since);

-- Runs of consecutive allocated offsets of each block, kept in step with
-- ip_allocations. Finding the lowest free address is then a walk over runs
-- (one index probe per run or reserved range passed), never over addresses.
CREATE TABLE ip_runs (
    block_id INTEGER NOT NULL REFERENCES entity_ids(id),
    first    INTEGER NOT NULL, -- biased offsets, inclusive
    last     INTEGER NOT NULL,
    PRIMARY KEY (block_id, first)
) STRICT, WITHOUT ROWID;

-- Idempotency-Key: the first answer to a keyed request, kept for replay.
CREATE TABLE idempotency_keys (
    key          TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    response     BLOB    NOT NULL,
    created_at   TEXT    NOT NULL,
    PRIMARY KEY (actor, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_by_time ON idempotency_keys(created_at);
