-- A program's own column mapping for its uploads, written by the front end: a JSON object of
-- field -> header name or list of header names (see loyalty_pipeline/fields.py), or NULL to
-- recognise the columns from the field table.
ALTER TABLE programs ADD COLUMN IF NOT EXISTS csv_columns jsonb;
