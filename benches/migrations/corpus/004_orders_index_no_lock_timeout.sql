-- CREATE INDEX CONCURRENTLY without any lock_timeout: it still waits for SHARE UPDATE EXCLUSIVE behind long transactions.
-- expect: missing_lock_timeout
CREATE INDEX CONCURRENTLY orders_user_created_idx ON orders (user_id, created_at);
