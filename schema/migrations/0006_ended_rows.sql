-- 0006: the rows a transaction ended, found by the change that ended them.
-- The inventory's rules are checked at every commit over what the
-- transaction changed: the rows it wrote (rowids past those there were
-- when it began) and the rows it ended (until at or past its first
-- change). These partial indexes make the second set a range scan. Only
-- ended rows are in them, so a bulk load, which ends almost nothing, pays
-- almost nothing for them.

CREATE INDEX entities_ended ON entities(until)       WHERE until IS NOT NULL;
CREATE INDEX attrs_ended    ON attrs(until)          WHERE until IS NOT NULL;
CREATE INDEX conn_ended     ON connections(until)    WHERE until IS NOT NULL;
CREATE INDEX ipalloc_ended  ON ip_allocations(until) WHERE until IS NOT NULL;
