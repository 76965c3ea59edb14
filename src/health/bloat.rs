//! Bloat estimates from planner statistics.
//!
//! The model: a freshly packed heap page holds `floor(usable / (tuple + line pointer))`
//! tuples, where `usable` is the page less its header and less the free space `fillfactor`
//! reserves, and `tuple` is the MAXALIGNed header (23 bytes plus the null bitmap when any
//! column has nulls) plus the average in-heap width of every column (`pg_statistic.stawidth`
//! weighted by `1 - stanullfrac`, aligned by `attalign`).  The in-heap width of a TOASTed value
//! is its pointer or compressed form, which is what ANALYZE measures, so TOAST needs no
//! special case for the heap itself.  Bloat is the share of the relation's pages beyond the
//! pages its live tuples need.  B-tree indexes use the same model with index tuples
//! (8-byte header, optional null bitmap, key and INCLUDE columns) and the B-tree page's
//! special space; dedup (PostgreSQL 13+) can make an index smaller than the model, which
//! then reads as 0 % bloat rather than a negative number.

/// Size of one buffer page.
pub const MAXALIGN: f64 = 8.0;
const PAGE_HEADER: f64 = 24.0;
const LINE_POINTER: f64 = 4.0;
const HEAP_TUPLE_HEADER: f64 = 23.0;
const INDEX_TUPLE_HEADER: f64 = 8.0;
const INDEX_NULL_BITMAP: f64 = 4.0;
const BTREE_SPECIAL: f64 = 16.0;

/// One attribute as the estimator sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// `pg_attribute.attlen`: > 0 fixed width, -1 varlena, -2 cstring.
    pub attlen: i16,
    /// `pg_attribute.attalign`: b'c', b's', b'i' or b'd'.
    pub attalign: u8,
    /// `pg_statistic.stawidth`, `None` when the column has no statistics.
    pub avg_width: Option<f64>,
    /// `pg_statistic.stanullfrac`, `None` when the column has no statistics.
    pub null_frac: Option<f64>,
}

/// How far a result can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidence {
    /// Statistics exist for every column and were gathered recently.
    Fresh,
    /// Statistics exist but are old or the table changed a lot since they were gathered.
    Stale,
    /// Some statistic is missing or unreadable: no number is given.
    Unknown,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Fresh => "fresh",
            Confidence::Stale => "stale",
            Confidence::Unknown => "unknown",
        }
    }
}

/// The outcome for one relation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Bytes the live tuples need when freshly packed.
    pub expected_bytes: f64,
    /// Bytes beyond that, never negative.
    pub bloat_bytes: f64,
    /// `bloat_bytes / actual_bytes × 100`, 0 for an empty relation.
    pub bloat_pct: f64,
    /// The modelled width of one tuple, header included.
    pub tuple_width: f64,
}

fn align_up(offset: f64, alignment: f64) -> f64 {
    (offset / alignment).ceil() * alignment
}

fn alignment_of(attalign: u8) -> f64 {
    match attalign {
        b'd' => 8.0,
        b'i' => 4.0,
        b's' => 2.0,
        _ => 1.0,
    }
}

/// Expected width of the data area of a tuple, `None` when any column lacks statistics.
/// Fixed-width columns and long varlenas are aligned; short varlenas (one-byte header,
/// under 127 bytes) are stored unaligned, as PostgreSQL does.
pub fn data_width(columns: &[Column]) -> Option<f64> {
    let mut offset = 0.0;
    for col in columns {
        let width = col.avg_width?;
        let nulls = col.null_frac?.clamp(0.0, 1.0);
        let present = 1.0 - nulls;
        if present <= 0.0 {
            continue;
        }
        if col.attlen > 0 || width > 126.0 {
            offset = align_up(offset, alignment_of(col.attalign));
        }
        offset += width.max(0.0) * present;
    }
    Some(offset)
}

fn has_nulls(columns: &[Column]) -> bool {
    columns.iter().any(|c| c.null_frac.unwrap_or(0.0) > 0.0)
}

/// The modelled on-page width of one heap tuple (header, bitmap and data, MAXALIGNed).
pub fn heap_tuple_width(columns: &[Column]) -> Option<f64> {
    let bitmap = if has_nulls(columns) {
        (columns.len() as f64 / 8.0).ceil()
    } else {
        0.0
    };
    let header = align_up(HEAP_TUPLE_HEADER + bitmap, MAXALIGN);
    Some(pad_tuple(header + data_width(columns)?, varying_width(columns)))
}

/// Whether tuples differ in length (a varlena column that is not always null).
fn varying_width(columns: &[Column]) -> bool {
    columns.iter().any(|c| c.attlen < 0 && c.null_frac.unwrap_or(0.0) < 1.0)
}

