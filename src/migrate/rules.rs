//! The safety analysis of a migration: each statement's parse tree (parse.rs) is matched
//! against the rules below, every relation it touches is looked up in the live catalog (its
//! size on disk, its row estimate, whether it is used), and each finding says the lock the
//! statement needs, whether it rewrites or scans the table, a risk weighed by the table's
//! size, and the safe pattern to use instead.
//!
//! The script is read as `migration_apply` runs it: one transaction (unless it has its own
//! `BEGIN`/`COMMIT`), names resolved through `search_path = "$user", public` or the script's
//! own `SET search_path`.  Tables the script itself creates are new and empty: no lock or
//! rewrite finding is reported for them.  A finding is silenced for one statement by a
//! comment in it (or right before it): `-- steward:ignore rule_id[, rule_id ...]`.

use crate::common::truncate_with_ellipsis as truncate;
use std::collections::{HashMap, HashSet};
use std::ffi::CString;

use pgrx::prelude::*;
use serde::Serialize;

use super::parse::{self, cstr, names, nodes, range_var, string_value, tag, RawStatement};

/// Every rule, with the safe pattern it proposes (README "Migrations" lists them).
pub const RULES: &[(&str, &str)] = &[
    ("index_not_concurrent", "CREATE INDEX CONCURRENTLY (in a migration of its own): writes go on while it builds"),
    ("drop_index_not_concurrent", "DROP INDEX CONCURRENTLY (in a migration of its own)"),
    ("volatile_default", "ADD COLUMN without the default (or with a constant one), then fill existing rows in batches and SET DEFAULT"),
    ("set_not_null", "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; then SET NOT NULL uses the validated check without a scan"),
    ("foreign_key_validated", "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in a later migration"),
    ("check_validated", "ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in a later migration"),
    ("unique_without_index", "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE/PRIMARY KEY USING INDEX"),
    ("column_type_rewrite", "add a new column of the new type, backfill in batches, switch reads and writes, drop the old column"),
    ("rename_column", "add the new column (or a view with the new name), move the application over, then drop the old name"),
    ("rename_table", "rename, then create a compatibility view with the old name until every client uses the new one"),
    ("drop_table", "two phases: stop using the table (rename or revoke) in one release, drop it in a later one after a backup"),
    ("drop_column", "two phases: stop reading and writing the column in one release, drop it in a later one"),
    ("truncate", "delete in batches with a WHERE clause, or archive first (steward.retention_set)"),
    ("unbounded_delete", "a WHERE clause that names the rows, in batches of a few thousand"),
    ("unbounded_update", "a WHERE clause that names the rows, in batches of a few thousand"),
    ("int_primary_key", "bigint (GENERATED ALWAYS AS IDENTITY): an int key runs out at 2 147 483 647"),
    ("varchar_length", "text with a CHECK (length(col) <= n): changing a CHECK never rewrites the table"),
    ("char_type", "text (char(n) pads with spaces and is never faster)"),
    ("timestamp_without_tz", "timestamptz (timestamp without time zone stores wall-clock readings, not instants)"),
    ("missing_lock_timeout", "SET lock_timeout = '5s' first (migration_apply sets it from the migrationLockTimeoutMs setting)"),
    ("multiple_locks_in_transaction", "one table per migration: each strong lock is held until the transaction commits"),
    ("concurrently_in_transaction", "run CONCURRENTLY statements alone, outside any transaction block (a migration of their own)"),
    ("transaction_control", "leave out BEGIN/COMMIT: migration_apply runs each migration in one transaction"),
];

pub fn safe_pattern(rule: &str) -> &'static str {
    RULES.iter().find(|(r, _)| *r == rule).map(|(_, p)| *p).unwrap_or("")
}

/// One row of `migration_check`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub risk: &'static str,
    pub statement_no: i32,
    pub statement: String,
    pub relation: Option<String>,
    pub relation_bytes: Option<i64>,
    pub row_estimate: Option<i64>,
    pub lock_level: Option<&'static str>,
    pub rewrites: bool,
    pub scans: bool,
    pub message: String,
    pub safe_pattern: &'static str,
}

/// What the whole script is, besides its findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Shape {
    pub statements: i32,
    /// Statements that cannot run in a transaction block (CONCURRENTLY, VACUUM, ...): their numbers.
    pub non_transactional: Vec<i32>,
    /// BEGIN/COMMIT/ROLLBACK/SAVEPOINT statements: their numbers.
    pub transaction_control: Vec<i32>,
    /// SET statements (kept when a non-transactional statement runs alone): their numbers.
    pub settings: Vec<i32>,
}

/// Thresholds of the risk weighing (bytes of the table's main fork).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub medium_bytes: i64,
    pub high_bytes: i64,
}

const LOCK_NAMES: [&str; 9] = [
    "NoLock",
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
];

pub fn lock_name(mode: i32) -> &'static str {
    LOCK_NAMES.get(mode.clamp(0, 8) as usize).copied().unwrap_or("NoLock")
}

const SHARE_UPDATE_EXCLUSIVE: i32 = 4;
const SHARE: i32 = 5;
const SHARE_ROW_EXCLUSIVE: i32 = 6;
const ACCESS_EXCLUSIVE: i32 = 8;

/// What the catalog says about a relation a statement touches.
#[derive(Debug, Clone)]
struct Relation {
    oid: pg_sys::Oid,
    display: String,
    bytes: i64,
    rows: Option<i64>,
    scans: Option<i64>,
}

struct Walker<'a> {
    script: &'a str,
    thresholds: Thresholds,
    search_path: Vec<String>,
    created: HashSet<(Option<String>, String)>,
    facts: HashMap<(Option<String>, String), Option<Relation>>,
    lock_timeout_set: bool,
    lock_timeout_reported: bool,
    in_block: bool,
    strong_locks: Vec<String>,
    /// Constraints added NOT VALID in the current transaction: (table, name) -> (rule, lock mode of the ADD).
    not_valid: HashMap<(String, String), (&'static str, i32)>,
    /// Lock mode of the ALTER TABLE being read.
    alter_mode: i32,
    findings: Vec<Finding>,
    shape: Shape,
}

/// Analyse a parsed script.
pub fn analyse(script: &str, statements: &[RawStatement], thresholds: Thresholds) -> (Vec<Finding>, Shape) {
    let mut w = Walker {
        script,
        thresholds,
        search_path: vec!["$user".into(), "public".into()],
        created: HashSet::new(),
        facts: HashMap::new(),
        lock_timeout_set: false,
        lock_timeout_reported: false,
        in_block: false,
        strong_locks: Vec::new(),
        not_valid: HashMap::new(),
        alter_mode: 0,
        findings: Vec::new(),
        shape: Shape { statements: statements.len() as i32, ..Shape::default() },
    };
    for s in statements {
        let before = w.findings.len();
        w.statement(s);
        // Silenced rules: `steward:ignore a, b` anywhere in the statement's span.
        let ignored = ignored_rules(&annotation_text(script, s));
        if !ignored.is_empty() {
            let mut i = before;
            while i < w.findings.len() {
                if ignored.iter().any(|r| r == w.findings[i].rule || r == "all") {
                    w.findings.remove(i);
                } else {
                    i += 1;
                }
            }
        }
    }
    (w.findings, w.shape)
}

