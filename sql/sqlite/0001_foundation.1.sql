-- Revision 0001, step 1 of 2 (SQLite): the foundation schema's tables, as
-- sql/postgresql/0001_foundation.1.sql with SQLite's words: ids are text holding a v4-shaped uuid
-- made from random bytes (so ids look the same on both databases), timestamps are `timestamp` text
-- defaulting to CURRENT_TIMESTAMP (UTC). Step 2, sql/common/0001_foundation.2.sql, creates their indexes.
-- Run by loyalty_pipeline/migrations/versions/0001_foundation.py; by hand, with the rest of
-- sql/common/ and sql/sqlite/ in the order of the file names (the README's "Migrations").

CREATE TABLE programs (
    id text PRIMARY KEY DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    slug text NOT NULL UNIQUE CHECK (slug <> ''),
    name text NOT NULL,
    birthday_bot_enabled boolean NOT NULL DEFAULT false,
    birthday_reward_points integer NOT NULL DEFAULT 0 CHECK (birthday_reward_points >= 0),
    birthday_message text NOT NULL DEFAULT 'Happy Birthday! We added points to your pass.',
    default_phone_region text NOT NULL DEFAULT 'US',
    date_order text NOT NULL DEFAULT 'MDY' CHECK (date_order IN ('MDY', 'DMY')),
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE users (
    id text PRIMARY KEY DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    email text NOT NULL UNIQUE,
    first_name text,
    last_name text,
    birth_date date,
    birth_month smallint CHECK (birth_month BETWEEN 1 AND 12),
    birth_day smallint CHECK (birth_day BETWEEN 1 AND 31),
    birth_date_set_at timestamp,
    phone_number text,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE passes_master (
    id text PRIMARY KEY DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    program_id text NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    points_balance integer NOT NULL DEFAULT 0,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (program_id, user_id)
);

CREATE TABLE uploads (
    key text PRIMARY KEY,
    program_id text NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    file_name text NOT NULL,
    sha256 text NOT NULL,
    rows_read integer NOT NULL DEFAULT 0,
    rows_accepted integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    warnings integer NOT NULL DEFAULT 0,
    users_created integer NOT NULL DEFAULT 0,
    users_updated integer NOT NULL DEFAULT 0,
    passes_created integer NOT NULL DEFAULT 0,
    processed_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE upload_issues (
    id text PRIMARY KEY DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    upload_key text NOT NULL REFERENCES uploads (key) ON DELETE CASCADE,
    line integer NOT NULL,
    "column" text NOT NULL,
    value text,
    severity text NOT NULL CHECK (severity IN ('error', 'warning')),
    reason text NOT NULL,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (upload_key, line, "column", reason)
);

CREATE TABLE birthday_logs (
    id text PRIMARY KEY DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    pass_id text NOT NULL REFERENCES passes_master (id) ON DELETE CASCADE,
    program_id text NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    year integer NOT NULL,
    reward_date date NOT NULL,
    points integer NOT NULL CHECK (points >= 0),
    batch_id text,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (pass_id, year)
);

CREATE TABLE notifications (
    id text PRIMARY KEY DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    pass_id text NOT NULL REFERENCES passes_master (id) ON DELETE CASCADE,
    program_id text NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    birthday_log_id text UNIQUE REFERENCES birthday_logs (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('birthday')),
    message text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sent_at timestamp
);
