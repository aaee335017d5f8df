//! `text/csv` scoring bodies: a header row naming the columns (in any order), then one
//! row per record. Cells are read as ingest reads CSV: text coerced to the column's type
//! by [`freshet_core::FieldType::coerce`], an empty cell is null. Text is never taken for
//! a number, so timestamps must be RFC 3339 and dates `YYYY-MM-DD` (epoch numbers are
//! accepted only where JSON carries them as numbers), exactly as for training data.

use super::assemble::{header_slots, reorder_rows};
use super::json::Ctx;
use super::{FormatError, InputColumn, Limits, RequestFormat, ScoringRequest};
use freshet_core::Value;

/// Parse a CSV body with a header row.
pub(crate) fn parse_csv(
    body: &[u8],
    columns: &[InputColumn],
    limits: &Limits,
) -> Result<ScoringRequest, FormatError> {
    let ctx = Ctx::new(columns, limits);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(FormatError::Empty);
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        // Row lengths are checked here, to report the row index rather than a line.
        .flexible(true)
        .from_reader(body);
    let names: Vec<String> = reader
        .byte_headers()
        .map_err(|e| csv_error(&e))?
        .iter()
        .map(|h| utf8(h, 1).map(|h| h.trim().to_owned()))
        .collect::<Result<_, _>>()?;
    let slots = header_slots(&ctx, &names)?;
    let mut raw = Vec::new();
    let mut rec = ::csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(&e))?
    {
        if raw.len() >= limits.max_rows {
            return Err(ctx.too_many_rows());
        }
        let line = rec.position().map_or(0, ::csv::Position::line);
        let row = rec
            .iter()
            .map(|cell| {
                Ok(if cell.is_empty() {
                    Value::Null
                } else {
                    Value::Str(utf8(cell, line)?.to_owned())
                })
            })
            .collect::<Result<Vec<_>, FormatError>>()?;
        raw.push(row);
    }
    Ok(ScoringRequest {
        rows: reorder_rows(&ctx, &slots, raw)?,
        client_request_id: None,
        routing_key: None,
        format: RequestFormat::Csv,
    })
}

fn utf8(bytes: &[u8], line: u64) -> Result<&str, FormatError> {
    std::str::from_utf8(bytes).map_err(|_| FormatError::Csv {
        line,
        message: "invalid UTF-8".into(),
    })
}