/// Every tuple is MAXALIGNed on the page.  Equal-length tuples pad to the next multiple;
/// tuples of varying length pad by (MAXALIGN - 1) / 2 bytes on average, which rounding the
/// average length up would overstate by several bytes per tuple.
pub fn pad_tuple(width: f64, varying: bool) -> f64 {
    if varying {
        width + (MAXALIGN - 1.0) / 2.0
    } else {
        align_up(width, MAXALIGN)
    }
}

/// Pages needed by `tuples` tuples of `width` bytes on pages of `block` bytes with `special`
/// bytes of special space, filled to `fillfactor` percent.
pub fn pages_needed(tuples: f64, width: f64, fillfactor: f64, block: f64, special: f64, max_per_page: f64) -> f64 {
    if tuples <= 0.0 {
        return 0.0;
    }
    let reserve = block * (100.0 - fillfactor.clamp(10.0, 100.0)) / 100.0;
    let usable = (block - PAGE_HEADER - special - reserve).max(width + LINE_POINTER);
    let per_page = (usable / (width + LINE_POINTER)).floor().clamp(1.0, max_per_page);
    (tuples / per_page).ceil()
}

fn finish(expected_pages: f64, actual_bytes: f64, block: f64, width: f64) -> Estimate {
    let expected_bytes = expected_pages * block;
    let bloat_bytes = (actual_bytes - expected_bytes).max(0.0);
    let bloat_pct = if actual_bytes > 0.0 {
        bloat_bytes / actual_bytes * 100.0
    } else {
        0.0
    };
    Estimate { expected_bytes, bloat_bytes, bloat_pct, tuple_width: width }
}

/// Heap bloat from a known average tuple width (used for pgstattuple's exact figures too).
pub fn heap_estimate_from_width(width: f64, live_tuples: f64, actual_bytes: f64, fillfactor: f64, block: f64) -> Estimate {
    let max_per_page = ((block - PAGE_HEADER) / (align_up(HEAP_TUPLE_HEADER, MAXALIGN) + LINE_POINTER)).floor();
    let pages = pages_needed(live_tuples, width, fillfactor, block, 0.0, max_per_page);
    finish(pages, actual_bytes, block, width)
}

/// Heap bloat from statistics; `None` when a column lacks statistics.
pub fn heap_estimate(columns: &[Column], live_tuples: f64, actual_bytes: f64, fillfactor: f64, block: f64) -> Option<Estimate> {
    let width = heap_tuple_width(columns)?;
    Some(heap_estimate_from_width(width, live_tuples, actual_bytes, fillfactor, block))
}

/// B-tree bloat from statistics of the key and INCLUDE columns; `None` when one is missing.
/// Leaf pages hold every tuple; internal pages hold one pivot per child page; one metapage.
pub fn btree_estimate(columns: &[Column], tuples: f64, actual_bytes: f64, fillfactor: f64, block: f64) -> Option<Estimate> {
    let bitmap = if has_nulls(columns) { INDEX_NULL_BITMAP } else { 0.0 };
    let width = align_up(INDEX_TUPLE_HEADER + bitmap + data_width(columns)?, MAXALIGN);
    let max_per_page = ((block - PAGE_HEADER - BTREE_SPECIAL) / (INDEX_TUPLE_HEADER + LINE_POINTER)).floor();
    let leaf = pages_needed(tuples, width, fillfactor, block, BTREE_SPECIAL, max_per_page);
    let mut internal = 0.0;
    let mut level = leaf;
    while level > 1.0 {
        // Internal pages are filled to 70 % by page splits in the worst case, 100 % at best;
        // use the B-tree default of 70 % for non-leaf pages.
        level = pages_needed(level, width, 70.0, block, BTREE_SPECIAL, max_per_page);
        internal += level;
    }
    let meta = 1.0;
    Some(finish(leaf + internal + meta, actual_bytes, block, width))
}

