-- Safe pattern, first step: CHECK (name IS NOT NULL) NOT VALID (no scan).
-- expect: none
SET lock_timeout = '5s';
SET statement_timeout = '15min';
ALTER TABLE users ADD CONSTRAINT users_name_not_null CHECK (name IS NOT NULL) NOT VALID;
