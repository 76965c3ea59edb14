//! The binary `config_diff` against the tree version, on generated documents, in a server;
//! and the resource limits of every jsonb walker (issue #13): deep, wide and large documents
//! and hostile patches fail with 54001/54000 and the backend goes on.

use std::panic::AssertUnwindSafe;

use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;

/// Run `sql` in a subtransaction (as a PL/pgSQL exception block does) and return the
/// SQLSTATE it failed with, or `None` when it succeeded.  A Rust panic shows as XX000.
pub(crate) fn sqlstate_of(sql: &str) -> Option<String> {
    // SAFETY: the PL/pgSQL exception-block pattern: a subtransaction around the statement,
    // rolled back on error, with the caller's memory context and resource owner put back.
    let (context, owner) = unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        (context, owner)
    };
    let code = |r: &pgrx::pg_sys::panic::ErrorReportWithLevel| format!("{:?}", r.sql_error_code());
    let result: Result<(), String> = PgTryBuilder::new(AssertUnwindSafe(|| {
        Spi::run(sql).map_err(|e| format!("spi: {e}"))
    }))
    .catch_others(|e| match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => Err(code(&r)),
        CaughtError::RustPanic { ereport, .. } => Err(format!("panic {}", code(&ereport))),
    })
    .execute();
    // SAFETY: closes the subtransaction begun above, then restores what it changed.
    unsafe {
        if result.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    }
    result.err().map(|c| sqlstate(&c))
}

/// "ERRCODE_STATEMENT_TOO_COMPLEX" → "54001" (the names pgrx's enum prints).
fn sqlstate(debug_name: &str) -> String {
    let known = [
        ("ERRCODE_STATEMENT_TOO_COMPLEX", "54001"),
        ("ERRCODE_PROGRAM_LIMIT_EXCEEDED", "54000"),
        ("ERRCODE_INVALID_PARAMETER_VALUE", "22023"),
        ("ERRCODE_INVALID_TEXT_REPRESENTATION", "22P02"),
        ("ERRCODE_UNTRANSLATABLE_CHARACTER", "22P05"),
        ("ERRCODE_INTERNAL_ERROR", "XX000"),
    ];
    known.iter().find(|(n, _)| debug_name.ends_with(n)).map(|(_, c)| c.to_string()).unwrap_or_else(|| debug_name.to_string())
}

/// The backend still answers.
pub(crate) fn alive() -> bool {
    Spi::get_one::<i32>("SELECT 1").ok().flatten() == Some(1)
}

/// `n` nested arrays around `1`, as SQL text building the jsonb.
pub(crate) fn deep_array_sql(n: usize) -> String {
    format!("(repeat('[', {n}) || '1' || repeat(']', {n}))::jsonb")
}

