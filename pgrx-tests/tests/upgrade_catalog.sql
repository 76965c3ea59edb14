-- What pg_steward put into a database, one line per fact, for comparing an upgraded database
-- with a fresh install of the same version (pgrx-tests/tests/upgrade.rs).  OIDs, attnums and
-- creation order differ between the two and are left out; everything a client or the
-- extension itself can observe is in: every member object, each function's full definition
-- (body, arguments, volatility, SECURITY DEFINER, SET clauses, C symbol), privileges and
-- owners, columns, defaults, constraints, indexes, triggers, policies, views, comments, the
-- configuration tables pg_dump keeps, and the rows of the extension's own reference tables.
WITH ext AS (
    SELECT oid, extname, extconfig, extcondition FROM pg_catalog.pg_extension WHERE extname = 'pg_steward'
), member AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rel AS (
    SELECT c.oid, c.oid::regclass::text AS name, c.relkind
      FROM member m JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::regclass AND c.oid = m.objid
), fn AS (
    SELECT p.oid, p.oid::regprocedure::text AS name, p.prokind
      FROM member m JOIN pg_catalog.pg_proc p ON m.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = m.objid
)
SELECT line FROM (
    SELECT 'member ' || pg_catalog.pg_describe_object(classid, objid, objsubid) AS line FROM member
    UNION ALL
    SELECT 'extension config ' || t.c::regclass::text || ' where ' || coalesce(NULLIF(t.w, ''), 'all rows')
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS t(c, w)
    UNION ALL
    SELECT 'schema ' || n.nspname || ' owner ' || n.nspowner::regrole::text || ' acl ' || coalesce(n.nspacl::text, 'default')
      FROM pg_catalog.pg_namespace n WHERE n.nspname = 'steward'
    UNION ALL
    -- Functions: the whole definition, then owner and privileges (pg_get_functiondef refuses aggregates).
    SELECT 'function ' || name || E'\n' ||
           CASE WHEN prokind = 'a' THEN 'aggregate' ELSE pg_catalog.pg_get_functiondef(oid) END ||
           E'\nowner ' || (SELECT proowner::regrole::text || ' acl ' || coalesce(proacl::text, 'default')
                             FROM pg_catalog.pg_proc WHERE pg_proc.oid = fn.oid) ||
           E'\ncomment ' || coalesce(pg_catalog.obj_description(oid, 'pg_proc'), '-')
      FROM fn
    UNION ALL
    SELECT 'relation ' || r.name || ' kind ' || c.relkind::text || ' persistence ' || c.relpersistence::text ||
           ' owner ' || c.relowner::regrole::text || ' acl ' || coalesce(c.relacl::text, 'default') ||
           ' options ' || coalesce(c.reloptions::text, '-') || ' rls ' || c.relrowsecurity || '/' || c.relforcerowsecurity ||
           ' comment ' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '-')
      FROM rel r JOIN pg_catalog.pg_class c ON c.oid = r.oid
    UNION ALL
    -- Columns by name (an upgrade appends a new column; a fresh install may place it elsewhere).
    SELECT 'column ' || r.name || '.' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) ||
           CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
           coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '') ||
           CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END ||
           CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END ||
           coalesce(' collate ' || NULLIF(a.attcollation, 0)::regcollation::text, '') ||
           coalesce(' acl ' || a.attacl::text, '') ||
           coalesce(' comment ' || pg_catalog.col_description(r.oid, a.attnum), '')
      FROM rel r
      JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
    UNION ALL
    SELECT 'constraint ' || r.name || ' ' || co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid)
      FROM rel r JOIN pg_catalog.pg_constraint co ON co.conrelid = r.oid
    UNION ALL
    SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM rel r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(t.oid) || CASE t.tgenabled WHEN 'O' THEN '' ELSE ' enabled ' || t.tgenabled::text END
      FROM rel r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || r.name || ' ' || p.polname || ' cmd ' || p.polcmd::text || ' permissive ' || p.polpermissive ||
           ' roles ' || (SELECT pg_catalog.string_agg(CASE WHEN x = 0 THEN 'public' ELSE x::regrole::text END, ',' ORDER BY 1)
                           FROM pg_catalog.unnest(p.polroles) x) ||
           ' using ' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '-') ||
           ' check ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '-')
      FROM rel r JOIN pg_catalog.pg_policy p ON p.polrelid = r.oid
    UNION ALL
    SELECT 'view ' || r.name || ' ' || pg_catalog.pg_get_viewdef(r.oid)
      FROM rel r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'sequence ' || r.name || ' ' || s.seqtypid::regtype::text || ' ' || s.seqstart || ' ' || s.seqincrement || ' ' ||
           s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
      FROM rel r JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text ||
           coalesce(' values ' || (SELECT pg_catalog.string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                     FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '')
      FROM member m JOIN pg_catalog.pg_type t ON m.classid = 'pg_catalog.pg_type'::regclass AND t.oid = m.objid
) x
ORDER BY line;
