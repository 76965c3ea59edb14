-- Sample application tables for the demo: a bloated table, an unused index, a duplicate and a
-- redundant index, application-logged slow queries and one real slow query.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS pgstattuple;
CREATE EXTENSION IF NOT EXISTS pg_steward;

CREATE TABLE public.conversations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid NOT NULL,
    title      text NOT NULL,
    body       text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.conversations (user_id, title, body, created_at)
SELECT md5((g % 500)::text)::uuid, 'conversation ' || g, repeat(md5(g::text), 3),
       now() - make_interval(mins => g)
  FROM generate_series(1, 120000) g;

-- Bloat: delete half of the rows; VACUUM makes the space reusable but does not return it.
DELETE FROM public.conversations WHERE id % 2 = 0;
VACUUM public.conversations;

CREATE TABLE public.messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint NOT NULL,
    user_id         uuid NOT NULL,
    content         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.messages (conversation_id, user_id, content, created_at)
SELECT (g % 60000) * 2 + 1, md5((g % 500)::text)::uuid, 'message ' || g, now() - make_interval(secs => g)
  FROM generate_series(1, 60000) g;
CREATE INDEX messages_created_at_idx ON public.messages (created_at);            -- never used
CREATE INDEX messages_conversation_idx ON public.messages (conversation_id);
CREATE INDEX messages_conversation_dup ON public.messages (conversation_id);     -- duplicate
CREATE INDEX messages_user_idx ON public.messages (user_id);                     -- redundant ...
CREATE INDEX messages_user_created_idx ON public.messages (user_id, created_at); -- ... covered by this
CREATE UNIQUE INDEX messages_conv_id_uniq ON public.messages (conversation_id, id); -- unique: never flagged

ANALYZE public.conversations;
ANALYZE public.messages;

-- Use the indexes that are meant to be used.
SELECT count(*) FROM public.messages WHERE conversation_id = 3;
SELECT count(*) FROM public.messages WHERE user_id = md5('7')::uuid AND created_at > now() - interval '1 day';

-- A slow query the server sees (pg_stat_statements) ...
SELECT pg_sleep(0.6);
-- ... and what the application logged.
INSERT INTO steward.query_performance_logs (query_text, query_hash, duration_ms, endpoint)
SELECT 'SELECT * FROM conversations WHERE title ILIKE $1', 'conv-search', 700 + g * 10, '/api/conversations'
  FROM generate_series(1, 5) g;

-- The demo's indexes are minutes old: count an index as unused after 0 days instead of 30.
SELECT steward.set_setting('unusedIndexDays', '0');
ANALYZE;
