#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn pg_check_finds_a_blocking_index_build_and_not_on_a_new_table() {
        Spi::run("CREATE TABLE public.mt_big (id int, v int); INSERT INTO public.mt_big SELECT g, g FROM generate_series(1, 1000) g").unwrap();
        let rules: Vec<String> = Spi::connect(|c| {
            c.select("SELECT rule FROM steward.migration_check('CREATE INDEX ON public.mt_big (v); CREATE TABLE public.mt_new (id bigint); CREATE INDEX ON public.mt_new (id)')", None, &[])
                .unwrap()
                .map(|r| r.get::<String>(1).unwrap().unwrap())
                .collect()
        });
        assert_eq!(rules, vec!["index_not_concurrent".to_string(), "missing_lock_timeout".to_string()]);
    }
}
