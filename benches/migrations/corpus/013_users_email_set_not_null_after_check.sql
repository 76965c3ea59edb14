-- Safe pattern, last step: users_email_not_null CHECK (email IS NOT NULL) is already validated (earlier migration),
-- so SET NOT NULL skips the scan; then the check is dropped.
-- expect: none
-- explain: catalog
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_email_not_null;
