//! Duplicate and redundant indexes.
//!
//! Two indexes are *duplicates* when they are on the same table with the same access method,
//! key columns, INCLUDE columns, operator classes, collations, expressions and predicate.
//! An index is *redundant* (prefix-covered) when another valid B-tree on the same table has
//! its key columns as a leading prefix with the same operator classes and collations, the same
//! predicate, no expressions on either side, and covers its INCLUDE columns.
//!
//! The index proposed for dropping is never one that enforces something: primary keys,
//! unique and exclusion indexes, and indexes backing a constraint are kept.

/// What the analysis needs to know about one index.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexDef {
    pub oid: u32,
    pub table: u32,
    pub am: u32,
    pub is_btree: bool,
    /// Key column numbers (0 for an expression column).
    pub keys: Vec<i16>,
    /// INCLUDE column numbers.
    pub includes: Vec<i16>,
    /// Operator classes of the key columns.
    pub opclasses: Vec<u32>,
    /// Collations of the key columns (0 when not collatable).
    pub collations: Vec<u32>,
    /// Per-key sort options (`indoption`: DESC, NULLS FIRST).
    pub options: Vec<i16>,
    /// `pg_get_expr(indexprs)`.
    pub exprs: Option<String>,
    /// `pg_get_expr(indpred)`.
    pub pred: Option<String>,
    /// Primary key, unique, exclusion or constraint-backing: never proposed for dropping.
    pub enforces: bool,
    pub valid: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Duplicate,
    Redundant,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Duplicate => "duplicate",
            Kind::Redundant => "redundant",
        }
    }
}

/// `index` can be dropped because `kept` does its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub index: u32,
    pub kept: u32,
    pub kind: Kind,
}

fn same_definition(a: &IndexDef, b: &IndexDef) -> bool {
    a.table == b.table
        && a.am == b.am
        && a.keys == b.keys
        && a.includes == b.includes
        && a.opclasses == b.opclasses
        && a.collations == b.collations
        && a.options == b.options
        && a.exprs == b.exprs
        && a.pred == b.pred
}

/// Is `a` covered by `b` as a leading prefix (and not identical)?
fn prefix_covered(a: &IndexDef, b: &IndexDef) -> bool {
    if !(a.is_btree && b.is_btree) || a.table != b.table || a.am != b.am {
        return false;
    }
    if a.exprs.is_some() || b.exprs.is_some() || a.pred != b.pred {
        return false;
    }
    let n = a.keys.len();
    if n == 0 || n > b.keys.len() {
        return false;
    }
    if a.keys[..] != b.keys[..n]
        || a.opclasses.get(..n) != b.opclasses.get(..n)
        || a.collations.get(..n) != b.collations.get(..n)
        || a.options.get(..n) != b.options.get(..n)
    {
        return false;
    }
    let covered = |col: &i16| b.keys.contains(col) || b.includes.contains(col);
    if !a.includes.iter().all(covered) {
        return false;
    }
    // Same keys: only redundant when b carries strictly more INCLUDE columns.
    n < b.keys.len() || b.includes.len() > a.includes.len()
}

