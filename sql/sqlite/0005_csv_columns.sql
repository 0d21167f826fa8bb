-- Revision 0005 (SQLite): programs.csv_columns, as sql/postgresql/0005_csv_columns.sql (SQLite has
-- no ADD COLUMN IF NOT EXISTS). Run by loyalty_pipeline/migrations/versions/0005_csv_columns.py.

ALTER TABLE programs ADD COLUMN csv_columns text;