/// `n` nested objects `{"a": {"a": ... 1}}`, as SQL text building the jsonb.
pub(crate) fn deep_object_sql(n: usize) -> String {
    format!("(repeat('{{\"a\": ', {n}) || '1' || repeat('}}', {n}))::jsonb")
}

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;
    use serde_json::{json, Map, Value};

    use crate::diff::tree;

    /// A small deterministic generator (no proptest inside the server build).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }

        fn key(&mut self) -> String {
            const KEYS: [&str; 8] = ["a", "b", "model", "topP", "x.y", "long_key_name", "é", "k"];
            KEYS[self.next(KEYS.len() as u64) as usize].to_string()
        }

        fn value(&mut self, depth: u32) -> Value {
            match self.next(if depth == 0 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(self.next(2) == 0),
                2 => json!(self.next(5) as i64 - 2),
                3 => json!(self.next(4) as f64 / 4.0),
                4 => Value::String(["", "x", "claude"][self.next(3) as usize].to_string()),
                5 => Value::Array((0..self.next(3)).map(|_| self.value(depth - 1)).collect()),
                _ => self.object(depth - 1),
            }
        }

        fn object(&mut self, depth: u32) -> Value {
            let mut m = Map::new();
            for _ in 0..self.next(5) {
                let k = self.key();
                m.insert(k, self.value(depth));
            }
            Value::Object(m)
        }

        /// A variation of `v`: some keys changed, dropped or added, recursively.
        fn mutate(&mut self, v: &Value, depth: u32) -> Value {
            match v {
                Value::Object(m) => {
                    let mut out = Map::new();
                    for (k, item) in m {
                        match self.next(6) {
                            0 => {}
                            1 => {
                                out.insert(k.clone(), self.value(depth));
                            }
                            _ => {
                                out.insert(k.clone(), self.mutate(item, depth.saturating_sub(1)));
                            }
                        }
                    }
                    if self.next(3) == 0 {
                        let k = self.key();
                        out.insert(k, self.value(depth));
                    }
                    Value::Object(out)
                }
                other => other.clone(),
            }
        }
    }

    fn sorted(mut d: Value) -> Value {
        for part in ["added", "modified", "removed"] {
            if let Some(items) = d.get_mut(part).and_then(Value::as_array_mut) {
                items.sort_by_key(|e| e["path"].as_str().unwrap_or("").to_string());
            }
        }
        d
    }

    #[pg_test]
    fn binary_config_diff_agrees_with_the_tree_version() {
        let mut g = Gen(42);
        let mut nonempty = 0;
        for _ in 0..400 {
            let a = g.object(3);
            let b = if g.next(5) == 0 { a.clone() } else { g.mutate(&a, 3) };
            let ours = Spi::get_one_with_args::<JsonB>(
                "SELECT steward.config_diff($1, $2)",
                &[JsonB(a.clone()).into(), JsonB(b.clone()).into()],
            )
            .expect("config_diff runs")
            .expect("a result")
            .0;
            let expected = tree::config_diff(&a, &b).expect("objects");
            if expected != json!({"added": [], "modified": [], "removed": []}) {
                nonempty += 1;
            }
            // Numbers compare by value (1 and 1.0 are the same change): normalise through jsonb.
            let expected = Spi::get_one_with_args::<JsonB>("SELECT $1::jsonb", &[JsonB(expected).into()])
                .expect("round trip")
                .expect("a value")
                .0;
            assert_eq!(sorted(ours), sorted(expected), "a = {a}\nb = {b}");
        }
        assert!(nonempty > 200, "the generator made too few real differences: {nonempty}");
        assert_eq!(crate::diff::binary::FALLBACKS.with(|f| f.get()), 0, "every pair took the binary path");
    }

    /// Objects past 16 pairs store end offsets in every 32nd entry instead of lengths.
    #[pg_test]
    fn binary_config_diff_reads_large_objects() {
        let mut a = Map::new();
        let mut b = Map::new();
        for i in 0..150 {
            let key = format!("key{i:03}{}", "x".repeat(i % 7));
            let value = json!({"n": i, "s": "v".repeat(i % 40), "f": i as f64 / 8.0, "arr": [i, i + 1]});
            a.insert(key.clone(), value.clone());
            match i % 10 {
                0 => {}
                1 => {
                    b.insert(key, json!({"n": i + 1, "s": "changed", "f": 0.5, "arr": [i]}));
                }
                _ => {
                    b.insert(key, value);
                }
            }
        }
        for i in 0..20 {
            b.insert(format!("new{i}"), json!([i, "x", null, true]));
        }
        let (a, b) = (Value::Object(a), Value::Object(b));
        let ours = Spi::get_one_with_args::<JsonB>("SELECT steward.config_diff($1, $2)", &[JsonB(a.clone()).into(), JsonB(b.clone()).into()])
            .expect("config_diff runs")
            .expect("a result")
            .0;
        let expected = tree::config_diff(&a, &b).expect("objects");
        let expected = Spi::get_one_with_args::<JsonB>("SELECT $1::jsonb", &[JsonB(expected).into()]).expect("round trip").expect("a value").0;
        assert_eq!(ours["removed"].as_array().map(Vec::len), Some(15));
        assert_eq!(ours["added"].as_array().map(Vec::len), Some(20));
        assert_eq!(sorted(ours), sorted(expected));
        assert_eq!(crate::diff::binary::FALLBACKS.with(|f| f.get()), 0, "the large objects took the binary path");
    }

    #[pg_test]
    fn binary_config_diff_uses_jsonb_equality() {
        let same = Spi::get_one::<JsonB>(r#"SELECT steward.config_diff('{"a": 1.0, "b": [1.50, {"c": 2}]}', '{"b": [1.5, {"c": 2.00}], "a": 1}')"#)
            .expect("runs")
            .expect("a result")
            .0;
        assert_eq!(same, json!({"added": [], "modified": [], "removed": []}));
    }

    #[pg_test(error = "old must be a JSON object")]
    fn binary_config_diff_refuses_an_array() {
        let _ = Spi::get_one::<JsonB>("SELECT steward.config_diff('[]', '{}')");
    }

    #[pg_test(error = "new must be a JSON object")]
    fn binary_config_diff_refuses_null() {
        let _ = Spi::get_one::<JsonB>("SELECT steward.config_diff('{}', NULL)");
    }

    use super::{alive, deep_array_sql, deep_object_sql, sqlstate_of};
    use crate::common::jsonb::{MAX_BYTES, MAX_DEPTH};

    fn fails_with(sql: &str, expected: &str) {
        assert_eq!(sqlstate_of(sql).as_deref(), Some(expected), "{sql}");
        assert!(alive(), "the backend answers after {sql}");
    }

    /// 100 000 levels: PostgreSQL's own parser stops at its stack limit (54001); 1 500
    /// levels parse, and every jsonb function refuses them with 54001, never a crash.
    #[pg_test]
    fn deep_documents_fail_with_54001() {
        fails_with(&format!("SELECT steward.jsonb_patch({}, '[]')", deep_array_sql(100_000)), "54001");
        let too_deep = MAX_DEPTH + 500;
        for doc in [deep_array_sql(too_deep), deep_object_sql(too_deep)] {
            fails_with(&format!("SELECT steward.jsonb_patch({doc}, '[]')"), "54001");
            fails_with(&format!("SELECT steward.jsonb_patch('{{}}', jsonb_build_array(jsonb_build_object('op', 'add', 'path', '/x', 'value', {doc})))"), "54001");
            fails_with(&format!("SELECT steward.jsonb_merge_patch({doc}, '{{}}')"), "54001");
            fails_with(&format!("SELECT steward.jsonb_merge_patch('{{}}', {doc})"), "54001");
            fails_with(&format!("SELECT steward.jsonb_diff_patch({doc}, '[]')"), "54001");
            fails_with(&format!("SELECT steward.jsonb_diff_patch('[]', {doc})"), "54001");
        }
        // Deep objects on both sides of config_diff, different only at the bottom: the binary
        // walker descends to the limit.
        let b = format!("(repeat('{{\"a\": ', {too_deep}) || '2' || repeat('}}', {too_deep}))::jsonb");
        fails_with(&format!("SELECT steward.config_diff({}, {b})", deep_object_sql(too_deep)), "54001");
    }

    /// Just inside the limit everything works (and the result keeps its depth).
    #[pg_test]
    fn documents_within_the_depth_limit_work() {
        let ok = MAX_DEPTH - 10;
        let doc = deep_object_sql(ok);
        let same = Spi::get_one::<bool>(&format!("SELECT steward.jsonb_patch({doc}, '[]') = {doc}")).expect("patch runs");
        assert_eq!(same, Some(true));
        let merged = Spi::get_one::<bool>(&format!("SELECT steward.jsonb_merge_patch({doc}, {doc}) = {doc}")).expect("merge runs");
        assert_eq!(merged, Some(true));
        let empty = Spi::get_one::<bool>(&format!("SELECT steward.jsonb_diff_patch({doc}, {doc}) = '[]'")).expect("diff runs");
        assert_eq!(empty, Some(true));
        let diff = Spi::get_one::<i64>(&format!("SELECT jsonb_array_length(steward.config_diff({doc}, '{{}}') -> 'removed')")).expect("diff");
        assert_eq!(diff, Some(1));
    }

    /// The attack of issue #13: copying `/a` into `/a/a` over and over nests one level per
    /// operation (it recursed until SIGSEGV).  Now the operation that would pass the limit
    /// fails with 54001 and names itself.
    #[pg_test]
    fn nested_copy_patch_fails_with_54001() {
        let patch = "(SELECT jsonb_agg('{\"op\": \"copy\", \"from\": \"/a\", \"path\": \"/a/a\"}'::jsonb) FROM generate_series(1, 2000))";
        fails_with(&format!("SELECT steward.jsonb_patch('{{\"a\": {{}}}}', {patch})"), "54001");
        // The same with `add` of values at ever deeper paths.
        let adds = "(SELECT jsonb_agg(jsonb_build_object('op', 'add', 'path', '/' || repeat('a/', g - 1) || 'a', 'value', '{}'::jsonb)) FROM generate_series(1, 1500) g)";
        fails_with(&format!("SELECT steward.jsonb_patch('{{}}', {adds})"), "54001");
        // A short run of the same is fine.
        let short = "(SELECT jsonb_agg('{\"op\": \"copy\", \"from\": \"/a\", \"path\": \"/a/a\"}'::jsonb) FROM generate_series(1, 50))";
        let depth = Spi::get_one::<i32>(&format!(
            "SELECT length(steward.jsonb_patch('{{\"a\": {{}}}}', {short})::text) - length(replace(steward.jsonb_patch('{{\"a\": {{}}}}', {short})::text, '{{', ''))"
        ))
        .expect("short patch runs");
        assert_eq!(depth, Some(52));
    }

    /// The other attack: copying the document into itself doubles it each time (the Rust
    /// allocator aborted).  The copy that would pass the size limit fails with 54000 first.
    #[pg_test]
    fn doubling_patch_fails_with_54000() {
        let patch = "(SELECT jsonb_agg(jsonb_build_object('op', 'copy', 'from', '', 'path', '/k' || g)) FROM generate_series(1, 64) g)";
        fails_with(&format!("SELECT steward.jsonb_patch(jsonb_build_object('seed', repeat('x', 4096)), {patch})"), "54000");
        // Adding a large value many times to a large document (each input within the limit).
        let adds = "(SELECT jsonb_agg(jsonb_build_object('op', 'add', 'path', '/k' || g, 'value', repeat('y', 1048576))) FROM generate_series(1, 40) g)";
        fails_with(&format!("SELECT steward.jsonb_patch(jsonb_build_object('base', repeat('z', 30 * 1048576)), {adds})"), "54000");
        // A wide patch: more operations than the limit.
        let wide = format!("(SELECT jsonb_agg('{{\"op\": \"test\", \"path\": \"\", \"value\": {{}}}}'::jsonb) FROM generate_series(1, {}))", crate::diff::tree::MAX_PATCH_OPERATIONS + 1);
        fails_with(&format!("SELECT steward.jsonb_patch('{{}}', {wide})"), "54000");
    }

    /// Documents larger than the limit are refused before they are read.
    #[pg_test]
    fn large_documents_fail_with_54000() {
        let big = format!("jsonb_build_array(repeat('x', {}))", MAX_BYTES + 1024);
        fails_with(&format!("SELECT steward.jsonb_merge_patch({big}, '{{}}')"), "54000");
        fails_with(&format!("SELECT steward.config_diff(jsonb_build_object('a', {big}), '{{}}')"), "54000");
        fails_with(&format!("SELECT steward.validate_ai_config(jsonb_build_object('a', {big}))"), "54000");
    }

    /// Paths grow with depth: 200 levels of 4 000-character keys, a changed leaf on each level,
    /// would make a diff of ~80 MB of paths from 800 kB of input.  Refused with 54000.
    #[pg_test]
    fn quadratic_diff_paths_fail_with_54000() {
        let n = 200;
        let key = "k".repeat(4000);
        let doc = |v: u8| format!("(repeat('{{\"v\": {v}, \"{key}\": ', {n}) || '1' || repeat('}}', {n}))::jsonb");
        fails_with(&format!("SELECT steward.config_diff({}, {})", doc(1), doc(2)), "54000");
        fails_with(&format!("SELECT steward.jsonb_diff_patch({}, {})", doc(1), doc(2)), "54000");
        // Wide but flat: 200 000 keys diff fine.
        let wide = Spi::get_one::<i64>(
            "SELECT jsonb_array_length(steward.config_diff('{}', (SELECT jsonb_object_agg('k' || g, g) FROM generate_series(1, 200000) g)) -> 'added')",
        )
        .expect("wide diff");
        assert_eq!(wide, Some(200_000));
    }

    /// Random deep and wide documents and patches (proptest, in the server): every call
    /// succeeds or fails with 22023/22P02/54000/54001 — never XX000, never a crash.
    #[pg_test]
    fn random_documents_and_patches_never_crash() {
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{Config, TestRunner};

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(|n| json!(n)),
                "[a-z/~0-9.]{0,8}".prop_map(Value::String),
            ];
            leaf.prop_recursive(6, 64, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z~/0-9]{0,3}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }
        fn pointer() -> impl Strategy<Value = String> {
            prop::collection::vec(prop_oneof!["[a-z~/]{0,2}", "[0-9]", Just("-".to_string())], 0..4)
                .prop_map(|tokens| tokens.iter().map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect())
        }
        fn operation() -> impl Strategy<Value = Value> {
            (prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test", "bogus"]), pointer(), pointer(), value())
                .prop_map(|(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}))
        }
        // Deep and wide shapes SQL builds (beyond what the generator nests).
        let shapes = [
            deep_array_sql(MAX_DEPTH - 1),
            deep_object_sql(MAX_DEPTH + 1),
            "(SELECT jsonb_agg(g) FROM generate_series(1, 20000) g)".to_string(),
            "(SELECT jsonb_object_agg('k' || g, jsonb_build_array(g)) FROM generate_series(1, 20000) g)".to_string(),
        ];
        let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
        let strategy = (value(), value(), prop::collection::vec(operation(), 0..12), 0..shapes.len() + 1, any::<bool>());
        let allowed = ["22023", "22P02", "54000", "54001"];
        let mut failures = 0;
        for _ in 0..48 {
            let (a, b, ops, shape, doubling) = strategy.new_tree(&mut runner).expect("generate").current();
            let mut ops = Value::Array(ops);
            if doubling {
                // A self-copy tail: the doubling attack mixed into random patches.
                if let Value::Array(list) = &mut ops {
                    for g in 0..40 {
                        list.push(json!({"op": "copy", "from": "", "path": format!("/d{g}")}));
                    }
                }
            }
            let lit = |v: &Value| format!("'{}'::jsonb", v.to_string().replace('\'', "''"));
            let doc = if shape < shapes.len() { shapes[shape].clone() } else { lit(&a) };
            for sql in [
                format!("SELECT steward.jsonb_patch({doc}, {})", lit(&ops)),
                format!("SELECT steward.jsonb_patch({}, {})", lit(&a), lit(&ops)),
                format!("SELECT steward.jsonb_merge_patch({doc}, {})", lit(&b)),
                format!("SELECT steward.jsonb_merge_patch({}, {doc})", lit(&b)),
                format!("SELECT steward.jsonb_diff_patch({doc}, {})", lit(&b)),
                format!("SELECT steward.config_diff({doc}, {})", lit(&b)),
                format!("SELECT steward.config_diff(jsonb_build_object('x', {doc}), jsonb_build_object('x', {}))", lit(&a)),
                format!("SELECT steward.validate_ai_config({doc})"),
                format!("SELECT steward.validate_user_preferences(jsonb_build_object('notifications', {doc}))"),
                format!("SELECT steward._resolve_layers('ai_config', ARRAY[{doc}, {}])", lit(&b)),
            ] {
                if let Some(state) = sqlstate_of(&sql) {
                    assert!(allowed.contains(&state.as_str()), "{state} from {sql:.300}");
                    failures += 1;
                }
                assert!(alive(), "the backend answers after {sql:.300}");
            }
        }
        assert!(failures > 0, "some generated calls are refused");
    }
}