/// Where a statement's `steward:ignore` may be: its span (comments before it included) without
/// the rest of the previous statement's last line, plus the rest of its own last line (a
/// comment after its `;`).
fn annotation_text(script: &str, s: &RawStatement) -> String {
    let span = s.span(script);
    // Where the statement's first token is (after leading whitespace and comments).
    let first_token = span.len() - parse::strip_leading_comments_keep_end(span).len();
    let before_token = &span[..first_token];
    let own = match before_token.find('\n') {
        // The span begins with the rest of the previous statement's line: that comment is the
        // previous statement's.
        Some(nl) if s.start > 0 && !script[..s.start].ends_with('\n') => &span[nl + 1..],
        _ => span,
    };
    let trailing = script.get(s.end..).unwrap_or("").split('\n').next().unwrap_or("");
    format!("{own}\n{trailing}")
}

fn ignored_rules(span: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = span;
    while let Some(at) = rest.find("steward:ignore") {
        let after = &rest[at + "steward:ignore".len()..];
        let line = after.split(['\n', '*']).next().unwrap_or("");
        out.extend(line.split([',', ' ', '\t']).map(str::trim).filter(|r| !r.is_empty()).map(str::to_string));
        rest = after;
    }
    out
}

impl Walker<'_> {
    fn risk_by_size(&self, rel: Option<&Relation>) -> &'static str {
        match rel {
            None => "medium",
            Some(r) if r.bytes >= self.thresholds.high_bytes => "high",
            Some(r) if r.bytes >= self.thresholds.medium_bytes => "medium",
            Some(_) => "low",
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        s: &RawStatement,
        rule: &'static str,
        risk: &'static str,
        rel: Option<&Relation>,
        relation_name: Option<String>,
        lock: Option<i32>,
        rewrites: bool,
        scans: bool,
        message: String,
    ) {
        self.findings.push(Finding {
            rule,
            risk,
            statement_no: s.no,
            statement: truncate(s.text(self.script), 2000),
            relation: rel.map(|r| r.display.clone()).or(relation_name),
            relation_bytes: rel.map(|r| r.bytes),
            row_estimate: rel.and_then(|r| r.rows),
            lock_level: lock.map(lock_name),
            rewrites,
            scans,
            message,
            safe_pattern: safe_pattern(rule),
        });
    }

    /// The relation a RangeVar names, unless the script created it (then None: new and empty).
    fn existing(&mut self, rv: *const pg_sys::RangeVar) -> (Option<Relation>, Option<String>) {
        let Some((schema, name)) = range_var(rv) else { return (None, None) };
        let shown = match &schema {
            Some(s) => format!("{s}.{name}"),
            None => name.clone(),
        };
        if self.is_created(&schema, &name) {
            return (None, Some(shown));
        }
        let key = (schema.clone(), name.clone());
        if !self.facts.contains_key(&key) {
            let found = self.resolve(schema.as_deref(), &name);
            self.facts.insert(key.clone(), found);
        }
        (self.facts.get(&key).cloned().flatten(), Some(shown))
    }

    fn is_created(&self, schema: &Option<String>, name: &str) -> bool {
        self.created.contains(&(schema.clone(), name.to_string())) || self.created.contains(&(None, name.to_string()))
    }

    fn resolve(&self, schema: Option<&str>, name: &str) -> Option<Relation> {
        let cname = CString::new(name).ok()?;
        let schemas: Vec<String> = match schema {
            Some(s) => vec![s.to_string()],
            None => self.search_path.iter().map(|s| if s == "$user" { current_user() } else { s.clone() }).collect(),
        };
        for s in schemas {
            let Ok(cs) = CString::new(s) else { continue };
            // SAFETY: catalog look-ups by name with missing_ok; both strings outlive the calls.
            let oid = unsafe {
                let nsp = pg_sys::get_namespace_oid(cs.as_ptr(), true);
                if nsp == pg_sys::Oid::INVALID {
                    continue;
                }
                pg_sys::get_relname_relid(cname.as_ptr(), nsp)
            };
            if oid != pg_sys::Oid::INVALID {
                return relation_facts(oid);
            }
        }
        None
    }

    /// Remember a strong lock on an existing relation; a second one in the same transaction is a finding.
    fn took_lock(&mut self, s: &RawStatement, rel: Option<&Relation>, mode: i32) {
        let Some(r) = rel else { return };
        if mode >= SHARE_UPDATE_EXCLUSIVE && !self.lock_timeout_set && !self.lock_timeout_reported {
            self.lock_timeout_reported = true;
            self.add(
                s,
                "missing_lock_timeout",
                "medium",
                Some(r),
                None,
                Some(mode),
                false,
                false,
                format!(
                    "{} waits for every transaction using {} to end, and every query on it queues behind it meanwhile; no lock_timeout is set before it",
                    lock_name(mode),
                    r.display
                ),
            );
        }
        if mode >= SHARE && !self.strong_locks.contains(&r.display) {
            if let Some(first) = self.strong_locks.first().cloned() {
                self.add(
                    s,
                    "multiple_locks_in_transaction",
                    "medium",
                    Some(r),
                    None,
                    Some(mode),
                    false,
                    false,
                    format!("takes {} on {} while the transaction still holds a strong lock on {first}", lock_name(mode), r.display),
                );
            }
            self.strong_locks.push(r.display.clone());
        }
    }

    fn statement(&mut self, s: &RawStatement) {
        let node = s.node;
        let Some(t) = tag(node) else { return };
        use pg_sys::NodeTag::*;
        match t {
            T_TransactionStmt => self.transaction(s),
            T_VariableSetStmt => self.set(s),
            T_IndexStmt => self.create_index(s),
            T_DropStmt => self.drop(s),
            T_AlterTableStmt => self.alter_table(s),
            T_RenameStmt => self.rename(s),
            T_TruncateStmt => self.truncate(s),
            T_DeleteStmt => {
                // SAFETY: tag checked.
                let (rv, where_clause) = unsafe {
                    let d = node as *mut pg_sys::DeleteStmt;
                    ((*d).relation, (*d).whereClause)
                };
                self.unbounded(s, "unbounded_delete", "DELETE", rv, where_clause);
            }
            T_UpdateStmt => {
                // SAFETY: tag checked.
                let (rv, where_clause) = unsafe {
                    let u = node as *mut pg_sys::UpdateStmt;
                    ((*u).relation, (*u).whereClause)
                };
                self.unbounded(s, "unbounded_update", "UPDATE", rv, where_clause);
            }
            T_CreateStmt => self.create_table(s),
            T_ReindexStmt => {
                // SAFETY: tag checked.
                let concurrent = unsafe { has_option((*(node as *mut pg_sys::ReindexStmt)).params, "concurrently") };
                if concurrent {
                    self.non_transactional(s, "REINDEX CONCURRENTLY");
                }
            }
            T_VacuumStmt => {
                // SAFETY: tag checked.
                let is_vacuum = unsafe { (*(node as *mut pg_sys::VacuumStmt)).is_vacuumcmd };
                if is_vacuum {
                    self.non_transactional(s, "VACUUM");
                }
            }
            _ => {}
        }
    }

    fn non_transactional(&mut self, s: &RawStatement, what: &str) {
        self.shape.non_transactional.push(s.no);
        if self.in_block {
            self.add(
                s,
                "concurrently_in_transaction",
                "high",
                None,
                None,
                None,
                false,
                false,
                format!("{what} cannot run inside a transaction block: the migration would fail here"),
            );
        }
    }

    fn transaction(&mut self, s: &RawStatement) {
        // SAFETY: tag checked by the caller.
        let kind = unsafe { (*(s.node as *mut pg_sys::TransactionStmt)).kind };
        use pg_sys::TransactionStmtKind::*;
        match kind {
            TRANS_STMT_BEGIN | TRANS_STMT_START => self.in_block = true,
            TRANS_STMT_COMMIT | TRANS_STMT_ROLLBACK | TRANS_STMT_PREPARE | TRANS_STMT_COMMIT_PREPARED
            | TRANS_STMT_ROLLBACK_PREPARED => {
                self.in_block = false;
                self.strong_locks.clear();
                self.not_valid.clear();
            }
            _ => {}
        }
        self.shape.transaction_control.push(s.no);
        self.add(
            s,
            "transaction_control",
            "low",
            None,
            None,
            None,
            false,
            false,
            "transaction control in a migration: migration_add refuses it, since each migration already runs as one transaction".into(),
        );
    }

    fn set(&mut self, s: &RawStatement) {
        self.shape.settings.push(s.no);
        // SAFETY: tag checked by the caller.
        let (name, args, kind) = unsafe {
            let v = s.node as *mut pg_sys::VariableSetStmt;
            (cstr((*v).name), (*v).args, (*v).kind)
        };
        let Some(name) = name else { return };
        let is_value = kind == pg_sys::VariableSetKind::VAR_SET_VALUE;
        match name.as_str() {
            "lock_timeout" => self.lock_timeout_set = is_value && !const_is_zero(args),
            "search_path" if is_value => {
                let path: Vec<String> = nodes(args).into_iter().filter_map(const_text).collect();
                if !path.is_empty() {
                    self.search_path = path;
                }
            }
            _ => {}
        }
    }

    fn create_index(&mut self, s: &RawStatement) {
        // SAFETY: tag checked by the caller.
        let (rv, concurrent) = unsafe {
            let i = s.node as *mut pg_sys::IndexStmt;
            ((*i).relation, (*i).concurrent)
        };
        if concurrent {
            self.non_transactional(s, "CREATE INDEX CONCURRENTLY");
            let (rel, _) = self.existing(rv);
            self.took_lock(s, rel.as_ref(), SHARE_UPDATE_EXCLUSIVE);
            return;
        }
        let (rel, shown) = self.existing(rv);
        if let Some(r) = rel.as_ref() {
            let risk = self.risk_by_size(Some(r));
            self.add(
                s,
                "index_not_concurrent",
                risk,
                Some(r),
                shown,
                Some(SHARE),
                false,
                true,
                format!("CREATE INDEX blocks every INSERT, UPDATE and DELETE on {} while it reads all {} of it", r.display, pretty_bytes(r.bytes)),
            );
            self.took_lock(s, Some(r), SHARE);
        }
    }

    fn drop(&mut self, s: &RawStatement) {
        // SAFETY: tag checked by the caller.
        let (objects, remove_type, concurrent) = unsafe {
            let d = s.node as *mut pg_sys::DropStmt;
            ((*d).objects, (*d).removeType, (*d).concurrent)
        };
        match remove_type {
            pg_sys::ObjectType::OBJECT_TABLE => {
                for obj in nodes(objects) {
                    let parts = names(obj as *mut pg_sys::List);
                    let (schema, name) = split_name(&parts);
                    let Some(name) = name else { continue };
                    if self.is_created(&schema, &name) {
                        continue;
                    }
                    let rel = self.resolve(schema.as_deref(), &name);
                    if let Some(r) = rel.as_ref() {
                        let what = match r.rows {
                            Some(n) if n > 0 => format!("about {n} rows"),
                            _ => pretty_bytes(r.bytes),
                        };
                        self.add(s, "drop_table", "high", Some(r), None, Some(ACCESS_EXCLUSIVE), false, false,
                                 format!("DROP TABLE removes {} and its {} for good", r.display, what));
                        self.took_lock(s, Some(r), ACCESS_EXCLUSIVE);
                    }
                }
            }
            pg_sys::ObjectType::OBJECT_INDEX => {
                if concurrent {
                    self.non_transactional(s, "DROP INDEX CONCURRENTLY");
                    return;
                }
                for obj in nodes(objects) {
                    let parts = names(obj as *mut pg_sys::List);
                    let (schema, name) = split_name(&parts);
                    let Some(name) = name else { continue };
                    let Some(index) = self.resolve(schema.as_deref(), &name) else { continue };
                    // The lock that matters is the table's.
                    let table = index_table(index.oid).and_then(relation_facts);
                    if let Some(t) = table.as_ref() {
                        if self.is_created(&None, t.display.rsplit('.').next().unwrap_or("")) {
                            continue;
                        }
                    }
                    let shown = table.as_ref().unwrap_or(&index).clone();
                    let risk = if self.risk_by_size(Some(&shown)) == "low" { "low" } else { "medium" };
                    self.add(s, "drop_index_not_concurrent", risk, Some(&shown), None, Some(ACCESS_EXCLUSIVE), false, false,
                             format!("DROP INDEX {} takes ACCESS EXCLUSIVE on {}: every query on it waits, and queues behind any long transaction",
                                     index.display, shown.display));
                    self.took_lock(s, Some(&shown), ACCESS_EXCLUSIVE);
                }
            }
            _ => {}
        }
    }

    fn truncate(&mut self, s: &RawStatement) {
        // SAFETY: tag checked by the caller.
        let (rels, behavior) = unsafe {
            let t = s.node as *mut pg_sys::TruncateStmt;
            ((*t).relations, (*t).behavior)
        };
        let cascade = behavior == pg_sys::DropBehavior::DROP_CASCADE;
        for rv in nodes(rels) {
            let (rel, shown) = self.existing(rv as *const pg_sys::RangeVar);
            if let Some(r) = rel.as_ref() {
                self.add(s, "truncate", "high", Some(r), shown, Some(ACCESS_EXCLUSIVE), false, false,
                         format!("TRUNCATE removes every row of {} ({}) and cannot be undone once committed", r.display, pretty_bytes(r.bytes)));
                self.took_lock(s, Some(r), ACCESS_EXCLUSIVE);
                if cascade {
                    // CASCADE empties every table that references it, and theirs in turn.
                    for oid in referencing_tables(r.oid) {
                        if let Some(t) = relation_facts(oid) {
                            self.add(s, "truncate", "high", Some(&t), None, Some(ACCESS_EXCLUSIVE), false, false,
                                     format!("TRUNCATE ... CASCADE of {} also removes every row of {} ({}), which references it", r.display, t.display, pretty_bytes(t.bytes)));
                            self.took_lock(s, Some(&t), ACCESS_EXCLUSIVE);
                        }
                    }
                }
            }
        }
    }

    fn unbounded(&mut self, s: &RawStatement, rule: &'static str, verb: &str, rv: *mut pg_sys::RangeVar, where_clause: *mut pg_sys::Node) {
        let (rel, shown) = self.existing(rv);
        let Some(r) = rel.as_ref() else { return };
        if where_clause.is_null() || always_true(where_clause, 0) {
            let how = if where_clause.is_null() { "without a WHERE clause" } else { "with a WHERE clause that is always true" };
            self.add(s, rule, "high", Some(r), shown, Some(3), false, true,
                     format!("{verb} {how} touches every row of {} ({})", r.display,
                             r.rows.map(|n| format!("about {n} rows")).unwrap_or_else(|| pretty_bytes(r.bytes))));
        }
    }

    fn rename(&mut self, s: &RawStatement) {
        // SAFETY: tag checked by the caller.
        let (kind, rel_type, rv, sub, new) = unsafe {
            let r = s.node as *mut pg_sys::RenameStmt;
            ((*r).renameType, (*r).relationType, (*r).relation, cstr((*r).subname), cstr((*r).newname))
        };
        let rule = match kind {
            pg_sys::ObjectType::OBJECT_TABLE => "rename_table",
            pg_sys::ObjectType::OBJECT_COLUMN if rel_type == pg_sys::ObjectType::OBJECT_TABLE => "rename_column",
            _ => return,
        };
        let (rel, shown) = self.existing(rv);
        let Some(r) = rel.as_ref() else { return };
        let used = r.scans.unwrap_or(0);
        let risk = if used > 0 { "medium" } else { "low" };
        let what = match (rule, sub) {
            ("rename_column", Some(col)) => format!("column {col} of {}", r.display),
            _ => r.display.clone(),
        };
        self.add(s, rule, risk, Some(r), shown, Some(ACCESS_EXCLUSIVE), false, false,
                 format!("renaming {what} to {} breaks every client still using the old name{}", new.unwrap_or_default(),
                         if used > 0 { format!(" ({used} scans of the table since the statistics were reset)") } else { String::new() }));
        self.took_lock(s, Some(r), ACCESS_EXCLUSIVE);
    }

    fn create_table(&mut self, s: &RawStatement) {
        // SAFETY: tag checked by the caller.
        let (rv, elts) = unsafe {
            let c = s.node as *mut pg_sys::CreateStmt;
            ((*c).relation, (*c).tableElts)
        };
        let Some((schema, name)) = range_var(rv) else { return };
        self.created.insert((schema, name.clone()));
        // Foreign keys take SHARE ROW EXCLUSIVE on the tables they reference.
        let mut fks: Vec<*mut pg_sys::RangeVar> = Vec::new();
        for e in nodes(elts) {
            let constraints = match tag(e) {
                Some(pg_sys::NodeTag::T_Constraint) => vec![e],
                // SAFETY: tag checked.
                Some(pg_sys::NodeTag::T_ColumnDef) => nodes(unsafe { (*(e as *mut pg_sys::ColumnDef)).constraints }),
                _ => vec![],
            };
            for c in constraints {
                if tag(c) == Some(pg_sys::NodeTag::T_Constraint) {
                    // SAFETY: tag checked.
                    let (contype, pktable) = unsafe { ((*(c as *mut pg_sys::Constraint)).contype, (*(c as *mut pg_sys::Constraint)).pktable) };
                    if contype == pg_sys::ConstrType::CONSTR_FOREIGN {
                        fks.push(pktable);
                    }
                }
            }
        }
        for pk in fks {
            let (referenced, _) = self.existing(pk);
            self.took_lock(s, referenced.as_ref(), SHARE_ROW_EXCLUSIVE);
        }
        // Table-level PRIMARY KEY (a, b): the key columns.
        let mut pk_columns: Vec<String> = Vec::new();
        for e in nodes(elts) {
            if tag(e) == Some(pg_sys::NodeTag::T_Constraint) {
                // SAFETY: tag checked.
                let (contype, keys) = unsafe { ((*(e as *mut pg_sys::Constraint)).contype, (*(e as *mut pg_sys::Constraint)).keys) };
                if contype == pg_sys::ConstrType::CONSTR_PRIMARY {
                    pk_columns.extend(names(keys));
                }
            }
        }
        for e in nodes(elts) {
            if tag(e) == Some(pg_sys::NodeTag::T_ColumnDef) {
                self.column_types(s, e as *mut pg_sys::ColumnDef, &name, &pk_columns);
            }
        }
    }

    /// Type rules of a column definition (CREATE TABLE, ADD COLUMN).
    fn column_types(&mut self, s: &RawStatement, col: *mut pg_sys::ColumnDef, table: &str, pk_columns: &[String]) {
        // SAFETY: a ColumnDef of the parse tree.
        let (colname, type_name, constraints) = unsafe { (cstr((*col).colname).unwrap_or_default(), (*col).typeName, (*col).constraints) };
        let Some((ty, typmods)) = type_of(type_name) else { return };
        let is_pk = pk_columns.contains(&colname)
            || nodes(constraints).into_iter().any(|c| {
                // SAFETY: tag checked in the closure.
                tag(c) == Some(pg_sys::NodeTag::T_Constraint)
                    && unsafe { (*(c as *mut pg_sys::Constraint)).contype } == pg_sys::ConstrType::CONSTR_PRIMARY
            });
        let at = format!("{table}.{colname}");
        match ty.as_str() {
            "int4" | "int2" | "serial" | "serial4" | "smallserial" | "serial2" | "integer" | "smallint" | "int" if is_pk => {
                self.add(s, "int_primary_key", "low", None, Some(at.clone()), None, false, false,
                         format!("primary key {at} is {ty}: it runs out at {}", if ty.contains("2") || ty.contains("small") { "32 767" } else { "2 147 483 647" }));
            }
            "varchar" if typmods > 0 => {
                self.add(s, "varchar_length", "info", None, Some(at.clone()), None, false, false,
                         format!("{at} is varchar({typmods}): raising the limit later is cheap, lowering it rewrites the table"));
            }
            "bpchar" => {
                self.add(s, "char_type", "info", None, Some(at.clone()), None, false, false, format!("{at} is char(n), which pads with spaces"));
            }
            "timestamp" => {
                self.add(s, "timestamp_without_tz", "info", None, Some(at.clone()), None, false, false,
                         format!("{at} is timestamp without time zone"));
            }
            _ => {}
        }
    }

    #[allow(non_upper_case_globals)]
    fn alter_table(&mut self, s: &RawStatement) {
        // SAFETY: tag checked by the caller.
        let (rv, cmds, objtype) = unsafe {
            let a = s.node as *mut pg_sys::AlterTableStmt;
            ((*a).relation, (*a).cmds, (*a).objtype)
        };
        if objtype != pg_sys::ObjectType::OBJECT_TABLE {
            return;
        }
        let (rel, shown) = self.existing(rv);
        let table_name = range_var(rv).map(|(_, n)| n).unwrap_or_default();
        // SAFETY: the statement's own command list; PostgreSQL decides its lock from it exactly
        // as ALTER TABLE will (it reads only the subcommand types and constraint kinds).
        let mode = unsafe { pg_sys::AlterTableGetLockLevel(cmds) };
        self.alter_mode = mode;
        for c in nodes(cmds) {
            if tag(c) != Some(pg_sys::NodeTag::T_AlterTableCmd) {
                continue;
            }
            // SAFETY: tag checked.
            let (subtype, name, def) = unsafe {
                let cmd = c as *mut pg_sys::AlterTableCmd;
                ((*cmd).subtype, cstr((*cmd).name), (*cmd).def)
            };
            use pg_sys::AlterTableType::*;
            match subtype {
                AT_AddColumn if tag(def) == Some(pg_sys::NodeTag::T_ColumnDef) => {
                    self.column_types(s, def as *mut pg_sys::ColumnDef, &table_name, &[]);
                    if let Some(r) = rel.as_ref() {
                        self.add_column(s, r, def as *mut pg_sys::ColumnDef);
                    }
                }
                AT_DropColumn => {
                    if let Some(r) = rel.as_ref() {
                        self.add(s, "drop_column", "high", Some(r), None, Some(ACCESS_EXCLUSIVE), false, false,
                                 format!("dropping column {} of {} loses its data, and breaks every client still reading it", name.unwrap_or_default(), r.display));
                    }
                }
                AT_SetNotNull => {
                    if let Some(r) = rel.as_ref() {
                        let col = name.unwrap_or_default();
                        if !has_valid_not_null_check(r.oid, &col) {
                            let risk = self.risk_by_size(Some(r));
                            self.add(s, "set_not_null", risk, Some(r), None, Some(ACCESS_EXCLUSIVE), false, true,
                                     format!("SET NOT NULL on {}.{col} reads all {} under ACCESS EXCLUSIVE (no validated CHECK ({col} IS NOT NULL) exists)", r.display, pretty_bytes(r.bytes)));
                        }
                    }
                }
                AT_AddConstraint if tag(def) == Some(pg_sys::NodeTag::T_Constraint) => {
                    if let Some(r) = rel.as_ref() {
                        self.constraint(s, r, def as *mut pg_sys::Constraint);
                    }
                }
                AT_ValidateConstraint => {
                    if let (Some(r), Some(n)) = (rel.as_ref(), name.as_ref()) {
                        if let Some((rule, held)) = self.not_valid.get(&(r.display.clone(), n.clone())).copied() {
                            let risk = self.risk_by_size(Some(r));
                            self.add(s, rule, risk, Some(r), None, Some(held.max(SHARE_UPDATE_EXCLUSIVE)), false, true,
                                     format!("{n} is validated in the same transaction that added it NOT VALID: the ADD's lock on {} is held while VALIDATE reads all {} of it", r.display, pretty_bytes(r.bytes)));
                        }
                    }
                }
                AT_AlterColumnType if tag(def) == Some(pg_sys::NodeTag::T_ColumnDef) => {
                    if let Some(r) = rel.as_ref() {
                        self.alter_type(s, r, &name.unwrap_or_default(), def as *mut pg_sys::ColumnDef);
                    }
                }
                _ => {}
            }
        }
        if rel.is_some() {
            self.took_lock(s, rel.as_ref(), mode);
        }
        let _ = shown;
    }

    fn add_column(&mut self, s: &RawStatement, r: &Relation, col: *mut pg_sys::ColumnDef) {
        // SAFETY: a ColumnDef of the parse tree.
        let (colname, type_name, raw_default, constraints, identity, generated) = unsafe {
            (cstr((*col).colname).unwrap_or_default(), (*col).typeName, (*col).raw_default, (*col).constraints, (*col).identity, (*col).generated)
        };
        let ty = type_of(type_name).map(|(t, _)| t).unwrap_or_default();
        let mut default = raw_default;
        let mut rewrite_reason: Option<String> = None;
        if identity != 0 {
            rewrite_reason = Some("an identity column fills every existing row from its sequence".into());
        }
        if generated != 0 {
            rewrite_reason = Some("a stored generated column is computed for every existing row".into());
        }
        if matches!(ty.as_str(), "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2") {
            rewrite_reason = Some(format!("{ty} fills every existing row from its sequence (nextval is volatile)"));
        }
        for c in nodes(constraints) {
            if tag(c) != Some(pg_sys::NodeTag::T_Constraint) {
                continue;
            }
            // SAFETY: tag checked.
            let (contype, raw_expr) = unsafe { ((*(c as *mut pg_sys::Constraint)).contype, (*(c as *mut pg_sys::Constraint)).raw_expr) };
            use pg_sys::ConstrType::*;
            match contype {
                CONSTR_DEFAULT => default = raw_expr,
                CONSTR_IDENTITY => rewrite_reason = Some("an identity column fills every existing row from its sequence".into()),
                CONSTR_GENERATED => rewrite_reason = Some("a stored generated column is computed for every existing row".into()),
                _ => self.constraint(s, r, c as *mut pg_sys::Constraint),
            }
        }
        if rewrite_reason.is_none() && !default.is_null() {
            if let Some(f) = volatile_function(default) {
                rewrite_reason = Some(format!("its default calls {f}(), which is volatile: every existing row gets its own value"));
            }
        }
        if let Some(why) = rewrite_reason {
            let risk = self.risk_by_size(Some(r));
            self.add(s, "volatile_default", risk, Some(r), None, Some(ACCESS_EXCLUSIVE), true, true,
                     format!("ADD COLUMN {colname} rewrites {} ({}) under ACCESS EXCLUSIVE: {why}", r.display, pretty_bytes(r.bytes)));
        }
    }

    fn constraint(&mut self, s: &RawStatement, r: &Relation, c: *mut pg_sys::Constraint) {
        // SAFETY: a Constraint of the parse tree.
        let (contype, skip_validation, indexname, pktable, conname) = unsafe {
            ((*c).contype, (*c).skip_validation, cstr((*c).indexname), (*c).pktable, cstr((*c).conname))
        };
        let label = conname.clone().map(|n| format!(" {n}")).unwrap_or_default();
        use pg_sys::ConstrType::*;
        if skip_validation {
            if let Some(n) = &conname {
                let rule = if contype == CONSTR_FOREIGN { "foreign_key_validated" } else { "check_validated" };
                self.not_valid.insert((r.display.clone(), n.clone()), (rule, self.alter_mode));
            }
        }
        if contype == CONSTR_PRIMARY {
            // SAFETY: a Constraint of the parse tree.
            let keys = names(unsafe { (*c).keys });
            let columns = match &indexname {
                Some(index) => index_columns(r.oid, index),
                None => keys,
            };
            for col in columns {
                if let Some((ty, _)) = column_type(r.oid, &col) {
                    if ty == pg_sys::INT4OID || ty == pg_sys::INT2OID {
                        let at = format!("{}.{col}", r.display);
                        self.add(s, "int_primary_key", "low", Some(r), None, None, false, false,
                                 format!("primary key {at} is {}: it runs out at {}", format_type(ty, -1),
                                         if ty == pg_sys::INT2OID { "32 767" } else { "2 147 483 647" }));
                    }
                }
            }
        }
        match contype {
            CONSTR_FOREIGN if !skip_validation => {
                let referenced = range_var(pktable).map(|(sch, n)| sch.map(|x| format!("{x}.{n}")).unwrap_or(n)).unwrap_or_default();
                let risk = self.risk_by_size(Some(r));
                self.add(s, "foreign_key_validated", risk, Some(r), None, Some(SHARE_ROW_EXCLUSIVE), false, true,
                         format!("FOREIGN KEY{label} is validated at once: it reads all {} of {} with writes to it and to {referenced} blocked", pretty_bytes(r.bytes), r.display));
            }
            CONSTR_CHECK if !skip_validation => {
                let risk = self.risk_by_size(Some(r));
                self.add(s, "check_validated", risk, Some(r), None, Some(ACCESS_EXCLUSIVE), false, true,
                         format!("CHECK{label} is validated at once: it reads all {} of {} under ACCESS EXCLUSIVE", pretty_bytes(r.bytes), r.display));
            }
            CONSTR_UNIQUE | CONSTR_PRIMARY | CONSTR_EXCLUSION if indexname.is_none() => {
                let risk = self.risk_by_size(Some(r));
                let kind = match contype { CONSTR_PRIMARY => "PRIMARY KEY", CONSTR_UNIQUE => "UNIQUE", _ => "EXCLUDE" };
                self.add(s, "unique_without_index", risk, Some(r), None, Some(ACCESS_EXCLUSIVE), false, true,
                         format!("{kind}{label} builds its index while holding ACCESS EXCLUSIVE on {} ({}): no reads or writes meanwhile", r.display, pretty_bytes(r.bytes)));
            }
            _ => {}
        }
    }

    fn alter_type(&mut self, s: &RawStatement, r: &Relation, column: &str, def: *mut pg_sys::ColumnDef) {
        // SAFETY: a ColumnDef of the parse tree.
        let type_name = unsafe { (*def).typeName };
        if type_name.is_null() {
            return;
        }
        let Some((old_type, old_mod)) = column_type(r.oid, column) else { return };
        let mut new_type = pg_sys::Oid::INVALID;
        let mut new_mod: i32 = -1;
        // SAFETY: resolves the TypeName against the catalog (missing types raise, which the
        // caller sees as an error of migration_check like any unknown type would at apply time).
        let ok = unsafe {
            let tup = pg_sys::LookupTypeName(std::ptr::null_mut(), type_name, &mut new_mod, true);
            if tup.is_null() {
                false
            } else {
                let header = (*tup).t_data;
                let form = (header as *const u8).add((*header).t_hoff as usize) as *const pg_sys::FormData_pg_type;
                new_type = (*form).oid;
                pg_sys::ReleaseSysCache(tup);
                true
            }
        };
        if !ok {
            return;
        }
        let verdict = rewrite_verdict(old_type, old_mod, new_type, new_mod);
        if let Some(why) = verdict {
            let risk = self.risk_by_size(Some(r));
            self.add(s, "column_type_rewrite", risk, Some(r), None, Some(ACCESS_EXCLUSIVE), true, true,
                     format!("changing {}.{column} from {} to {} rewrites the table ({}) under ACCESS EXCLUSIVE: {why}",
                             r.display, format_type(old_type, old_mod), format_type(new_type, new_mod), pretty_bytes(r.bytes)));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Catalog facts
// ---------------------------------------------------------------------------------------

fn current_user() -> String {
    // SAFETY: the current user's name, NULL-safe.
    cstr(unsafe { pg_sys::GetUserNameFromId(pg_sys::GetUserId(), true) }).unwrap_or_default()
}

/// Size of the main fork on disk (summing 1 GB segments), row estimate and scan count.  Read
/// without opening (so without locking) the relation: the check never waits for a lock.
fn relation_facts(oid: pg_sys::Oid) -> Option<Relation> {
    // SAFETY: syscache look-up by OID; plain fields copied, the tuple released.
    let (relfilenode, tablespace, relpages, reltuples, persistence) = unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::RELOID as _, pg_sys::Datum::from(oid));
        if tuple.is_null() {
            return None;
        }
        let header = (*tuple).t_data;
        let form = (header as *const u8).add((*header).t_hoff as usize) as *const pg_sys::FormData_pg_class;
        let out = (u32::from((*form).relfilenode), (*form).reltablespace.to_u32(), (*form).relpages, (*form).reltuples, (*form).relpersistence as u8);
        pg_sys::ReleaseSysCache(tuple);
        out
    };
    let display = crate::common::catalog::QuotedName::relation(oid).map(|q| q.as_str().to_string()).unwrap_or_else(|| oid.to_u32().to_string());
    let mut bytes = i64::from(relpages.max(0)) * crate::common::block_size() as i64;
    // SAFETY: backend-local globals.
    let (db, default_space) = unsafe { (pg_sys::MyDatabaseId.to_u32(), pg_sys::MyDatabaseTableSpace.to_u32()) };
    if relfilenode != 0 && (tablespace == 0 || tablespace == default_space) && persistence != b't' {
        let base = format!("base/{db}/{relfilenode}");
        let mut total: i64 = 0;
        let mut found = false;
        for seg in 0..100_000 {
            let path = if seg == 0 { base.clone() } else { format!("{base}.{seg}") };
            match std::fs::metadata(&path) {
                Ok(m) => {
                    total = total.saturating_add(m.len() as i64);
                    found = true;
                }
                Err(_) => break,
            }
        }
        if found {
            bytes = total;
        }
    }
    let rows = (reltuples >= 0.0).then_some(reltuples as i64);
    let scans = crate::common::read_one::<i64>(
        "SELECT (coalesce(pg_catalog.pg_stat_get_numscans($1), 0) + coalesce(pg_catalog.pg_stat_get_xact_numscans($1), 0))::bigint",
        &[oid.into()],
    )
    .ok()
    .flatten();
    Some(Relation { oid, display, bytes, rows, scans })
}

