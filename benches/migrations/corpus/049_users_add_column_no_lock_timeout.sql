-- A cheap ADD COLUMN, but no lock_timeout: ACCESS EXCLUSIVE queued behind a long transaction blocks every query on users.
-- expect: missing_lock_timeout
ALTER TABLE users ADD COLUMN last_login_at timestamptz;
