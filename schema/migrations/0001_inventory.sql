-- 0001: the inventory: change log, versioned entities, attributes and connections.
--
-- Every mutable table is versioned: a row is visible from change `since`
-- (inclusive) until change `until` (exclusive; NULL while current). Reading
-- the present filters on `until IS NULL`, which the partial indexes below
-- serve, so history never slows current reads. Reading the past as of change
-- N filters on `since <= N AND (until IS NULL OR until > N)`.

CREATE TABLE changes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT, -- the change number: increasing, never reused
    at        TEXT    NOT NULL,                  -- RFC 3339 UTC time
    actor     TEXT    NOT NULL,
    op        TEXT    NOT NULL,
    entity_id INTEGER,                           -- the entity the change is about
    entity    TEXT    NOT NULL DEFAULT '',       -- its name at the time of the change
    peer_id   INTEGER,                           -- the other entity, for connections
    peer      TEXT    NOT NULL DEFAULT '',
    before    TEXT,                              -- JSON
    after     TEXT                               -- JSON
) STRICT;
CREATE INDEX changes_by_entity ON changes(entity_id, id);
CREATE INDEX changes_by_peer   ON changes(peer_id, id) WHERE peer_id IS NOT NULL;

-- Stable identities: an entity keeps its id through renames and is never reused.
-- (The change that created an entity is the since of its first row.)
CREATE TABLE entity_ids (
    id INTEGER PRIMARY KEY AUTOINCREMENT
) STRICT;

CREATE TABLE entities (
    rid        INTEGER PRIMARY KEY,
    id         INTEGER NOT NULL REFERENCES entity_ids(id),
    name       TEXT    NOT NULL,
    driver     TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('equipment','part','resource','group')),
    version    INTEGER NOT NULL,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    since      INTEGER NOT NULL REFERENCES changes(id),
    until      INTEGER REFERENCES changes(id)
) STRICT;
CREATE UNIQUE INDEX entities_cur_name   ON entities(name)         WHERE until IS NULL;
CREATE UNIQUE INDEX entities_cur_id     ON entities(id)           WHERE until IS NULL;
CREATE INDEX        entities_cur_driver ON entities(driver, name) WHERE until IS NULL;
CREATE INDEX        entities_hist_id    ON entities(id, since);
CREATE INDEX        entities_hist_name  ON entities(name, since);

CREATE TABLE attrs (
    rid       INTEGER PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entity_ids(id),
    key       TEXT    NOT NULL,
    subkey    TEXT    NOT NULL DEFAULT '',
    number    INTEGER,                      -- Clusto's optional attribute number
    type      TEXT    NOT NULL CHECK (type IN ('string','int','bool','time','ip','json','ref')),
    value     TEXT    NOT NULL,             -- canonical text: what patterns match
    num       INTEGER,                      -- integer values, for numeric comparison
    ip        BLOB,                         -- 16-byte address (IPv4 mapped), for range search
    ref       INTEGER REFERENCES entity_ids(id), -- referenced entity
    since     INTEGER NOT NULL REFERENCES changes(id),
    until     INTEGER REFERENCES changes(id)
) STRICT;
CREATE INDEX attrs_cur_entity ON attrs(entity_id, key, subkey, number) WHERE until IS NULL;
CREATE INDEX attrs_cur_value  ON attrs(key, value)  WHERE until IS NULL;
CREATE INDEX attrs_cur_num    ON attrs(key, num)    WHERE until IS NULL AND num IS NOT NULL;
CREATE INDEX attrs_cur_number ON attrs(key, number) WHERE until IS NULL AND number IS NOT NULL;
CREATE INDEX attrs_cur_ip     ON attrs(ip)          WHERE until IS NULL AND ip IS NOT NULL;
CREATE INDEX attrs_cur_ref    ON attrs(ref)         WHERE until IS NULL AND ref IS NOT NULL;
CREATE INDEX attrs_hist       ON attrs(entity_id, since);

-- Auto-numbering: the next number handed out for (entity, key); never goes back.
CREATE TABLE attr_numbers (
    entity_id INTEGER NOT NULL REFERENCES entity_ids(id),
    key       TEXT    NOT NULL,
    next      INTEGER NOT NULL,
    PRIMARY KEY (entity_id, key)
) STRICT, WITHOUT ROWID;

-- Typed connections. contains: a is the physical parent of b (position and
-- height in rack units when the parent has units). member: a is a group and b
-- its member. link: a cable from port a_port of a to port b_port of b, stored
-- once in each direction so that "a port carries one link" is one unique index
-- and both directions are indexed alike.
CREATE TABLE connections (
    rid       INTEGER PRIMARY KEY,
    type      TEXT    NOT NULL CHECK (type IN ('contains','member','link')),
    a         INTEGER NOT NULL REFERENCES entity_ids(id),
    b         INTEGER NOT NULL REFERENCES entity_ids(id),
    a_port    TEXT,
    b_port    TEXT,
    port_type TEXT,
    position  INTEGER,
    height    INTEGER,
    since     INTEGER NOT NULL REFERENCES changes(id),
    until     INTEGER REFERENCES changes(id),
    CHECK (a <> b),
    CHECK ((type = 'link') = (a_port IS NOT NULL AND b_port IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX conn_cur_one_parent ON connections(b)         WHERE type = 'contains' AND until IS NULL;
CREATE UNIQUE INDEX conn_cur_member     ON connections(a, b)      WHERE type = 'member' AND until IS NULL;
CREATE UNIQUE INDEX conn_cur_port       ON connections(a, a_port) WHERE type = 'link' AND until IS NULL;
CREATE INDEX        conn_cur_a          ON connections(a, type)   WHERE until IS NULL;
CREATE INDEX        conn_cur_b          ON connections(b, type)   WHERE until IS NULL;
CREATE INDEX        conn_hist_a         ON connections(a, since);
CREATE INDEX        conn_hist_b         ON connections(b, since);
