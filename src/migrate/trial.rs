//! `migration_dry_run`: observed, not guessed.  The up script and then the down script run in a
//! subtransaction that is always rolled back, with the caller's own rights, in the caller's
//! session.  Per statement: the relation locks it newly took (from pg_locks of this backend),
//! the relations whose storage it replaced (relfilenode changed: a rewrite, or a TRUNCATE), and
//! its duration.  Statements that cannot run in a transaction block are reported as checked
//! statically only.  Reversibility: the touched relations' catalog rows after the down script
//! are compared with the same rows once everything is rolled back (the state before the up
//! script), by qualified name.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::PgTryBuilder;

use super::parse;
use crate::common::executor::Failure;

type Row = (String, i32, String, String, Option<f64>, Vec<String>, Vec<String>, Option<String>, Option<String>);

fn readable_mode(mode: &str) -> String {
    // "AccessExclusiveLock" -> "ACCESS EXCLUSIVE"
    let base = mode.strip_suffix("Lock").unwrap_or(mode);
    let mut out = String::new();
    for (i, c) in base.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn locks(client: &SpiClient<'_>) -> Result<HashSet<(u32, String)>, pgrx::spi::SpiError> {
    let rows = client.select(
        "SELECT l.relation, l.mode FROM pg_catalog.pg_locks l
          WHERE l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND l.locktype OPERATOR(pg_catalog.=) 'relation'
            AND l.relation OPERATOR(pg_catalog.>=) 16384::oid AND l.granted
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                             WHERE c.oid OPERATOR(pg_catalog.=) l.relation AND n.nspname OPERATOR(pg_catalog.=) 'pg_toast')
            AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())",
        None,
        &[],
    )?;
    let mut out = HashSet::new();
    for r in rows {
        if let (Some(rel), Some(mode)) = (r.get::<pg_sys::Oid>(1)?, r.get::<String>(2)?) {
            out.insert((rel.to_u32(), mode));
        }
    }
    Ok(out)
}

fn filenodes(client: &SpiClient<'_>) -> Result<HashMap<u32, u32>, pgrx::spi::SpiError> {
    let rows = client.select(
        "SELECT c.oid, c.relfilenode FROM pg_catalog.pg_class c
          WHERE c.oid OPERATOR(pg_catalog.>=) 16384::oid AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m,p}'::\"char\"[])",
        None,
        &[],
    )?;
    let mut out = HashMap::new();
    for r in rows {
        if let (Some(o), Some(f)) = (r.get::<pg_sys::Oid>(1)?, r.get::<pg_sys::Oid>(2)?) {
            out.insert(o.to_u32(), f.to_u32());
        }
    }
    Ok(out)
}

fn rel_name(client: &SpiClient<'_>, oid: u32) -> String {
    client
        .select(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid OPERATOR(pg_catalog.=) $1",
            Some(1),
            &[pg_sys::Oid::from_u32(oid).into()],
        )
        .ok()
        .and_then(|r| r.first().get_one::<String>().ok().flatten())
        .unwrap_or_else(|| format!("relation {oid} (dropped)"))
}

/// Catalog rows of the given relations, keyed by qualified name (relations that do not exist
/// are simply absent).
fn fingerprint(client: &SpiClient<'_>, oids: &[u32]) -> Result<BTreeMap<String, String>, pgrx::spi::SpiError> {
    let list: Vec<pg_sys::Oid> = oids.iter().map(|o| pg_sys::Oid::from_u32(*o)).collect();
    let rows = client.select(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
                c.relkind::text || ' ' ||
                coalesce((SELECT pg_catalog.string_agg(pg_catalog.format('%I %s%s%s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                                                                 CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                                                 coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')),
                                                  ', ' ORDER BY a.attname)
                            FROM pg_catalog.pg_attribute a
                            LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid AND d.adnum OPERATOR(pg_catalog.=) a.attnum
                           WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped), '') || ' | ' ||
                coalesce((SELECT pg_catalog.string_agg(co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid), ', ' ORDER BY co.conname)
                            FROM pg_catalog.pg_constraint co WHERE co.conrelid OPERATOR(pg_catalog.=) c.oid), '') || ' | ' ||
                coalesce((SELECT pg_catalog.string_agg(pg_catalog.pg_get_indexdef(i.indexrelid), ', ' ORDER BY 1)
                            FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid), '')
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          WHERE c.oid OPERATOR(pg_catalog.=) ANY ($1) AND n.nspname OPERATOR(pg_catalog.<>) 'pg_toast'",
        None,
        &[list.into()],
    )?;
    let mut out = BTreeMap::new();
    for r in rows {
        if let (Some(name), Some(def)) = (r.get::<String>(1)?, r.get::<String>(2)?) {
            out.insert(name, def);
        }
    }
    Ok(out)
}

