-- 0008: the change log filtered by who made a change or by its operation
-- (the web interface's change log, store.ChangeLog) reads newest first
-- from these instead of walking the whole log: a filter that matches
-- little, or nothing, would otherwise read every change.

CREATE INDEX changes_by_actor ON changes(actor, id);
CREATE INDEX changes_by_op    ON changes(op, id);
