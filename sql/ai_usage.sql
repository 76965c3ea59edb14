-- AI usage and spending (issue #17 items 1 and 4): one row per model call, its cost from the
-- model catalogue (steward.ai_models(), the table calculate_cost reads), a daily roll-up per
-- user of the days that are over (rollup_ai_usage(), the daily job), spend per day/week/month
-- against the budgets of the user's effective configuration, and the current budget status —
-- both read the roll-up up to its watermark and the calls after it.  Days, weeks (ISO, from
-- Monday) and months are UTC.

CREATE TABLE steward.ai_usage (
    id              uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    user_id         uuid NOT NULL,
    organization_id uuid,
    model           text NOT NULL,
    input_tokens    bigint NOT NULL CHECK (input_tokens >= 0),
    output_tokens   bigint NOT NULL CHECK (output_tokens >= 0),
    cost            numeric(20, 8) NOT NULL CHECK (cost >= 0),
    request_id      text CHECK (request_id IS NULL OR length(request_id) BETWEEN 1 AND 200),
    recorded_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    recorded_by     text NOT NULL,
    -- Idempotent per request: a request id counts once per user (another user's ids never collide).
    UNIQUE (user_id, request_id)
);
CREATE INDEX ai_usage_user_time ON steward.ai_usage (user_id, recorded_at);
-- The days the roll-up reads, and the users with calls after its watermark (budget alerts).
CREATE INDEX ai_usage_time ON steward.ai_usage (recorded_at);
SELECT pg_catalog.pg_extension_config_dump('steward.ai_usage', '');
ALTER TABLE steward.ai_usage ENABLE ROW LEVEL SECURITY;
-- End users read their own calls; admins everyone's.
CREATE POLICY ai_usage_own ON steward.ai_usage FOR SELECT
    USING (user_id OPERATOR(pg_catalog.=) steward.caller_uuid() OR steward._config_admin());

-- Spend per user and UTC day, for the days up to ai_usage_rollup.rolled_through.
CREATE TABLE steward.ai_usage_daily (
    user_id       uuid NOT NULL,
    day           date NOT NULL,
    cost          numeric(20, 8) NOT NULL DEFAULT 0,
    input_tokens  bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    calls         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);
-- The days of every user at once (budget alerts read the current month's).
CREATE INDEX ai_usage_daily_day ON steward.ai_usage_daily (day);
SELECT pg_catalog.pg_extension_config_dump('steward.ai_usage_daily', '');

-- The last UTC day ai_usage_daily holds in full (later days are summed from ai_usage).
CREATE TABLE steward.ai_usage_rollup (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_through date NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('steward.ai_usage_rollup', '');

-- Roll up the calls of the days that are over (up to the day before yesterday, UTC: a
-- transaction that began before midnight may still commit a call of yesterday), and move the
-- watermark.  Returns the roll-up rows written.  Admins; the daily pg_cron job runs it.
CREATE FUNCTION steward.rollup_ai_usage() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from date;
    v_to date := (now() AT TIME ZONE 'UTC')::date - 2;
    n integer;
BEGIN
    PERFORM steward._require_writable();
    -- One roll-up at a time.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward rollup_ai_usage'));
    SELECT r.rolled_through + 1 INTO v_from FROM steward.ai_usage_rollup r;
    IF v_from IS NULL THEN
        SELECT (min(u.recorded_at) AT TIME ZONE 'UTC')::date INTO v_from FROM steward.ai_usage u;
    END IF;
    IF v_from IS NULL OR v_from > v_to THEN
        IF v_from IS NULL THEN
            INSERT INTO steward.ai_usage_rollup (rolled_through) VALUES (v_to) ON CONFLICT (singleton) DO NOTHING;
        END IF;
        RETURN 0;
    END IF;
    INSERT INTO steward.ai_usage_daily AS d (user_id, day, cost, input_tokens, output_tokens, calls)
    SELECT u.user_id, (u.recorded_at AT TIME ZONE 'UTC')::date, sum(u.cost), sum(u.input_tokens), sum(u.output_tokens), count(*)
      FROM steward.ai_usage u
     WHERE u.recorded_at >= (v_from::timestamp AT TIME ZONE 'UTC') AND u.recorded_at < ((v_to + 1)::timestamp AT TIME ZONE 'UTC')
     GROUP BY 1, 2
    ON CONFLICT (user_id, day) DO UPDATE
       SET cost = EXCLUDED.cost, input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens, calls = EXCLUDED.calls;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO steward.ai_usage_rollup (rolled_through) VALUES (v_to)
    ON CONFLICT (singleton) DO UPDATE SET rolled_through = EXCLUDED.rolled_through;
    RETURN n;
END
$$;

-- A user's spend per UTC day in [p_from, p_to]: the roll-up up to its watermark, the calls
-- after it (through the (user_id, recorded_at) index).  LANGUAGE sql without a SET clause so the
-- planner inlines it into the callers (SECURITY DEFINER functions with a pinned search_path);
-- names are schema-qualified, operators pinned to pg_catalog.
CREATE FUNCTION steward._ai_daily(p_user uuid, p_from date, p_to date)
RETURNS TABLE (day date, cost numeric, input_tokens bigint, output_tokens bigint, calls bigint)
LANGUAGE sql STABLE
AS $$
    SELECT d.day, d.cost, d.input_tokens, d.output_tokens, d.calls
      FROM steward.ai_usage_daily d
     WHERE d.user_id OPERATOR(pg_catalog.=) p_user AND d.day OPERATOR(pg_catalog.>=) p_from
       AND d.day OPERATOR(pg_catalog.<=) LEAST(p_to, coalesce((SELECT r.rolled_through FROM steward.ai_usage_rollup r), '-infinity'::date))
    UNION ALL
    SELECT (u.recorded_at AT TIME ZONE 'UTC')::date, pg_catalog.sum(u.cost), pg_catalog.sum(u.input_tokens)::bigint,
           pg_catalog.sum(u.output_tokens)::bigint, pg_catalog.count(*)
      FROM steward.ai_usage u
     WHERE u.user_id OPERATOR(pg_catalog.=) p_user
       AND u.recorded_at OPERATOR(pg_catalog.>=)
           ((GREATEST(p_from, coalesce((SELECT r.rolled_through FROM steward.ai_usage_rollup r) OPERATOR(pg_catalog.+) 1, p_from)))::timestamp
            AT TIME ZONE 'UTC')
       AND u.recorded_at OPERATOR(pg_catalog.<) (((p_to OPERATOR(pg_catalog.+) 1))::timestamp AT TIME ZONE 'UTC')
     GROUP BY 1
$$;

-- Record one model call.  user_id defaults to the caller; an end user records only for
-- themselves (42501), the service role and admins for anyone.  The cost is computed here from
-- the catalogue, never taken from the caller; an unknown model or negative token counts are
-- 22023 and nothing is stored.  A request_id already recorded for that user returns the first
-- row (no second row, no second charge).
CREATE FUNCTION steward.record_ai_usage(
    model text, input_tokens bigint, output_tokens bigint, user_id uuid DEFAULT NULL,
    organization_id uuid DEFAULT NULL, request_id text DEFAULT NULL
) RETURNS steward.ai_usage
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_caller uuid := steward.caller_uuid();
    v_user uuid := coalesce(record_ai_usage.user_id, v_caller);
    v_cost numeric;
    r steward.ai_usage;
    b record;
    v_today date;
    v_week date;
    v_month date;
    v_spent record;
BEGIN
    IF pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only')::boolean THEN
        PERFORM steward._require_writable();
    END IF;
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'record_ai_usage needs a user' USING ERRCODE = '42501',
              HINT = 'Call it with a user''s JWT, or pass user_id as the service role.';
    END IF;
    -- The common case (a user's own call) needs no role look-up.
    IF (v_user IS DISTINCT FROM v_caller OR record_ai_usage.organization_id IS NOT NULL) AND NOT steward._caller_config_admin() THEN
        IF v_user IS DISTINCT FROM v_caller THEN
            RAISE EXCEPTION 'permission denied to record usage for another user' USING ERRCODE = '42501';
        END IF;
        IF NOT steward._is_org_member(record_ai_usage.organization_id, v_user) THEN
            RAISE EXCEPTION 'permission denied to record usage for an organisation you are not a member of' USING ERRCODE = '42501';
        END IF;
    END IF;
    IF record_ai_usage.request_id IS NOT NULL AND length(record_ai_usage.request_id) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'request_id must be 1 to 200 characters' USING ERRCODE = '22023',
              DETAIL = format('got %s characters', length(record_ai_usage.request_id));
    END IF;
    IF record_ai_usage.input_tokens > 1000000000000 OR record_ai_usage.output_tokens > 1000000000000 THEN
        RAISE EXCEPTION 'token counts above 10^12 are not a model call' USING ERRCODE = '22023',
              DETAIL = format('got %s input and %s output tokens', record_ai_usage.input_tokens, record_ai_usage.output_tokens);
    END IF;
    -- Validates the model and the token counts (22023).
    v_cost := steward.calculate_cost(record_ai_usage.input_tokens, record_ai_usage.output_tokens, record_ai_usage.model);
    -- budgetEnforcement (a setting, off by default): a call that would take the user's spend
    -- of the current day, week or month past the budget is refused with 54000 and nothing is
    -- stored, so a server can refuse the model call before making it.  The budget is the
    -- stricter of the effective one and the one the database and organisation layers impose
    -- (a user's own configuration lowers it, never raises or removes it).  One decision per
    -- user at a time; a request already recorded is returned.
    IF EXISTS (SELECT 1 FROM steward.settings s
                WHERE s.key OPERATOR(pg_catalog.=) 'budgetEnforcement' AND (s.value #>> '{}')::numeric > 0) THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_steward ai budget'), pg_catalog.hashtext(v_user::text));
        IF record_ai_usage.request_id IS NOT NULL THEN
            SELECT * INTO r FROM steward.ai_usage u
             WHERE u.user_id OPERATOR(pg_catalog.=) v_user AND u.request_id OPERATOR(pg_catalog.=) record_ai_usage.request_id;
            IF FOUND THEN
                RETURN r;
            END IF;
        END IF;
        v_today := (now() AT TIME ZONE 'UTC')::date;
        v_week := steward._ai_period_start('week', v_today);
        v_month := steward._ai_period_start('month', v_today);
        b := steward._ai_enforced_budgets(v_user);
        SELECT coalesce(sum(d.cost) FILTER (WHERE d.day = v_today), 0) AS day,
               coalesce(sum(d.cost) FILTER (WHERE d.day >= v_week), 0) AS week,
               coalesce(sum(d.cost) FILTER (WHERE d.day >= v_month), 0) AS month
          INTO v_spent
          FROM steward._ai_daily(v_user, least(v_week, v_month), v_today) d;
        IF (b.daily > 0 AND v_spent.day + v_cost > b.daily)
           OR (b.weekly > 0 AND v_spent.week + v_cost > b.weekly)
           OR (b.monthly > 0 AND v_spent.month + v_cost > b.monthly) THEN
            RAISE EXCEPTION 'AI budget exceeded: the call is not recorded' USING ERRCODE = '54000',
                  DETAIL = format('this call costs %s; %s', v_cost, concat_ws('; ',
                      CASE WHEN b.daily > 0 AND v_spent.day + v_cost > b.daily
                           THEN format('daily budget %s, spent %s today', b.daily, v_spent.day) END,
                      CASE WHEN b.weekly > 0 AND v_spent.week + v_cost > b.weekly
                           THEN format('weekly budget %s, spent %s this week', b.weekly, v_spent.week) END,
                      CASE WHEN b.monthly > 0 AND v_spent.month + v_cost > b.monthly
                           THEN format('monthly budget %s, spent %s this month', b.monthly, v_spent.month) END)),
                  HINT = 'Raise costBudget in the effective AI configuration, or wait for the next period (UTC); an admin can switch off the budgetEnforcement setting.';
        END IF;
    END IF;
    INSERT INTO steward.ai_usage (user_id, organization_id, model, input_tokens, output_tokens, cost, request_id, recorded_by)
    VALUES (v_user, record_ai_usage.organization_id, record_ai_usage.model, record_ai_usage.input_tokens,
            record_ai_usage.output_tokens, v_cost, record_ai_usage.request_id,
            -- caller_id() is the JWT subject when there is one: no second look-up then.
            coalesce(v_caller::text, steward.caller_id()))
    ON CONFLICT (user_id, request_id) DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        -- That request id is recorded already (earlier, or by a concurrent call): its row is the answer.
        SELECT * INTO r FROM steward.ai_usage u
         WHERE u.user_id OPERATOR(pg_catalog.=) v_user AND u.request_id OPERATOR(pg_catalog.=) record_ai_usage.request_id;
    END IF;
    RETURN r;
END
$$;

-- Whether the application's configuration tables in p_schema are still plain tables whose
-- columns are of built-in types (or enums, domains over built-in types, superusers' types):
-- SECURITY DEFINER code reads them as the extension's owner, and a view, a rule or a type of
-- the schema owner's would run that role's code with those rights.  (install_train_schema checked this when it registered the schema; this holds it
-- on every read.)
CREATE FUNCTION steward._train_tables_plain(p_schema name) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) OPERATOR(pg_catalog.=) 2
           AND bool_and(c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[]) AND NOT c.relhasrules
                        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                          JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
                                         WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                                           AND NOT a.attisdropped AND t.oid OPERATOR(pg_catalog.>=) 16384
                                           -- enums, domains over built-in types and types of superusers'
                                           -- (extensions such as citext) run nobody else's code
                                           AND t.typtype OPERATOR(pg_catalog.<>) 'e'
                                           AND NOT (t.typtype OPERATOR(pg_catalog.=) 'd' AND t.typbasetype OPERATOR(pg_catalog.<) 16384)
                                           AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) t.typowner)))
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE n.nspname OPERATOR(pg_catalog.=) p_schema
       AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['ai_configurations', 'organization_members']::name[])
$$;

-- Whether the user is a member of the organisation (with p_role: in that role), from the
-- application's organization_members once install_train_schema has created it.
CREATE FUNCTION steward._is_org_member(p_org uuid, p_user uuid, p_role text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v boolean;
BEGIN
    IF v_schema IS NULL OR NOT steward._train_tables_plain(v_schema) THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.organization_members m
                                    WHERE m.organization_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2
                                      AND ($3 IS NULL OR m.role::text OPERATOR(pg_catalog.=) $3))', v_schema)
       INTO v USING p_org, p_user, p_role;
    RETURN v;
END
$$;

-- A number from a configuration document: a JSON number in [0, 10^15], else NULL.  Rows the
-- validator never saw (an adopted application table, a restore with triggers off) may hold
-- anything, and one bad row must not stop every user's check or status.
CREATE FUNCTION steward._doc_number(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.jsonb_typeof(v) OPERATOR(pg_catalog.=) 'number'
                THEN CASE WHEN (v::text)::numeric BETWEEN 0 AND 1e15 THEN (v::text)::numeric END END
$$;

-- The database layer's AI configuration over the defaults (no user, no organisation).
CREATE FUNCTION steward._ai_database_config() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT steward._resolve_layers('ai_config',
               ARRAY[(SELECT o.document FROM steward.config_overrides o WHERE o.kind OPERATOR(pg_catalog.=) 'ai_config')])
$$;

-- The budgets of the user's effective AI configuration (organisation budgets apply), and its
-- alert thresholds (shares of the budget in (0, 100], distinct, ascending, at most 20).  The
-- application's tables are read as this function's owner only while they are plain tables
-- (steward._train_tables_plain); otherwise the database layer alone answers.
CREATE FUNCTION steward._ai_budgets(p_user uuid, OUT daily numeric, OUT weekly numeric, OUT monthly numeric, OUT thresholds numeric[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- PL/pgSQL, not SQL: its plans are kept for the session (ai_budget_status runs it per call).
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    b jsonb;
BEGIN
    IF v_schema IS NOT NULL AND NOT steward._train_tables_plain(v_schema) THEN
        b := steward._ai_database_config() -> 'costBudget';
    ELSE
        b := steward.effective_ai_config(p_user) -> 'costBudget';
    END IF;
    daily := steward._doc_number(b -> 'dailyBudget');
    weekly := steward._doc_number(b -> 'weeklyBudget');
    monthly := steward._doc_number(b -> 'monthlyBudget');
    thresholds := coalesce((SELECT array_agg(x.t ORDER BY x.t)
                              FROM (SELECT y.t
                                      FROM (SELECT DISTINCT steward._doc_number(e) AS t
                                              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(b -> 'alertThresholds') = 'array'
                                                                             THEN b -> 'alertThresholds' ELSE '[]' END) e) y
                                     WHERE y.t > 0 AND y.t <= 100
                                     ORDER BY y.t LIMIT 20) x), '{}');
END
$$;

-- The budgets enforcement applies, per period the smallest positive one of: the effective
-- configuration's, and each budget a database or organisation row sets (the defaults' when no
-- such row sets one).  A user's own row can lower a budget, not lift it; and no organisation
-- (one the user administers, say) lifts the database's or another organisation's.
CREATE FUNCTION steward._ai_enforced_budgets(p_user uuid, OUT daily numeric, OUT weekly numeric, OUT monthly numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e record := steward._ai_budgets(p_user);
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v_plain boolean := v_schema IS NULL OR steward._train_tables_plain(v_schema);
    d jsonb := steward._resolve_layers('ai_config', '{}') -> 'costBudget';
    i record;
BEGIN
    -- The database and organisation rows (the database row alone when the application's
    -- tables are not plain: they are then never read here).
    SELECT min(x.d) FILTER (WHERE x.d > 0) AS d, min(x.w) FILTER (WHERE x.w > 0) AS w, min(x.m) FILTER (WHERE x.m > 0) AS m
      INTO i
      FROM (SELECT steward._doc_number(y.doc #> '{costBudget,dailyBudget}') AS d,
                   steward._doc_number(y.doc #> '{costBudget,weeklyBudget}') AS w,
                   steward._doc_number(y.doc #> '{costBudget,monthlyBudget}') AS m
              FROM (SELECT r.configuration AS doc FROM steward._ai_config_rows(p_user) r
                     WHERE v_plain AND r.source OPERATOR(pg_catalog.<>) 'user'
                    UNION ALL
                    SELECT o.document FROM steward.config_overrides o
                     WHERE NOT v_plain AND o.kind OPERATOR(pg_catalog.=) 'ai_config') y) x;
    daily := steward._ai_stricter(e.daily, coalesce(i.d, steward._doc_number(d -> 'dailyBudget')));
    weekly := steward._ai_stricter(e.weekly, coalesce(i.w, steward._doc_number(d -> 'weeklyBudget')));
    monthly := steward._ai_stricter(e.monthly, coalesce(i.m, steward._doc_number(d -> 'monthlyBudget')));
END
$$;

CREATE FUNCTION steward._ai_stricter(a numeric, b numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN a > 0 AND b > 0 THEN least(a, b) WHEN a > 0 THEN a WHEN b > 0 THEN b END $$;

CREATE FUNCTION steward._ai_period_start(p_period text, p_day date) RETURNS date
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT date_trunc(p_period, p_day::timestamp)::date $$;

-- Spend per period bucket in [from_date, to_date] (UTC days; defaults: the last 30 days, 12
-- weeks or 12 months), with the budget of that period and the share of it used.
CREATE FUNCTION steward.ai_spending(user_id uuid DEFAULT NULL, period text DEFAULT 'day', from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (period_start date, spend numeric, calls bigint, input_tokens bigint, output_tokens bigint, budget numeric, share_used numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_admin boolean := steward._caller_config_admin();
    v_user uuid := coalesce(ai_spending.user_id, steward.caller_uuid());
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_to date;
    v_from date;
    b record;
    v_budget numeric;
BEGIN
    IF period IS NULL OR period NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'period must be day, week or month' USING ERRCODE = '22023',
              DETAIL = format('got %s', coalesce(quote_literal(period), 'NULL'));
    END IF;
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'ai_spending needs a user' USING ERRCODE = '42501';
    END IF;
    IF NOT v_admin AND v_user IS DISTINCT FROM steward.caller_uuid() THEN
        RAISE EXCEPTION 'permission denied for the spending of another user' USING ERRCODE = '42501';
    END IF;
    v_to := coalesce(to_date, v_today);
    v_from := coalesce(from_date, CASE period WHEN 'day' THEN v_to - 29
                                              WHEN 'week' THEN steward._ai_period_start('week', v_to) - 77
                                              ELSE (steward._ai_period_start('month', v_to) - interval '11 months')::date END);
    IF v_from > v_to OR v_to - v_from > 3660 THEN
        RAISE EXCEPTION 'invalid range' USING ERRCODE = '22023',
              DETAIL = format('from %s to %s: from must not be after to, at most 3660 days apart', v_from, v_to);
    END IF;
    b := steward._ai_budgets(v_user);
    v_budget := CASE period WHEN 'day' THEN b.daily WHEN 'week' THEN b.weekly ELSE b.monthly END;
    RETURN QUERY
    SELECT g.s::date,
           coalesce(sum(d.cost), 0)::numeric,
           coalesce(sum(d.calls), 0)::bigint,
           coalesce(sum(d.input_tokens), 0)::bigint,
           coalesce(sum(d.output_tokens), 0)::bigint,
           v_budget,
           CASE WHEN v_budget > 0 THEN round(coalesce(sum(d.cost), 0) / v_budget, 4) END
      FROM generate_series(steward._ai_period_start(period, v_from)::timestamp, v_to::timestamp,
                           CASE period WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '1 week' ELSE interval '1 month' END) g(s)
      LEFT JOIN steward._ai_daily(v_user, v_from, v_to) d
        ON steward._ai_period_start(period, d.day) = g.s::date
     GROUP BY g.s
     ORDER BY g.s;
END
$$;

-- The current day, week and month: spend, budget, share used, the highest alert threshold
-- crossed (from costBudget.alertThresholds) and whether the budget is exceeded.
CREATE FUNCTION steward.ai_budget_status(user_id uuid DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_admin boolean := steward._caller_config_admin();
    v_user uuid := coalesce(ai_budget_status.user_id, steward.caller_uuid());
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_week date := steward._ai_period_start('week', (now() AT TIME ZONE 'UTC')::date);
    v_month date := steward._ai_period_start('month', (now() AT TIME ZONE 'UTC')::date);
    b record;
    v_d numeric;
    v_w numeric;
    v_m numeric;
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'ai_budget_status needs a user' USING ERRCODE = '42501';
    END IF;
    IF NOT v_admin AND v_user IS DISTINCT FROM steward.caller_uuid() THEN
        RAISE EXCEPTION 'permission denied for the budget of another user' USING ERRCODE = '42501';
    END IF;
    b := steward._ai_budgets(v_user);
    -- At most 37 days (a week may begin in the previous month): roll-up rows and the last days' calls.
    SELECT coalesce(sum(d.cost) FILTER (WHERE d.day = v_today), 0),
           coalesce(sum(d.cost) FILTER (WHERE d.day >= v_week), 0),
           coalesce(sum(d.cost) FILTER (WHERE d.day >= v_month), 0)
      INTO v_d, v_w, v_m
      FROM steward._ai_daily(v_user, least(v_week, v_month), v_today) d;
    RETURN jsonb_build_object(
        'userId', v_user,
        'thresholds', to_jsonb(b.thresholds),
        'day', steward._ai_budget_period(v_d, b.daily, b.thresholds, v_today),
        'week', steward._ai_budget_period(v_w, b.weekly, b.thresholds, v_week),
        'month', steward._ai_budget_period(v_m, b.monthly, b.thresholds, v_month));
END
$$;

CREATE FUNCTION steward._ai_budget_period(p_spend numeric, p_budget numeric, p_thresholds numeric[], p_start date) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'periodStart', p_start,
        'spend', p_spend,
        'budget', p_budget,
        'shareUsed', CASE WHEN p_budget > 0 THEN round(p_spend / p_budget, 4) END,
        'thresholdCrossed', (SELECT max(t) FROM unnest(p_thresholds) t WHERE p_budget > 0 AND p_spend >= t * p_budget),
        'overBudget', coalesce(p_budget IS NOT NULL AND p_spend > p_budget, false))
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_ai_models',        'steward.ai_models()',                                    'stable',   '{steward_admin,service_role,authenticated}'),
    ('record_ai_usage',      'steward.record_ai_usage(text,bigint,bigint,uuid,uuid,text)', 'volatile', '{steward_admin,service_role,authenticated}'),
    ('get_ai_spending',      'steward.ai_spending(uuid,text,date,date)',              'stable',   '{steward_admin,service_role,authenticated}'),
    ('get_ai_budget_status', 'steward.ai_budget_status(uuid)',                        'stable',   '{steward_admin,service_role,authenticated}');

INSERT INTO steward.setting_defaults (key, value, min_value, max_value, description) VALUES
    ('budgetEnforcement', '0', 0, 1, 'steward.record_ai_usage() refuses (54000) a call that would take a user past the day''s, week''s or month''s budget of the effective AI configuration (1), or records it anyway (0)');

-- ---------------------------------------------------------------------------------------
-- Budget alerts: the current day's, week's and month's spend of every user with calls in
-- them and a budget, with the thresholds of the user's effective configuration.  Read by
-- check_alerts() (the ai_budget rule, src/alerts/rules.rs), not by the health report.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward._ai_budget_usage() RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_week date := steward._ai_period_start('week', (now() AT TIME ZONE 'UTC')::date);
    v_month date := steward._ai_period_start('month', (now() AT TIME ZONE 'UTC')::date);
    v_through date := coalesce((SELECT r.rolled_through FROM steward.ai_usage_rollup r), '-infinity'::date);
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    -- Users with layers of their own (an active configuration, an organisation): their
    -- budgets are resolved one by one; everyone else's are the database layer's, resolved once.
    v_layered text := 'SELECT NULL::uuid AS user_id WHERE false';
    v_shared record := steward._ai_budgets(NULL);
    v_out jsonb;
BEGIN
    IF v_schema IS NOT NULL THEN
        v_layered := CASE WHEN steward._train_tables_plain(v_schema)
                          THEN format('SELECT c.user_id FROM %1$I.ai_configurations c WHERE c.user_id IS NOT NULL AND c.is_active
                                       UNION SELECT m.user_id FROM %1$I.organization_members m', v_schema)
                          -- Not plain tables: never read here, and _ai_budgets answers from the database layer.
                          ELSE 'SELECT NULL::uuid AS user_id WHERE false' END;
    END IF;
    -- Every user at once, with _ai_daily's split: roll-up rows up to the watermark (through
    -- the roll-up's day index), the calls after it (through ai_usage's time index).
    EXECUTE format($q$
        WITH days AS (
            SELECT d.user_id, d.day, d.cost FROM steward.ai_usage_daily d
             WHERE d.day >= least($2, $3) AND d.day <= least($1, $5)
            UNION ALL
            SELECT u.user_id, (u.recorded_at AT TIME ZONE 'UTC')::date, u.cost FROM steward.ai_usage u
             WHERE u.recorded_at >= (greatest(least($2, $3), $5 + 1)::timestamp AT TIME ZONE 'UTC')
               AND u.recorded_at < (($1 + 1)::timestamp AT TIME ZONE 'UTC')
        ), spend AS (
            SELECT x.user_id,
                   coalesce(sum(x.cost) FILTER (WHERE x.day = $1), 0) AS d,
                   coalesce(sum(x.cost) FILTER (WHERE x.day >= $2), 0) AS w,
                   coalesce(sum(x.cost) FILTER (WHERE x.day >= $3), 0) AS m
              FROM days x
             GROUP BY x.user_id
        ), layered AS (%s)
        SELECT coalesce(jsonb_agg(jsonb_build_object('user_id', sp.user_id, 'period', p.period, 'period_start', p.start,
                                                     'spend', p.spend, 'budget', p.budget, 'thresholds', to_jsonb(b.thresholds))
                                  ORDER BY sp.user_id, p.ord), '[]')
          FROM spend sp
          LEFT JOIN (SELECT DISTINCT l.user_id FROM layered l) l ON l.user_id = sp.user_id
          CROSS JOIN LATERAL (SELECT o.daily, o.weekly, o.monthly, o.thresholds FROM steward._ai_budgets(sp.user_id) o
                               WHERE l.user_id IS NOT NULL
                              UNION ALL
                              SELECT $4, $6, $7, $8 WHERE l.user_id IS NULL) b
          CROSS JOIN LATERAL (VALUES (1, 'day', $1, sp.d, b.daily), (2, 'week', $2, sp.w, b.weekly),
                                     (3, 'month', $3, sp.m, b.monthly)) p(ord, period, start, spend, budget)
         WHERE p.spend > 0 AND p.budget > 0
        $q$, v_layered)
       INTO v_out USING v_today, v_week, v_month, v_shared.daily, v_through, v_shared.weekly, v_shared.monthly, v_shared.thresholds;
    RETURN v_out;
END
$$;

-- ---------------------------------------------------------------------------------------
-- API key rotation (issue #17 item 5).  A configuration's key is as old as its vault entry
-- (steward.api_key_vault.created_at: when that key was first stored for that owner); the
-- schedule is the row's apiKeys.rotationSchedule, else the database layer's, else manual.
-- monthly: due after 30 days, quarterly: after 90; manual: never.  Active configurations
-- with a primary key only.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION steward._ai_keys_due_rows(p_config_id uuid DEFAULT NULL)
RETURNS TABLE (config_id uuid, user_id uuid, organization_id uuid, config_name text, rotation_schedule text,
               key_version integer, key_stored_at timestamptz, due_at timestamptz, days_overdue numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v_default text := (SELECT o.document #>> '{apiKeys,rotationSchedule}' FROM steward.config_overrides o WHERE o.kind = 'ai_config');
BEGIN
    IF v_schema IS NULL THEN
        RETURN;
    END IF;
    IF NOT steward._train_tables_plain(v_schema) THEN
        RAISE WARNING 'pg_steward: API key ages not read: %.ai_configurations is not a plain table of built-in types', quote_ident(v_schema);
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT c.id, c.user_id, c.organization_id, c.config_name::text, s.schedule,
               CASE WHEN steward._doc_number(c.configuration #> '{apiKeys,keyVersion}') <= 2147483647
                    THEN floor(steward._doc_number(c.configuration #> '{apiKeys,keyVersion}'))::integer END,
               v.created_at, v.created_at + s.every,
               round((extract(epoch FROM now() - (v.created_at + s.every)) / 86400)::numeric, 1)
          FROM %I.ai_configurations c
         CROSS JOIN LATERAL (SELECT x.schedule, CASE x.schedule WHEN 'monthly' THEN interval '30 days'
                                                                WHEN 'quarterly' THEN interval '90 days' END AS every
                               FROM (SELECT coalesce(c.configuration #>> '{apiKeys,rotationSchedule}', $1, 'manual') AS schedule) x) s
          JOIN steward.api_key_vault v
            ON v.token = c.configuration #>> '{apiKeys,primaryKey}'
           AND v.owner_kind = CASE WHEN c.user_id IS NOT NULL THEN 'user' ELSE 'organization' END
           AND v.owner_id = coalesce(c.user_id, c.organization_id)
         WHERE c.is_active AND s.every IS NOT NULL AND v.created_at + s.every <= now()
           AND ($2 IS NULL OR c.id = $2)
         ORDER BY v.created_at, c.id
        $q$, v_schema) USING v_default, p_config_id;
END
$$;

-- The check's source: the same rows as jsonb (names for the alert's text).
CREATE FUNCTION steward._ai_keys_due() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'config_id', k.config_id, 'config_name', k.config_name,
               'owner', CASE WHEN k.user_id IS NOT NULL THEN 'user ' || k.user_id ELSE 'organisation ' || k.organization_id END,
               'rotation_schedule', k.rotation_schedule, 'key_stored_at', k.key_stored_at, 'due_at', k.due_at,
               'days_overdue', k.days_overdue)), '[]')
      FROM steward._ai_keys_due_rows() k
$$;

-- Configurations whose key is due for rotation: admins and the service role see all, a user
-- their own and those of the organisations they are an admin of.
CREATE FUNCTION steward.ai_key_rotation_due()
RETURNS TABLE (config_id uuid, user_id uuid, organization_id uuid, config_name text, rotation_schedule text,
               key_version integer, key_stored_at timestamptz, due_at timestamptz, days_overdue numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_admin boolean := steward._caller_config_admin();
    v_caller uuid := steward.caller_uuid();
BEGIN
    IF NOT v_admin AND v_caller IS NULL THEN
        RAISE EXCEPTION 'ai_key_rotation_due needs a user' USING ERRCODE = '42501',
              HINT = 'Call it with a user''s JWT, or as an admin.';
    END IF;
    RETURN QUERY
    SELECT k.* FROM steward._ai_keys_due_rows() k
     WHERE v_admin OR k.user_id = v_caller
        OR (k.organization_id IS NOT NULL AND steward._is_org_member(k.organization_id, v_caller, 'admin'));
END
$$;

-- After a rotation (rotate_api_key): the configuration's open api_key_rotation_due alert is
-- resolved — only when this very transaction stored the configuration's current primary key
-- in the vault (so the caller wrote that row: row-level security let it) and the key is no
-- longer due.  Anything else does nothing; check_alerts() resolves what it finds rotated.
CREATE FUNCTION steward._api_key_rotated(p_config_id uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a steward.performance_alerts;
    v_schema name := (SELECT t.schema_name FROM steward.train_schema t);
    v_mine boolean;
BEGIN
    IF p_config_id IS NULL OR v_schema IS NULL OR NOT steward._train_tables_plain(v_schema) THEN
        RETURN;
    END IF;
    EXECUTE format($q$
        SELECT steward._xid_is_mine(v.xmin::text)
          FROM %I.ai_configurations c
          JOIN steward.api_key_vault v
            ON v.token = c.configuration #>> '{apiKeys,primaryKey}'
           AND v.owner_kind = CASE WHEN c.user_id IS NOT NULL THEN 'user' ELSE 'organization' END
           AND v.owner_id = coalesce(c.user_id, c.organization_id)
         WHERE c.id = $1
        $q$, v_schema) INTO v_mine USING p_config_id;
    IF NOT coalesce(v_mine, false) OR EXISTS (SELECT 1 FROM steward._ai_keys_due_rows(p_config_id)) THEN
        RETURN;
    END IF;
    FOR a IN
        UPDATE steward.performance_alerts p
           SET resolved_at = now(), resolved_by = steward.caller_uuid(),
               resolution_notes = 'Resolved: the API key was rotated.'
         WHERE p.fingerprint OPERATOR(pg_catalog.=) ('api_key_rotation_due:configuration ' || p_config_id)
           AND p.resolved_at IS NULL
        RETURNING p.*
    LOOP
        PERFORM steward._alert_notify('resolved', a);
    END LOOP;
END
$$;

INSERT INTO steward.facade_functions (seed_name, target, volatility, grant_to) VALUES
    ('get_ai_key_rotation_due', 'steward.ai_key_rotation_due()', 'stable', '{steward_admin,service_role,authenticated}');
