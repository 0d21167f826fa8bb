-- Revision 0005: programs.csv_columns, a program's own CSV header names: a JSON object mapping a
-- field of the upload (email, first_name, ...) to the header its files use; NULL means the standard
-- headers. Text, so both databases and the front end store it alike; the loyalty CLI and the
-- pipeline validate it. IF NOT EXISTS: a database that applied the old runner's 005_csv_columns.sql
-- has it already. Run by loyalty_pipeline/migrations/versions/0005_csv_columns.py.

ALTER TABLE programs ADD COLUMN IF NOT EXISTS csv_columns text;