/// The csv crate's errors, reduced to a line and a fixed message (its messages may
/// quote field contents).
fn csv_error(e: &::csv::Error) -> FormatError {
    let line = e.position().map_or(0, ::csv::Position::line);
    let message = match e.kind() {
        ::csv::ErrorKind::Utf8 { .. } => "invalid UTF-8",
        _ => "unreadable CSV",
    };
    FormatError::Csv {
        line,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::parse_invocations;
    use crate::formats::testutil::{CARD, EMAIL, assert_no_leak, columns, row0, row1};

    fn parse(body: &str) -> Result<ScoringRequest, FormatError> {
        parse_invocations(
            Some("text/csv; charset=utf-8"),
            body.as_bytes(),
            &columns(),
            &Limits::default(),
        )
    }

    #[test]
    fn round_trips_two_rows() {
        let body = "amount,count,flag,name,ts\n\
                    12,3,true,ann,2026-11-21T10:00:00Z\n\
                    -0.5,-7,false,bob,2023-11-14T22:13:20Z\n";
        let req = parse(body).unwrap();
        assert_eq!(req.rows, vec![row0(), row1()]);
        assert_eq!(req.format, RequestFormat::Csv);
        assert_eq!(req.client_request_id, None);
    }

    #[test]
    fn quoted_fields_and_a_reordered_header() {
        let body = "\u{feff}name,\"ts\",flag,count,amount\r\n\
                    \"ann\",2026-11-21T10:00:00Z,TRUE,\" 3 \",12.0\r\n\
                    \"b\"\"o, b\",2023-11-14T22:13:20+00:00,false,-7,-5e-1";
        let req = parse(body).unwrap();
        let mut second = row1();
        second[3] = Value::Str("b\"o, b".into());
        assert_eq!(req.rows, vec![row0(), second]);
    }

    #[test]
    fn empty_cells_are_null() {
        let req = parse("amount,count,flag,name,ts\n,,,,\n").unwrap();
        assert_eq!(req.rows, vec![vec![Value::Null; 5]]);
    }

    #[test]
    fn missing_and_extra_columns_are_named() {
        let err = parse("amount,count,flag,name\n1,2,true,x\n").unwrap_err();
        assert_eq!(
            err,
            FormatError::MissingColumn {
                column: "ts".into()
            }
        );
        let err = parse("amount,count,flag,name,ts,zip\n1,2,true,x,1970-01-01T00:00:00Z,1\n")
            .unwrap_err();
        assert_eq!(
            err,
            FormatError::ExtraColumn {
                column: "zip".into()
            }
        );
        let err = parse("amount,count,flag,name,ts,amount\n").unwrap_err();
        assert_eq!(
            err,
            FormatError::DuplicateColumn {
                column: "amount".into()
            }
        );
    }

    #[test]
    fn wrong_types_name_column_and_row_but_not_the_value() {
        let body = format!(
            "amount,count,flag,name,ts\n1,2,true,x,1970-01-01T00:00:00Z\n{EMAIL},2,true,x,1970-01-01T00:00:00Z\n"
        );
        let err = parse(&body).unwrap_err();
        assert!(matches!(
            &err,
            FormatError::WrongType { column, row: 1, expected, .. }
                if column == "amount" && expected == "float"
        ));
        assert_no_leak(&err, EMAIL);
        let body = format!("amount,count,flag,name,ts\n1,{CARD}0000,true,x,1970-01-01T00:00:00Z\n");
        let err = parse(&body).unwrap_err();
        assert!(err.to_string().contains("'count'"), "{err}");
        assert_no_leak(&err, CARD);
    }

    #[test]
    fn csv_timestamps_are_text_as_in_ingest() {
        let err = parse("amount,count,flag,name,ts\n1,2,true,x,1700000000000\n").unwrap_err();
        assert!(matches!(
            err,
            FormatError::WrongType { ref column, row: 0, .. } if column == "ts"
        ));
    }

    #[test]
    fn ragged_rows_report_the_row() {
        let err =
            parse("amount,count,flag,name,ts\n1,2,true,x,1970-01-01T00:00:00Z\n1,2\n").unwrap_err();
        assert_eq!(
            err,
            FormatError::RowArity {
                row: 1,
                expected: 5,
                found: 2
            }
        );
    }

    #[test]
    fn empty_bodies_and_header_only_bodies_are_empty() {
        assert_eq!(parse(""), Err(FormatError::Empty));
        assert_eq!(
            parse("amount,count,flag,name,ts\n"),
            Err(FormatError::Empty)
        );
    }

    #[test]
    fn invalid_utf8_is_reported_by_line() {
        let mut body = b"amount,count,flag,name,ts\n1,2,true,".to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(b",0\n");
        let err =
            parse_invocations(Some("text/csv"), &body, &columns(), &Limits::default()).unwrap_err();
        assert_eq!(
            err,
            FormatError::Csv {
                line: 2,
                message: "invalid UTF-8".into()
            }
        );
    }

    #[test]
    fn too_many_rows() {
        let mut body = String::from("amount,count,flag,name,ts\n");
        for _ in 0..3 {
            body.push_str("1,2,true,x,1970-01-01T00:00:00Z\n");
        }
        let limits = Limits { max_rows: 2 };
        let err =
            parse_invocations(Some("text/csv"), body.as_bytes(), &columns(), &limits).unwrap_err();
        assert_eq!(err, FormatError::TooManyRows { max: 2 });
        let limits = Limits { max_rows: 3 };
        let req =
            parse_invocations(Some("text/csv"), body.as_bytes(), &columns(), &limits).unwrap();
        assert_eq!(req.rows.len(), 3);
    }
}
