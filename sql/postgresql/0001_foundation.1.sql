-- Revision 0001, step 1 of 2 (PostgreSQL): the foundation schema's tables. programs, users and
-- passes_master are the existing Supabase app's tables (it writes them too); uploads and upload_issues
-- are the CSV ingestion's record; birthday_logs and notifications are the birthday bot's rewards and
-- outbox. Step 2, sql/common/0001_foundation.2.sql, creates their indexes.
-- Run by loyalty_pipeline/migrations/versions/0001_foundation.py; by hand, with the rest of
-- sql/common/ and sql/postgresql/ in the order of the file names (the README's "Migrations").

CREATE TABLE programs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE CHECK (slug <> ''),
    name text NOT NULL,
    birthday_bot_enabled boolean NOT NULL DEFAULT false,
    birthday_reward_points integer NOT NULL DEFAULT 0 CHECK (birthday_reward_points >= 0),
    birthday_message text NOT NULL DEFAULT 'Happy Birthday! We added points to your pass.',
    default_phone_region text NOT NULL DEFAULT 'US',
    date_order text NOT NULL DEFAULT 'MDY' CHECK (date_order IN ('MDY', 'DMY')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL UNIQUE,
    first_name text,
    last_name text,
    birth_date date,
    birth_month smallint CHECK (birth_month BETWEEN 1 AND 12),
    birth_day smallint CHECK (birth_day BETWEEN 1 AND 31),
    birth_date_set_at timestamptz,
    phone_number text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE passes_master (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    points_balance integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (program_id, user_id)
);

CREATE TABLE uploads (
    key text PRIMARY KEY,
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    file_name text NOT NULL,
    sha256 text NOT NULL,
    rows_read integer NOT NULL DEFAULT 0,
    rows_accepted integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    warnings integer NOT NULL DEFAULT 0,
    users_created integer NOT NULL DEFAULT 0,
    users_updated integer NOT NULL DEFAULT 0,
    passes_created integer NOT NULL DEFAULT 0,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE upload_issues (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    upload_key text NOT NULL REFERENCES uploads (key) ON DELETE CASCADE,
    line integer NOT NULL,
    "column" text NOT NULL,
    value text,
    severity text NOT NULL CHECK (severity IN ('error', 'warning')),
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (upload_key, line, "column", reason)
);

CREATE TABLE birthday_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pass_id uuid NOT NULL REFERENCES passes_master (id) ON DELETE CASCADE,
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    year integer NOT NULL,
    reward_date date NOT NULL,
    points integer NOT NULL CHECK (points >= 0),
    batch_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pass_id, year)
);

CREATE TABLE notifications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pass_id uuid NOT NULL REFERENCES passes_master (id) ON DELETE CASCADE,
    program_id uuid NOT NULL REFERENCES programs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    birthday_log_id uuid UNIQUE REFERENCES birthday_logs (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('birthday')),
    message text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
