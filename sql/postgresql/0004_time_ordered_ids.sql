-- Revision 0004 (PostgreSQL): time-ordered ids (the UUID version 7 layout: 48 bits of Unix
-- milliseconds, then random bits) for the tables that take bulk inserts, so a large upload fills
-- their primary-key indexes at one edge. Ids stay database defaults: other writers need not change.
-- Run by loyalty_pipeline/migrations/versions/0004_time_ordered_ids.py.

CREATE OR REPLACE FUNCTION loyalty_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

ALTER TABLE users ALTER COLUMN id SET DEFAULT loyalty_uuid_v7();
ALTER TABLE passes_master ALTER COLUMN id SET DEFAULT loyalty_uuid_v7();
ALTER TABLE upload_issues ALTER COLUMN id SET DEFAULT loyalty_uuid_v7();
ALTER TABLE birthday_logs ALTER COLUMN id SET DEFAULT loyalty_uuid_v7();
ALTER TABLE notifications ALTER COLUMN id SET DEFAULT loyalty_uuid_v7();
