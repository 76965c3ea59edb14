//! The binary `config_diff` against the tree version, on generated documents, in a server.

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
}