/// How much to trust statistics that are `analyze_age_days` old (`None`: never analysed)
/// on a table with `modified_since_analyze` changes out of `live_tuples` rows.
pub fn confidence(
    stats_complete: bool,
    analyze_age_days: Option<f64>,
    modified_since_analyze: f64,
    live_tuples: f64,
    overdue_days: f64,
) -> Confidence {
    if !stats_complete {
        return Confidence::Unknown;
    }
    let Some(age) = analyze_age_days else {
        // Statistics exist (restored, or gathered before a stats reset): usable but old.
        return Confidence::Stale;
    };
    let churn = if live_tuples > 0.0 { modified_since_analyze / live_tuples } else { 0.0 };
    if age > overdue_days || churn > 0.2 {
        Confidence::Stale
    } else {
        Confidence::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int4() -> Column {
        Column { attlen: 4, attalign: b'i', avg_width: Some(4.0), null_frac: Some(0.0) }
    }
    fn int8() -> Column {
        Column { attlen: 8, attalign: b'd', avg_width: Some(8.0), null_frac: Some(0.0) }
    }
    fn text(width: f64, nulls: f64) -> Column {
        Column { attlen: -1, attalign: b'i', avg_width: Some(width), null_frac: Some(nulls) }
    }

    #[test]
    fn tuple_width_matches_postgres_layout() {
        // (int4, int8): header 24, int4 at 24..28, int8 aligned to 32..40 -> 40.
        assert_eq!(heap_tuple_width(&[int4(), int8()]), Some(40.0));
        // (int8, int4): 24 + 8 + 4 = 36 -> MAXALIGN 40.
        assert_eq!(heap_tuple_width(&[int8(), int4()]), Some(40.0));
        // A single int4: 28 -> 32.
        assert_eq!(heap_tuple_width(&[int4()]), Some(32.0));
    }

    #[test]
    fn null_bitmap_only_when_nulls_exist() {
        let without = heap_tuple_width(&[int4(), text(10.0, 0.0)]).unwrap_or_default();
        let with = heap_tuple_width(&[int4(), text(10.0, 0.5)]).unwrap_or_default();
        // 24 + 4 + 10 = 38 plus 3.5 average padding; with nulls: 24 (23 + 1 bitmap) + 4 + 5 = 33 + 3.5.
        assert_eq!(without, 41.5);
        assert_eq!(with, 36.5);
        let all_null = heap_tuple_width(&[text(100.0, 1.0)]).unwrap_or_default();
        assert_eq!(all_null, 24.0);
    }

    #[test]
    fn missing_statistics_give_no_number() {
        let missing = Column { attlen: 4, attalign: b'i', avg_width: None, null_frac: None };
        assert_eq!(heap_estimate(&[int4(), missing], 1000.0, 8192.0 * 10.0, 100.0, 8192.0), None);
        assert_eq!(btree_estimate(&[missing], 1000.0, 8192.0 * 10.0, 90.0, 8192.0), None);
    }

    #[test]
    fn packed_table_has_no_bloat_and_half_empty_table_half() {
        // (int4): 32-byte tuples + 4-byte pointer; (8192 - 24) / 36 = 226 per page.
        let cols = [int4()];
        let tuples = 226.0 * 100.0;
        let packed = heap_estimate(&cols, tuples, 100.0 * 8192.0, 100.0, 8192.0).unwrap_or(Estimate {
            expected_bytes: 0.0, bloat_bytes: 0.0, bloat_pct: -1.0, tuple_width: 0.0,
        });
        assert_eq!(packed.bloat_pct, 0.0);
        let half = heap_estimate(&cols, tuples / 2.0, 100.0 * 8192.0, 100.0, 8192.0).map(|e| e.bloat_pct);
        assert_eq!(half, Some(50.0));
    }

    #[test]
    fn fillfactor_reserves_space() {
        let cols = [int4()];
        let full = pages_needed(10_000.0, 32.0, 100.0, 8192.0, 0.0, 291.0);
        let half = pages_needed(10_000.0, 32.0, 50.0, 8192.0, 0.0, 291.0);
        assert!(half > full * 1.9, "{half} vs {full}");
        assert!(heap_estimate(&cols, 0.0, 0.0, 100.0, 8192.0).map(|e| e.bloat_pct) == Some(0.0));
    }

    #[test]
    fn heap_pages_respect_max_tuples_per_page() {
        // Tiny tuples are capped at MaxHeapTuplesPerPage (291 with 8 kB pages).
        let pages = heap_estimate_from_width(24.0, 291.0 * 10.0, 10.0 * 8192.0, 100.0, 8192.0);
        assert_eq!(pages.expected_bytes, 10.0 * 8192.0);
    }

    #[test]
    fn btree_model_is_plausible() {
        // int4 key: 16-byte index tuples, 20 with pointer; leaf usable at 90 % fill
        // = 8192 - 24 - 16 - 819.2 -> 366 per page.
        let est = btree_estimate(&[int4()], 366.0 * 100.0, 102.0 * 8192.0, 90.0, 8192.0);
        let est = est.unwrap_or(Estimate { expected_bytes: 0.0, bloat_bytes: 0.0, bloat_pct: -1.0, tuple_width: 0.0 });
        assert_eq!(est.tuple_width, 16.0);
        assert!(est.bloat_pct >= 0.0 && est.bloat_pct < 1.0, "{:?}", est);
    }

    #[test]
    fn confidence_levels() {
        assert_eq!(confidence(false, Some(0.0), 0.0, 100.0, 7.0), Confidence::Unknown);
        assert_eq!(confidence(true, Some(1.0), 0.0, 100.0, 7.0), Confidence::Fresh);
        assert_eq!(confidence(true, Some(8.0), 0.0, 100.0, 7.0), Confidence::Stale);
        assert_eq!(confidence(true, Some(1.0), 50.0, 100.0, 7.0), Confidence::Stale);
        assert_eq!(confidence(true, None, 0.0, 100.0, 7.0), Confidence::Stale);
    }
}
