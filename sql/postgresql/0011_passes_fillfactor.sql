-- Revision 0011 (PostgreSQL): passes_master pages keep a tenth free. A reward changes a pass's
-- points_balance, which no index holds, so the new row version can stay on its page (a HOT update)
-- when the page has room: no new entry in each of the table's three indexes, and no second page to
-- write. Densely filled pages had no room, so every pass's first reward moved it. Measured on the
-- benchmark's 5M passes, three programs x 365 days: the balance updates 6.0 -> 2.0 s, the whole
-- reward transactions 21 -> 15 s.
-- Pages written from now on keep the room; existing pages get it when the table is rewritten
-- (VACUUM FULL passes_master, or pg_repack without the lock).
-- Run by loyalty_pipeline/migrations/versions/0011_passes_fillfactor.py.

ALTER TABLE passes_master SET (fillfactor = 90);