struct Sub {
    context: pg_sys::MemoryContext,
    owner: pg_sys::ResourceOwner,
}

impl Sub {
    fn begin() -> Sub {
        // SAFETY: the PL/pgSQL pattern: remember the memory context and resource owner, start an
        // internal subtransaction, and go on in the caller's memory context.
        unsafe {
            let context = pg_sys::CurrentMemoryContext;
            let owner = pg_sys::CurrentResourceOwner;
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            pg_sys::MemoryContextSwitchTo(context);
            Sub { context, owner }
        }
    }

    fn rollback(self) {
        // SAFETY: rolls back the subtransaction begun above (errors inside it were caught and
        // flushed), then restores the caller's memory context and resource owner.
        unsafe {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(self.context);
            pg_sys::CurrentResourceOwner = self.owner;
        }
    }
}

/// Run one phase's statements; returns false when a statement failed (the subtransaction is then
/// unusable and the trial stops).
fn phase(
    client: &mut SpiClient<'_>,
    name: &str,
    script: &str,
    rows: &mut Vec<Row>,
    touched: &mut HashSet<u32>,
) -> Result<bool, Failure> {
    let statements = parse::parse(script).map_err(|e| Failure::new("22023", format!("the {name} script does not parse: {}", e.message)))?;
    let mut failed = false;
    for s in &statements {
        let text = s.text(script).to_string();
        if failed {
            rows.push((name.into(), s.no, text, "not run".into(), None, vec![], vec![], None, None));
            continue;
        }
        if super::rules::non_transactional(s.node) {
            rows.push((name.into(), s.no, text, "checked statically only".into(), None, vec![], vec![], None,
                       Some("cannot run inside a transaction block; see migration_check".into())));
            continue;
        }
        if parse::tag(s.node) == Some(pg_sys::NodeTag::T_TransactionStmt) {
            rows.push((name.into(), s.no, text, "refused".into(), None, vec![], vec![], Some("22023".into()),
                       Some("transaction control is not allowed in a migration".into())));
            continue;
        }
        let spi = |e: pgrx::spi::SpiError| Failure::new("XX000", e.to_string());
        let before_locks = locks(client).map_err(spi)?;
        let before_nodes = filenodes(client).map_err(spi)?;
        let started = Instant::now();
        let ran = PgTryBuilder::new(AssertUnwindSafe(|| client.update(&text, None, &[]).map(|_| ()).map_err(|e| Failure::new("XX000", e.to_string()))))
            .catch_others(|e| Err(Failure::from_caught(e)))
            .execute();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match ran {
            Ok(()) => {
                let after_locks = locks(client).map_err(spi)?;
                let after_nodes = filenodes(client).map_err(spi)?;
                let mut new_locks: Vec<(u32, String)> = after_locks.difference(&before_locks).cloned().collect();
                new_locks.sort();
                for (rel, _) in &new_locks {
                    touched.insert(*rel);
                }
                let lock_text: Vec<String> = new_locks.iter().map(|(rel, mode)| format!("{} on {}", readable_mode(mode), rel_name(client, *rel))).collect();
                let mut rewritten: Vec<String> = before_nodes
                    .iter()
                    .filter(|(oid, node)| after_nodes.get(oid).is_some_and(|n| n != *node))
                    .map(|(oid, _)| rel_name(client, *oid))
                    .collect();
                rewritten.sort();
                rows.push((name.into(), s.no, text, "ok".into(), Some((ms * 1000.0).round() / 1000.0), lock_text, rewritten, None, None));
            }
            Err(f) => {
                failed = true;
                rows.push((name.into(), s.no, text, "failed".into(), Some((ms * 1000.0).round() / 1000.0), vec![], vec![],
                           Some(f.sqlstate.clone()), Some(f.message.clone())));
            }
        }
    }
    Ok(!failed)
}