/// Every droppable index with the index that makes it droppable.  Each index is reported
/// once; an index proposed for dropping is never itself the reason to drop another.
pub fn find_redundant(defs: &[IndexDef]) -> Vec<Finding> {
    let mut by_table: std::collections::BTreeMap<u32, Vec<&IndexDef>> = Default::default();
    for d in defs.iter().filter(|d| d.valid) {
        by_table.entry(d.table).or_default().push(d);
    }
    let mut findings = Vec::new();
    for (_, mut group) in by_table {
        group.sort_by_key(|d| d.oid);
        let mut dropped: Vec<u32> = Vec::new();
        // Exact duplicates first: keep the enforcing one, else the oldest.
        for (i, a) in group.iter().enumerate() {
            for b in group.iter().skip(i + 1) {
                if dropped.contains(&a.oid) || dropped.contains(&b.oid) || !same_definition(a, b) {
                    continue;
                }
                let (drop, keep) = match (a.enforces, b.enforces) {
                    (true, true) => continue,
                    (true, false) => (b, a),
                    (false, true) => (a, b),
                    (false, false) => (b, a),
                };
                dropped.push(drop.oid);
                findings.push(Finding { index: drop.oid, kept: keep.oid, kind: Kind::Duplicate });
            }
        }
        // Then prefix-covered indexes, covered by an index that stays.
        for a in group.iter() {
            if a.enforces || dropped.contains(&a.oid) {
                continue;
            }
            if let Some(b) = group
                .iter()
                .find(|b| b.oid != a.oid && !dropped.contains(&b.oid) && prefix_covered(a, b))
            {
                dropped.push(a.oid);
                findings.push(Finding { index: a.oid, kept: b.oid, kind: Kind::Redundant });
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btree(oid: u32, keys: &[i16]) -> IndexDef {
        IndexDef {
            oid,
            table: 1,
            am: 403,
            is_btree: true,
            keys: keys.to_vec(),
            opclasses: keys.iter().map(|_| 1978).collect(),
            collations: keys.iter().map(|_| 0).collect(),
            options: keys.iter().map(|_| 0).collect(),
            valid: true,
            ..Default::default()
        }
    }

    #[test]
    fn exact_duplicate_keeps_the_older_or_the_enforcing_one() {
        let a = btree(10, &[1]);
        let b = btree(11, &[1]);
        assert_eq!(find_redundant(&[a.clone(), b.clone()]), vec![Finding { index: 11, kept: 10, kind: Kind::Duplicate }]);
        let b_unique = IndexDef { enforces: true, ..b };
        assert_eq!(find_redundant(&[a, b_unique]), vec![Finding { index: 10, kept: 11, kind: Kind::Duplicate }]);
    }

    #[test]
    fn two_enforcing_duplicates_are_not_flagged() {
        let a = IndexDef { enforces: true, ..btree(10, &[1]) };
        let b = IndexDef { enforces: true, ..btree(11, &[1]) };
        assert!(find_redundant(&[a, b]).is_empty());
    }

    #[test]
    fn prefix_is_redundant_but_unique_prefix_is_not() {
        let narrow = btree(10, &[1]);
        let wide = btree(11, &[1, 2]);
        assert_eq!(
            find_redundant(&[narrow.clone(), wide.clone()]),
            vec![Finding { index: 10, kept: 11, kind: Kind::Redundant }]
        );
        let unique_narrow = IndexDef { enforces: true, ..narrow };
        assert!(find_redundant(&[unique_narrow, wide]).is_empty());
    }

    #[test]
    fn differences_that_matter_are_not_flagged() {
        let base = btree(10, &[1]);
        let partial = IndexDef { oid: 11, pred: Some("(x > 0)".into()), ..btree(11, &[1]) };
        let other_opclass = IndexDef { oid: 12, opclasses: vec![3128], ..btree(12, &[1]) };
        let other_collation = IndexDef { oid: 13, collations: vec![950], ..btree(13, &[1]) };
        let expression = IndexDef { oid: 14, keys: vec![0], exprs: Some("lower(name)".into()), ..btree(14, &[0]) };
        let desc = IndexDef { oid: 15, options: vec![3], ..btree(15, &[1]) };
        let hash = IndexDef { oid: 16, am: 405, is_btree: false, ..btree(16, &[1]) };
        let other_table = IndexDef { table: 2, ..btree(17, &[1]) };
        let reversed = btree(18, &[2, 1]);
        let found = find_redundant(&[base, partial, other_opclass, other_collation, expression, desc, hash, other_table, reversed]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn invalid_indexes_are_ignored_and_includes_count() {
        let narrow = btree(10, &[1]);
        let invalid_wide = IndexDef { valid: false, ..btree(11, &[1, 2]) };
        assert!(find_redundant(&[narrow.clone(), invalid_wide]).is_empty());
        // narrow INCLUDE (3) is not covered by (1, 2).
        let narrow_incl = IndexDef { includes: vec![3], ..narrow.clone() };
        assert!(find_redundant(&[narrow_incl, btree(11, &[1, 2])]).is_empty());
        // Same key with more INCLUDE columns covers it.
        let wide_incl = IndexDef { oid: 12, includes: vec![2], ..btree(12, &[1]) };
        assert_eq!(
            find_redundant(&[narrow, wide_incl]),
            vec![Finding { index: 10, kept: 12, kind: Kind::Redundant }]
        );
    }

    #[test]
    fn a_dropped_index_does_not_justify_another_drop() {
        // 10 (1) redundant to 11 (1,2); 12 duplicate of 11.  11 is kept, 12 and 10 dropped.
        let found = find_redundant(&[btree(10, &[1]), btree(11, &[1, 2]), btree(12, &[1, 2])]);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.kept == 11));
    }
}