/// Every table that references `rel` through a foreign key, transitively (what TRUNCATE ... CASCADE empties).
fn referencing_tables(rel: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    Spi::connect(|c| {
        let rows = c.select(
            "WITH RECURSIVE r(oid) AS (
                 SELECT co.conrelid FROM pg_catalog.pg_constraint co
                  WHERE co.confrelid OPERATOR(pg_catalog.=) $1 AND co.contype OPERATOR(pg_catalog.=) 'f'
                 UNION
                 SELECT co.conrelid FROM pg_catalog.pg_constraint co JOIN r ON co.confrelid OPERATOR(pg_catalog.=) r.oid
                  WHERE co.contype OPERATOR(pg_catalog.=) 'f')
             SELECT oid FROM r WHERE oid OPERATOR(pg_catalog.<>) $1 ORDER BY oid LIMIT 1000",
            None,
            &[rel.into()],
        )?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(o) = r.get::<pg_sys::Oid>(1)? {
                out.push(o);
            }
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .unwrap_or_default()
}

/// The key column names of an index of `table`, by the index's name in the table's schema.
fn index_columns(table: pg_sys::Oid, index: &str) -> Vec<String> {
    Spi::connect(|c| {
        let rows = c.select(
            "SELECT a.attname::text FROM pg_catalog.pg_class t
               JOIN pg_catalog.pg_class ic ON ic.relnamespace OPERATOR(pg_catalog.=) t.relnamespace AND ic.relname OPERATOR(pg_catalog.=) $2
               JOIN pg_catalog.pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) ic.oid AND i.indrelid OPERATOR(pg_catalog.=) t.oid
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.oid AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::int2[])
              WHERE t.oid OPERATOR(pg_catalog.=) $1",
            None,
            &[table.into(), index.into()],
        )?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(n) = r.get::<String>(1)? {
                out.push(n);
            }
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .unwrap_or_default()
}

fn index_table(index: pg_sys::Oid) -> Option<pg_sys::Oid> {
    // SAFETY: syscache look-up by OID of pg_index.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::INDEXRELID as _, pg_sys::Datum::from(index));
        if tuple.is_null() {
            return None;
        }
        let header = (*tuple).t_data;
        let form = (header as *const u8).add((*header).t_hoff as usize) as *const pg_sys::FormData_pg_index;
        let table = (*form).indrelid;
        pg_sys::ReleaseSysCache(tuple);
        Some(table)
    }
}