/// `steward._migration_trial(up, down)`: see the module comment.  The last row (phase `check`)
/// says whether the down script restored the catalog.
#[pg_extern(name = "_migration_trial", volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn migration_trial(
    up: &str,
    down: &str,
    lock_timeout_ms: i64,
) -> Result<
    TableIterator<
        'static,
        (
            name!(phase, String),
            name!(statement_no, i32),
            name!(statement, String),
            name!(outcome, String),
            name!(duration_ms, Option<f64>),
            name!(locks, Vec<String>),
            name!(rewritten, Vec<String>),
            name!(sqlstate, Option<String>),
            name!(message, Option<String>),
        ),
    >,
    pgrx::pg_sys::panic::ErrorReport,
> {
    let mut rows: Vec<Row> = Vec::new();
    let result: Result<(), Failure> = Spi::connect_mut(|client| {
        let mut touched: HashSet<u32> = HashSet::new();
        let sub = Sub::begin();
        let inside = PgTryBuilder::new(AssertUnwindSafe(|| -> Result<Option<BTreeMap<String, String>>, Failure> {
            // As migration_apply runs it: its lock timeout, names through "$user", public.
            client
                .update(
                    "SELECT pg_catalog.set_config('lock_timeout', $1, true), pg_catalog.set_config('search_path', '\"$user\", public', true)",
                    None,
                    &[format!("{}ms", lock_timeout_ms.max(0)).into()],
                )
                .map_err(|e| Failure::new("XX000", e.to_string()))?;
            let up_ok = phase(client, "up", up, &mut rows, &mut touched)?;
            if !up_ok {
                return Ok(None);
            }
            let down_ok = phase(client, "down", down, &mut rows, &mut touched)?;
            if !down_ok {
                return Ok(None);
            }
            let oids: Vec<u32> = touched.iter().copied().collect();
            Ok(Some(fingerprint(client, &oids).map_err(|e| Failure::new("XX000", e.to_string()))?))
        }))
        .catch_others(|e| Err(Failure::from_caught(e)))
        .execute();
        sub.rollback();
        let after_down = inside?;
        match after_down {
            None => rows.push(("check".into(), 0, String::new(), "not checked".into(), None, vec![], vec![], None,
                               Some("a statement failed, so reversibility was not checked".into()))),
            Some(after) => {
                let oids: Vec<u32> = touched.iter().copied().collect();
                let before = fingerprint(client, &oids).map_err(|e| Failure::new("XX000", e.to_string()))?;
                let mut differences = Vec::new();
                for (name, def) in &before {
                    match after.get(name) {
                        None => differences.push(format!("{name} is gone after the down script")),
                        Some(d) if d != def => differences.push(format!("{name} differs: before {def}; after down {d}")),
                        _ => {}
                    }
                }
                for name in after.keys() {
                    if !before.contains_key(name) {
                        differences.push(format!("{name} exists after the down script but did not before"));
                    }
                }
                if differences.is_empty() {
                    rows.push(("check".into(), 0, String::new(), "reversible".into(), None, vec![], vec![], None,
                               Some(format!("the down script restores the catalog rows of {} touched relations", before.len()))));
                } else {
                    rows.push(("check".into(), 0, String::new(), "not reversible".into(), None, vec![], vec![], None,
                               Some(differences.join("\n"))));
                }
            }
        }
        Ok(())
    });
    if let Err(f) = result {
        return Err(pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            f.message,
            "pg_steward.migrate",
        ));
    }
    Ok(TableIterator::new(rows))
}
