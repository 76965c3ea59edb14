//! CSV export of the audit history (RFC 4180 through the csv crate), with spreadsheet formula
//! injection neutralised: a cell starting with `=`, `+`, `-`, `@`, their full-width forms
//! (`＝` U+FF1D, `＋` U+FF0B, `－` U+FF0D, `＠` U+FF20, which spreadsheets normalise to the
//! ASCII ones), tab, carriage return or line feed is prefixed with `'` so no spreadsheet
//! evaluates it.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use serde_json::Value;

use crate::common::jsonb::Doc;

/// Whether a spreadsheet may read a cell starting with `c` as a formula.
fn formula_start(c: char) -> bool {
    matches!(
        c,
        '=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}'
    )
}

pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some(c) if formula_start(c) => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// Header plus rows (each an array of strings or nulls) as one CSV text, CRLF line ends.
pub fn to_csv(header: &[String], rows: &Value) -> Result<String, String> {
    let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    out.write_record(header).map_err(|e| e.to_string())?;
    for row in rows.as_array().map(Vec::as_slice).unwrap_or_default() {
        let cells: Vec<String> = row
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|c| match c {
                Value::Null => String::new(),
                Value::String(s) => neutralise(s),
                other => neutralise(&other.to_string()),
            })
            .collect();
        out.write_record(&cells).map_err(|e| e.to_string())?;
    }
    let bytes = out.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[pg_extern(immutable, parallel_safe)]
fn _csv(header: Vec<String>, rows: Doc) -> Result<String, ErrorReport> {
    to_csv(&header, &rows.0).map_err(|e| crate::common::spi_failure("the CSV export", pgrx::spi::SpiError::NoTupleTable).set_detail(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_through_a_csv_parser() {
        let rows = json!([
            ["1", "ai_config", "a,b", "user \"quoted\"", "2026-01-01", "line one\nline two"],
            ["2", "ai_config", null, "=HYPERLINK(\"http://x\")", "+1", "@SUM(A1)"],
            ["3", "user_preference", "-2", "\tx", "plain", ""]
        ]);
        let header: Vec<String> = ["ID", "Config Type", "Config ID", "Changed By", "Changed At", "Change Reason"]
            .iter().map(|s| s.to_string()).collect();
        let text = to_csv(&header, &rows).expect("csv");
        assert!(text.starts_with("ID,Config Type,Config ID,Changed By,Changed At,Change Reason\r\n"));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let parsed: Vec<Vec<String>> = reader.records().map(|r| r.expect("record").iter().map(str::to_string).collect()).collect();
        assert_eq!(parsed[0], vec!["1", "ai_config", "a,b", "user \"quoted\"", "2026-01-01", "line one\nline two"]);
        assert_eq!(parsed[1], vec!["2", "ai_config", "", "'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)"]);
        assert_eq!(parsed[2], vec!["3", "user_preference", "'-2", "'\tx", "plain", ""]);
    }

    #[test]
    fn full_width_and_control_starts_are_neutralised() {
        for cell in ["\u{FF1D}SUM(A1)", "\u{FF0B}1", "\u{FF0D}1", "\u{FF20}SUM(A1)", "\tx", "\rx", "\nx", "=1", "+1", "-1", "@x"] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["plain", "1=1", " x", "", "\u{FF1E}x", "'quoted"] {
            assert_eq!(neutralise(cell), cell, "{cell:?}");
        }
        // Through the whole export: the full-width equals sign never starts a cell.
        let rows = json!([["1", "ai_config", null, "\u{FF1D}HYPERLINK(\"http://x\")", "\u{FF20}a", "\rcmd"]]);
        let header: Vec<String> = ["ID", "Config Type", "Config ID", "Changed By", "Changed At", "Change Reason"]
            .iter().map(|s| s.to_string()).collect();
        let text = to_csv(&header, &rows).expect("csv");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let parsed: Vec<String> = reader.records().next().expect("row").expect("record").iter().map(str::to_string).collect();
        assert_eq!(parsed[3], "'\u{FF1D}HYPERLINK(\"http://x\")");
        assert_eq!(parsed[4], "'\u{FF20}a");
        assert_eq!(parsed[5], "'\rcmd");
    }
}