/// The type and typmod of a live column.
fn column_type(rel: pg_sys::Oid, column: &str) -> Option<(pg_sys::Oid, i32)> {
    let c = CString::new(column).ok()?;
    // SAFETY: syscache look-up by (relid, name); plain fields copied.
    unsafe {
        let tuple = pg_sys::SearchSysCacheAttName(rel, c.as_ptr());
        if tuple.is_null() {
            return None;
        }
        let header = (*tuple).t_data;
        let form = (header as *const u8).add((*header).t_hoff as usize) as *const pg_sys::FormData_pg_attribute;
        let out = ((*form).atttypid, (*form).atttypmod);
        pg_sys::ReleaseSysCache(tuple);
        Some(out)
    }
}

fn format_type(t: pg_sys::Oid, m: i32) -> String {
    // SAFETY: format_type_with_typemod returns a palloc'd string for any OID.
    cstr(unsafe { pg_sys::format_type_with_typemod(t, m) }).unwrap_or_default()
}

/// Why ALTER COLUMN TYPE from (old) to (new) rewrites the table, or None when PostgreSQL
/// changes only the catalog (binary-coercible types whose limit does not shrink).
pub fn rewrite_verdict(old: pg_sys::Oid, old_mod: i32, new: pg_sys::Oid, new_mod: i32) -> Option<String> {
    let varchar = pg_sys::VARCHAROID;
    let numeric = pg_sys::NUMERICOID;
    if old == new {
        if new_mod == -1 || new_mod == old_mod {
            return if old == varchar || old == numeric || new_mod == old_mod { None } else { Some("the type's modifier changes".into()) };
        }
        if old == varchar {
            return if old_mod != -1 && new_mod >= old_mod { None } else { Some("a shorter varchar limit must check and rewrite every row".into()) };
        }
        if old == numeric && old_mod != -1 {
            // typmod = ((precision << 16) | scale) + VARHDRSZ
            let (op, os) = (((old_mod - 4) >> 16) & 0xffff, (old_mod - 4) & 0xffff);
            let (np, ns) = (((new_mod - 4) >> 16) & 0xffff, (new_mod - 4) & 0xffff);
            return if ns == os && np >= op { None } else { Some("a numeric scale change or smaller precision recomputes every value".into()) };
        }
        return Some("the type's modifier changes".into());
    }
    // SAFETY: a catalog predicate on two type OIDs.
    let binary = unsafe { pg_sys::IsBinaryCoercible(old, new) };
    if binary && (new_mod == -1 || (new == varchar && old != pg_sys::TEXTOID && old_mod != -1 && new_mod >= old_mod)) {
        return None;
    }
    if old == pg_sys::TIMESTAMPOID && new == pg_sys::TIMESTAMPTZOID {
        // PostgreSQL skips the rewrite when the session's TimeZone is UTC (the values stay the same).
        let utc = crate::common::read_one::<bool>(
            "SELECT pg_catalog.current_setting('TimeZone') OPERATOR(pg_catalog.=) ANY (ARRAY['UTC', 'Etc/UTC', 'UCT', 'Etc/UCT', 'Zulu', 'Etc/Zulu', 'GMT', 'Etc/GMT', 'Universal', 'Etc/Universal'])",
            &[],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        return (!utc).then(|| "timestamp to timestamptz converts every value (no rewrite when TimeZone is UTC; it is not here)".into());
    }
    Some("the types are not binary-compatible: every value is converted".into())
}

/// Whether the column is NOT NULL already or a validated CHECK (col IS NOT NULL) exists: then
/// SET NOT NULL reads nothing.
fn has_valid_not_null_check(rel: pg_sys::Oid, column: &str) -> bool {
    crate::common::read_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2 AND a.attnotnull)
             OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                         WHERE c.conrelid OPERATOR(pg_catalog.=) $1 AND c.contype OPERATOR(pg_catalog.=) 'c' AND c.convalidated
                           AND pg_catalog.pg_get_constraintdef(c.oid) OPERATOR(pg_catalog.=)
                               pg_catalog.format('CHECK ((%s IS NOT NULL))', pg_catalog.quote_ident($2)))",
        &[rel.into(), column.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The first function a raw default expression calls that is volatile (by name: any function
/// of that name that is volatile counts, as the default's resolution is not known here).
fn volatile_function(expr: *mut pg_sys::Node) -> Option<String> {
    let mut calls = Vec::new();
    collect_calls(expr, &mut calls, 0);
    for (schema, name) in calls {
        let volatile = crate::common::read_one::<bool>(
            "SELECT bool_or(p.provolatile OPERATOR(pg_catalog.=) 'v') FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
              WHERE p.proname OPERATOR(pg_catalog.=) $1 AND ($2::text IS NULL OR n.nspname OPERATOR(pg_catalog.=) $2)",
            &[name.as_str().into(), schema.as_deref().into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if volatile {
            return Some(name);
        }
    }
    None
}

fn collect_calls(node: *mut pg_sys::Node, out: &mut Vec<(Option<String>, String)>, depth: usize) {
    if depth > 100 || node.is_null() {
        return;
    }
    use pg_sys::NodeTag::*;
    match tag(node) {
        Some(T_FuncCall) => {
            // SAFETY: tag checked.
            let (funcname, args) = unsafe { ((*(node as *mut pg_sys::FuncCall)).funcname, (*(node as *mut pg_sys::FuncCall)).args) };
            let parts = names(funcname);
            let (schema, name) = split_name(&parts);
            if let Some(n) = name {
                out.push((schema, n));
            }
            for a in nodes(args) {
                collect_calls(a, out, depth + 1);
            }
        }
        Some(T_A_Expr) => {
            // SAFETY: tag checked.
            let (l, r) = unsafe { ((*(node as *mut pg_sys::A_Expr)).lexpr, (*(node as *mut pg_sys::A_Expr)).rexpr) };
            collect_calls(l, out, depth + 1);
            collect_calls(r, out, depth + 1);
        }
        Some(T_TypeCast) => {
            // SAFETY: tag checked.
            collect_calls(unsafe { (*(node as *mut pg_sys::TypeCast)).arg }, out, depth + 1);
        }
        Some(T_CoalesceExpr) => {
            // SAFETY: tag checked.
            for a in nodes(unsafe { (*(node as *mut pg_sys::CoalesceExpr)).args }) {
                collect_calls(a, out, depth + 1);
            }
        }
        Some(T_BoolExpr) => {
            // SAFETY: tag checked.
            for a in nodes(unsafe { (*(node as *mut pg_sys::BoolExpr)).args }) {
                collect_calls(a, out, depth + 1);
            }
        }
        Some(T_List) => {
            for a in nodes(node as *mut pg_sys::List) {
                collect_calls(a, out, depth + 1);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Small readers
// ---------------------------------------------------------------------------------------

/// (schema, name) of a qualified name list (catalog.schema.name keeps the last two).
fn split_name(parts: &[String]) -> (Option<String>, Option<String>) {
    match parts {
        [] => (None, None),
        [n] => (None, Some(n.clone())),
        [.., s, n] => (Some(s.clone()), Some(n.clone())),
    }
}

/// The type's last name part and its first typmod (varchar(20) → ("varchar", 20)).
fn type_of(t: *mut pg_sys::TypeName) -> Option<(String, i32)> {
    if t.is_null() {
        return None;
    }
    // SAFETY: a TypeName of the parse tree.
    let (list, mods) = unsafe { ((*t).names, (*t).typmods) };
    let name = names(list).pop()?;
    let first_mod = nodes(mods).into_iter().next().and_then(const_int).unwrap_or(-1);
    Some((name, first_mod))
}

fn const_int(node: *mut pg_sys::Node) -> Option<i32> {
    if tag(node)? != pg_sys::NodeTag::T_A_Const {
        return None;
    }
    // SAFETY: tag checked; the union's tag is its first member.
    unsafe {
        let c = node as *mut pg_sys::A_Const;
        if (*c).isnull || (*c).val.node.type_ != pg_sys::NodeTag::T_Integer {
            return None;
        }
        Some((*c).val.ival.ival)
    }
}

fn const_text(node: *mut pg_sys::Node) -> Option<String> {
    if tag(node)? != pg_sys::NodeTag::T_A_Const {
        return string_value(node);
    }
    // SAFETY: tag checked; the union's tag is its first member.
    unsafe {
        let c = node as *mut pg_sys::A_Const;
        if (*c).isnull {
            return None;
        }
        match (*c).val.node.type_ {
            pg_sys::NodeTag::T_String => cstr((*c).val.sval.sval),
            pg_sys::NodeTag::T_Integer => Some((*c).val.ival.ival.to_string()),
            _ => None,
        }
    }
}

/// `SET lock_timeout = 0` (or '0') turns the timeout off.
fn const_is_zero(args: *mut pg_sys::List) -> bool {
    match nodes(args).into_iter().next().and_then(const_text) {
        Some(v) => v.trim().trim_end_matches("ms").trim() == "0",
        None => true,
    }
}

/// `true`, `1 = 1`, `'a' = 'a'`, `true = true`, `x OR true`: a WHERE that keeps every row.
/// (Nesting deeper than 64 levels is not looked into: the parser allows thousands.)
fn always_true(node: *mut pg_sys::Node, depth: usize) -> bool {
    use pg_sys::NodeTag::*;
    if depth > 64 {
        return false;
    }
    match tag(node) {
        Some(T_A_Const) => {
            // SAFETY: tag checked.
            unsafe {
                let c = node as *mut pg_sys::A_Const;
                !(*c).isnull && (*c).val.node.type_ == T_Boolean && (*c).val.boolval.boolval
            }
        }
        Some(T_TypeCast) => {
            // 'true'::boolean, 't'::bool
            // SAFETY: tag checked.
            let (arg, t) = unsafe { ((*(node as *mut pg_sys::TypeCast)).arg, (*(node as *mut pg_sys::TypeCast)).typeName) };
            let is_bool = type_of(t).map(|(n, _)| n == "bool" || n == "boolean").unwrap_or(false);
            is_bool && matches!(const_text(arg).as_deref().map(str::to_ascii_lowercase).as_deref(), Some("true" | "t" | "yes" | "on" | "1"))
                || always_true(arg, depth + 1) && is_bool
        }
        Some(T_A_Expr) => {
            // SAFETY: tag checked.
            let (kind, name, l, r) = unsafe {
                let e = node as *mut pg_sys::A_Expr;
                ((*e).kind, (*e).name, (*e).lexpr, (*e).rexpr)
            };
            if kind != pg_sys::A_Expr_Kind::AEXPR_OP || names(name).last().map(String::as_str) != Some("=") {
                return false;
            }
            constant_repr(l).is_some() && constant_repr(l) == constant_repr(r)
        }
        Some(T_BoolExpr) => {
            // SAFETY: tag checked.
            let (op, args) = unsafe { ((*(node as *mut pg_sys::BoolExpr)).boolop, (*(node as *mut pg_sys::BoolExpr)).args) };
            let args = nodes(args);
            match op {
                pg_sys::BoolExprType::OR_EXPR => args.into_iter().any(|a| always_true(a, depth + 1)),
                pg_sys::BoolExprType::AND_EXPR => !args.is_empty() && args.into_iter().all(|a| always_true(a, depth + 1)),
                _ => false,
            }
        }
        _ => false,
    }
}

fn constant_repr(node: *mut pg_sys::Node) -> Option<String> {
    if tag(node)? != pg_sys::NodeTag::T_A_Const {
        return None;
    }
    // SAFETY: tag checked.
    unsafe {
        let c = node as *mut pg_sys::A_Const;
        if (*c).isnull {
            return None;
        }
        match (*c).val.node.type_ {
            pg_sys::NodeTag::T_Integer => Some(format!("i{}", (*c).val.ival.ival)),
            pg_sys::NodeTag::T_String => cstr((*c).val.sval.sval).map(|s| format!("s{s}")),
            pg_sys::NodeTag::T_Boolean => Some(format!("b{}", (*c).val.boolval.boolval)),
            pg_sys::NodeTag::T_Float => cstr((*c).val.fval.fval).map(|s| format!("f{s}")),
            _ => None,
        }
    }
}

/// Whether a utility option list (DefElem) has `name` switched on.
fn has_option(list: *mut pg_sys::List, name: &str) -> bool {
    nodes(list).into_iter().any(|n| {
        if tag(n) != Some(pg_sys::NodeTag::T_DefElem) {
            return false;
        }
        // SAFETY: tag checked.
        let (defname, arg) = unsafe { (cstr((*(n as *mut pg_sys::DefElem)).defname), (*(n as *mut pg_sys::DefElem)).arg) };
        defname.as_deref() == Some(name)
            && (arg.is_null() || !matches!(const_text(arg).as_deref(), Some("false" | "off" | "0")))
    })
}

pub fn pretty_bytes(b: i64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} bytes") } else { format!("{v:.0} {}", UNITS[u]) }
}


/// Parse and analyse in one step (migration_check, migration_add).
pub fn check(script: &str, thresholds: Thresholds) -> Result<(Vec<Finding>, Shape), parse::ParseError> {
    let statements = parse::parse(script)?;
    Ok(analyse(script, &statements, thresholds))
}

/// Whether a statement cannot run inside a transaction block (and so runs top-level, alone).
pub fn non_transactional(node: *mut pg_sys::Node) -> bool {
    use pg_sys::NodeTag::*;
    match tag(node) {
        // SAFETY (each arm): tag checked.
        Some(T_IndexStmt) => unsafe { (*(node as *mut pg_sys::IndexStmt)).concurrent },
        Some(T_DropStmt) => unsafe { (*(node as *mut pg_sys::DropStmt)).concurrent },
        Some(T_ReindexStmt) => unsafe { has_option((*(node as *mut pg_sys::ReindexStmt)).params, "concurrently") },
        Some(T_VacuumStmt) => unsafe { (*(node as *mut pg_sys::VacuumStmt)).is_vacuumcmd },
        Some(T_CreatedbStmt) | Some(T_DropdbStmt) | Some(T_CreateTableSpaceStmt) | Some(T_DropTableSpaceStmt)
        | Some(T_AlterSystemStmt) => true,
        _ => false,
    }
}
