use super::*;
use crate::formats::testutil::{CARD, EMAIL, TS0, assert_no_leak, columns, row0, row1};

fn parse(body: &str) -> Result<ScoringRequest, FormatError> {
    parse_with(body, &Limits::default())
}

fn parse_with(body: &str, limits: &Limits) -> Result<ScoringRequest, FormatError> {
    parse_invocations(
        Some("application/json"),
        body.as_bytes(),
        &columns(),
        limits,
    )
}

fn rows(body: &str) -> Vec<Vec<Value>> {
    match parse(body) {
        Ok(r) => r.rows,
        Err(e) => panic!("{body}: {e}"),
    }
}

const SPLIT: &str = r#"{"dataframe_split": {"columns": ["amount", "count", "flag", "name", "ts"],
    "data": [[12, 3, true, "ann", "2026-11-21T10:00:00Z"], [-0.5, -7, false, "bob", 1700000000000]]}}"#;

const RECORDS: &str = r#"{"dataframe_records": [
    {"amount": 12, "count": 3, "flag": true, "name": "ann", "ts": "2026-11-21T10:00:00Z"},
    {"ts": 1700000000000, "name": "bob", "flag": "false", "count": -7.0, "amount": "-0.5"}]}"#;

#[test]
fn every_json_format_round_trips_two_rows() {
    let expected = vec![row0(), row1()];
    let bodies = [
        SPLIT,
        // Data before columns, columns in another order, an index.
        r#"{"dataframe_split": {"data": [["ann", 12.0, "2026-11-21T10:00:00Z", true, 3],
            ["bob", -0.5, 1700000000000, false, -7]], "index": [0, 1],
            "columns": ["name", "amount", "ts", "flag", "count"]}}"#,
        RECORDS,
        r#"{"instances": [
            {"amount": 12, "count": 3, "flag": true, "name": "ann", "ts": "2026-11-21T10:00:00Z"},
            {"amount": -0.5, "count": -7, "flag": false, "name": "bob", "ts": 1700000000000}]}"#,
        r#"{"instances": [[12, 3, true, "ann", "2026-11-21T10:00:00Z"],
            [-0.5, -7, false, "bob", 1700000000000]]}"#,
        r#"{"inputs": {"ts": ["2026-11-21T10:00:00Z", 1700000000000], "amount": [12, -0.5],
            "count": [3, -7], "flag": [true, false], "name": ["ann", "bob"]}}"#,
        r#"{"inputs": [
            {"amount": 12, "count": 3, "flag": true, "name": "ann", "ts": "2026-11-21T10:00:00Z"},
            {"amount": -0.5, "count": -7, "flag": false, "name": "bob", "ts": 1700000000000}]}"#,
        r#"{"inputs": [[12, 3, true, "ann", "2026-11-21T10:00:00Z"],
            [-0.5, -7, false, "bob", 1700000000000]]}"#,
    ];
    for body in bodies {
        assert_eq!(rows(body), expected, "{body}");
    }
}

#[test]
fn the_format_is_reported() {
    let cases = [
        (SPLIT, RequestFormat::DataframeSplit),
        (RECORDS, RequestFormat::DataframeRecords),
        (
            r#"{"instances": [[1, 2, true, "a", 0]]}"#,
            RequestFormat::Instances,
        ),
        (
            r#"{"inputs": [[1, 2, true, "a", 0]]}"#,
            RequestFormat::Inputs,
        ),
    ];
    for (body, format) in cases {
        assert_eq!(parse(body).unwrap().format, format);
    }
}

#[test]
fn caller_metadata_is_read_and_params_ignored() {
    let body = r#"{"client_request_id": "c-1", "params": {"x": [1, {"y": 2}]},
        "dataframe_records": [{"amount": 1, "count": 2, "flag": true, "name": "a", "ts": 0}],
        "routing_key": "user-9"}"#;
    let req = parse(body).unwrap();
    assert_eq!(req.client_request_id.as_deref(), Some("c-1"));
    assert_eq!(req.routing_key.as_deref(), Some("user-9"));
    let req = parse(r#"{"client_request_id": null, "instances": [[1, 2, true, "a", 0]]}"#).unwrap();
    assert_eq!(req.client_request_id, None);
    assert_eq!(req.routing_key, None);
}

#[test]
fn caller_ids_must_be_short_strings() {
    let err =
        parse(r#"{"client_request_id": 7, "instances": [[1, 2, true, "a", 0]]}"#).unwrap_err();
    assert_eq!(
        err,
        FormatError::Invalid {
            field: "client_request_id".into(),
            expected: "a string"
        }
    );
    let long = "x".repeat(MAX_ID_BYTES + 1);
    let body = format!(r#"{{"routing_key": "{long}", "instances": [[1, 2, true, "a", 0]]}}"#);
    let err = parse(&body).unwrap_err();
    assert!(err.to_string().contains("'routing_key'"), "{err}");
    assert_no_leak(&err, &long);
}

#[test]
fn nulls_and_absent_keys_are_null() {
    let body = r#"{"dataframe_records": [
        {"amount": null, "count": 3, "flag": true, "name": "ann", "ts": "2026-11-21T10:00:00Z"},
        {"amount": 1.5}]}"#;
    assert_eq!(
        rows(body),
        vec![
            vec![
                Value::Null,
                Value::Int(3),
                Value::Bool(true),
                Value::Str("ann".into()),
                Value::Timestamp(TS0)
            ],
            vec![
                Value::Float(1.5),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ],
        ]
    );
    let body = r#"{"dataframe_split": {"columns": ["amount", "count", "flag", "name", "ts"],
        "data": [[null, null, null, null, null]]}}"#;
    assert_eq!(rows(body), vec![vec![Value::Null; 5]]);
}

#[test]
fn content_types() {
    let cols = columns();
    let limits = Limits::default();
    let body = r#"{"instances": [[1, 2, true, "a", 0]]}"#.as_bytes();
    for ct in [
        None,
        Some("application/json"),
        Some("Application/JSON; charset=utf-8"),
        Some("application/vnd.mlflow+json"),
    ] {
        assert!(
            parse_invocations(ct, body, &cols, &limits).is_ok(),
            "{ct:?}"
        );
    }
    let err = parse_invocations(Some("text/plain"), body, &cols, &limits).unwrap_err();
    assert_eq!(
        err,
        FormatError::UnsupportedContentType {
            content_type: "text/plain".into()
        }
    );
    assert_eq!(err.status_code(), 415);
}

#[test]
fn a_missing_column_is_named_in_every_format() {
    let bodies = [
        r#"{"dataframe_split": {"columns": ["amount", "count", "flag", "name"], "data": [[1, 2, true, "a"]]}}"#,
        r#"{"dataframe_records": [{"amount": 1, "count": 2, "flag": true, "name": "a"}]}"#,
        r#"{"instances": [{"amount": 1, "count": 2, "flag": true, "name": "a"}]}"#,
        r#"{"inputs": {"amount": [1], "count": [2], "flag": [true], "name": ["a"]}}"#,
    ];
    for body in bodies {
        assert_eq!(
            parse(body),
            Err(FormatError::MissingColumn {
                column: "ts".into()
            }),
            "{body}"
        );
    }
}

#[test]
fn an_extra_column_is_named_in_every_format() {
    let bodies = [
        r#"{"dataframe_split": {"columns": ["amount", "count", "flag", "name", "ts", "zip"], "data": [[1, 2, true, "a", 0, 1]]}}"#,
        r#"{"dataframe_records": [{"amount": 1, "count": 2, "flag": true, "name": "a", "ts": 0, "zip": 1}]}"#,
        r#"{"instances": [{"zip": 1, "amount": 1, "count": 2, "flag": true, "name": "a", "ts": 0}]}"#,
        r#"{"inputs": {"amount": [1], "count": [2], "flag": [true], "name": ["a"], "ts": [0], "zip": [1]}}"#,
    ];
    for body in bodies {
        let err = parse(body).unwrap_err();
        assert_eq!(
            err,
            FormatError::ExtraColumn {
                column: "zip".into()
            },
            "{body}"
        );
        assert_eq!(
            err.to_string(),
            "column 'zip' is not an input of this model"
        );
    }
}

#[test]
fn duplicate_columns_are_refused() {
    let bodies = [
        r#"{"dataframe_split": {"columns": ["amount", "count", "flag", "name", "ts", "amount"], "data": []}}"#,
        r#"{"dataframe_records": [{"amount": 1, "count": 2, "flag": true, "name": "a", "ts": 0, "amount": 2}]}"#,
        r#"{"inputs": {"amount": [1], "amount": [2]}}"#,
    ];
    for body in bodies {
        assert_eq!(
            parse(body),
            Err(FormatError::DuplicateColumn {
                column: "amount".into()
            }),
            "{body}"
        );
    }
    // The same key in two different records is fine.
    assert!(parse(RECORDS).is_ok());
}

#[test]
fn wrong_types_name_column_row_and_type_but_never_the_value() {
    let cases = [
        (
            format!(
                r#"{{"dataframe_split": {{"columns": ["amount", "count", "flag", "name", "ts"],
                "data": [[1, 2, true, "a", 0], ["{EMAIL}", 2, true, "a", 0]]}}}}"#
            ),
            "amount",
            1,
            "float",
            EMAIL,
        ),
        (
            format!(
                r#"{{"dataframe_records": [{{"amount": 1, "count": "{CARD}x", "flag": true, "name": "a", "ts": 0}}]}}"#
            ),
            "count",
            0,
            "int",
            CARD,
        ),
        (
            format!(r#"{{"instances": [[1, 2, true, "a", 0], [1, 2, "{EMAIL}", "a", 0]]}}"#),
            "flag",
            1,
            "bool",
            EMAIL,
        ),
        (
            format!(r#"{{"inputs": {{"ts": [0, "{CARD}"]}}}}"#),
            "ts",
            1,
            "timestamp",
            CARD,
        ),
        (
            format!(r#"{{"instances": [[1, 2, true, {{"email": "{EMAIL}"}}, 0]]}}"#),
            "name",
            0,
            "string",
            EMAIL,
        ),
        (
            format!(r#"{{"instances": [[["{CARD}"], 2, true, "a", 0]]}}"#),
            "amount",
            0,
            "float",
            CARD,
        ),
    ];
    for (body, col, r, ty, secret) in cases {
        let err = parse(&body).unwrap_err();
        match &err {
            FormatError::WrongType {
                column,
                row,
                expected,
                ..
            } => {
                assert_eq!((column.as_str(), *row, expected.as_str()), (col, r, ty));
            }
            other => panic!("{body}: {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&format!("'{col}'")) && text.contains(&format!("row {r}")));
        assert_no_leak(&err, secret);
    }
}

#[test]
fn a_nested_cell_says_so() {
    let err = parse(r#"{"instances": [[{"a": 1}, 2, true, "a", 0]]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 'amount' (float), row 0: expected float, got object or array"
    );
}

#[test]
fn row_arity_is_checked_with_the_row_index() {
    let err = parse(
        r#"{"dataframe_split": {"columns": ["amount", "count", "flag", "name", "ts"],
        "data": [[1, 2, true, "a", 0], [1, 2, true, "a"]]}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err,
        FormatError::RowArity {
            row: 1,
            expected: 5,
            found: 4
        }
    );
    let err = parse(r#"{"instances": [[1, 2, true, "a", 0, 9, 9]]}"#).unwrap_err();
    assert_eq!(
        err,
        FormatError::RowArity {
            row: 0,
            expected: 5,
            found: 7
        }
    );
    let err = parse(
        r#"{"inputs": {"amount": [1, 2], "count": [2], "flag": [true], "name": ["a"], "ts": [0]}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err,
        FormatError::RowCountMismatch {
            column: "count".into(),
            expected: 2,
            found: 1
        }
    );
}

#[test]
fn empty_requests_are_refused() {
    let bodies = [
        r#"{"dataframe_split": {"columns": ["amount", "count", "flag", "name", "ts"], "data": []}}"#,
        r#"{"dataframe_records": []}"#,
        r#"{"instances": []}"#,
        r#"{"inputs": {"amount": [], "count": [], "flag": [], "name": [], "ts": []}}"#,
        r#"{"inputs": []}"#,
    ];
    for body in bodies {
        assert_eq!(parse(body), Err(FormatError::Empty), "{body}");
    }
}

#[test]
fn bodies_that_are_not_json_report_line_and_column() {
    let err = parse("{\"instances\": [[1, 2,\n  true \"a\", 0]]}").unwrap_err();
    assert_eq!(
        err,
        FormatError::Malformed {
            line: 2,
            column: 8,
            message: "expected `,` or `]`".into()
        }
    );
    assert!(matches!(parse(""), Err(FormatError::Malformed { .. })));
    assert!(matches!(
        parse(r#"{"instances": [[1, 2, true, "a", 0]]} x"#),
        Err(FormatError::Malformed { .. })
    ));
    let err = parse(&format!("{{\"instances\": [[\"{EMAIL}")).unwrap_err();
    assert_no_leak(&err, EMAIL);
}

#[test]
fn top_level_keys_are_checked() {
    let err = parse(r#"{"instances": [[1, 2, true, "a", 0]], "instance": 1}"#).unwrap_err();
    assert_eq!(
        err,
        FormatError::UnknownKey {
            key: "instance".into()
        }
    );
    let err = parse(r#"{"instances": [[1, 2, true, "a", 0]], "inputs": [[1, 2, true, "a", 0]]}"#)
        .unwrap_err();
    assert_eq!(
        err,
        FormatError::MultipleFormatKeys {
            first: "instances".into(),
            second: "inputs".into()
        }
    );
    let err = parse(r#"{"instances": [[1, 2, true, "a", 0]], "instances": []}"#).unwrap_err();
    assert_eq!(
        err,
        FormatError::DuplicateKey {
            key: "instances".into()
        }
    );
    assert_eq!(
        parse(r#"{"client_request_id": "x"}"#),
        Err(FormatError::NoFormatKey)
    );
    assert_eq!(
        parse(r#"[{"amount": 1}]"#),
        Err(FormatError::Invalid {
            field: "body".into(),
            expected: "a JSON object"
        })
    );
    let err =
        parse(r#"{"dataframe_split": {"columns": [], "data": [], "dtype": {}}}"#).unwrap_err();
    assert_eq!(
        err,
        FormatError::UnknownKey {
            key: "dataframe_split.dtype".into()
        }
    );
    let err = parse(r#"{"dataframe_split": {"data": [[1]]}}"#).unwrap_err();
    assert_eq!(
        err,
        FormatError::MissingKey {
            key: "dataframe_split.columns".into()
        }
    );
}

#[test]
fn shapes_that_do_not_fit_the_format_are_refused() {
    let cases = [
        (r#"{"dataframe_split": [[1]]}"#, "dataframe_split"),
        (
            r#"{"dataframe_split": {"columns": "amount", "data": []}}"#,
            "dataframe_split.columns",
        ),
        (
            r#"{"dataframe_split": {"columns": ["amount"], "data": [1, 2]}}"#,
            "dataframe_split.data",
        ),
        (
            r#"{"dataframe_records": [[1, 2, true, "a", 0]]}"#,
            "dataframe_records",
        ),
        (
            r#"{"dataframe_records": {"amount": 1}}"#,
            "dataframe_records",
        ),
        (r#"{"instances": [1, 2]}"#, "instances"),
        (
            r#"{"instances": [[1, 2, true, "a", 0], {"amount": 1}]}"#,
            "instances",
        ),
        (r#"{"inputs": {"amount": 1}}"#, "inputs.amount"),
        (r#"{"inputs": "x"}"#, "inputs"),
    ];
    for (body, field) in cases {
        match parse(body) {
            Err(FormatError::Invalid { field: f, .. }) => assert_eq!(f, field, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn max_rows_is_enforced_in_every_format() {
    let limits = Limits { max_rows: 2 };
    let row = r#"[1, 2, true, "a", 0]"#;
    let rec = r#"{"amount": 1, "count": 2, "flag": true, "name": "a", "ts": 0}"#;
    let body = |n: usize, fmt: &dyn Fn(&str) -> String| fmt(&vec![row; n].join(","));
    let split = |rows: &str| {
        format!(
            r#"{{"dataframe_split": {{"columns": ["amount", "count", "flag", "name", "ts"], "data": [{rows}]}}}}"#
        )
    };
    let instances = |rows: &str| format!(r#"{{"instances": [{rows}]}}"#);
    for fmt in [&split as &dyn Fn(&str) -> String, &instances] {
        assert_eq!(parse_with(&body(2, fmt), &limits).unwrap().rows.len(), 2);
        let err = parse_with(&body(3, fmt), &limits).unwrap_err();
        assert_eq!(err, FormatError::TooManyRows { max: 2 });
        assert_eq!(err.status_code(), 413);
    }
    let records = format!(r#"{{"dataframe_records": [{rec},{rec},{rec}]}}"#);
    assert_eq!(
        parse_with(&records, &limits),
        Err(FormatError::TooManyRows { max: 2 })
    );
    let columnar = r#"{"inputs": {"amount": [1, 1, 1], "count": [2, 2, 2], "flag": [true, true, true], "name": ["a", "a", "a"], "ts": [0, 0, 0]}}"#;
    assert_eq!(
        parse_with(columnar, &limits),
        Err(FormatError::TooManyRows { max: 2 })
    );
    assert_eq!(parse(columnar).unwrap().rows.len(), 3);
}

#[test]
fn many_columns_resolve_through_the_index() {
    use freshet_core::FieldType;
    let cols: Vec<InputColumn> = (0..40)
        .map(|i| InputColumn::new(format!("f{i}"), FieldType::Float))
        .collect();
    let mut record: Vec<String> = (0..40).rev().map(|i| format!("\"f{i}\": {i}")).collect();
    let body = format!(r#"{{"dataframe_records": [{{{}}}]}}"#, record.join(","));
    let req = parse_invocations(None, body.as_bytes(), &cols, &Limits::default()).unwrap();
    let expected: Vec<Value> = (0..40).map(|i| Value::Float(f64::from(i))).collect();
    assert_eq!(req.rows, vec![expected]);
    record.pop();
    let body = format!(r#"{{"dataframe_records": [{{{}}}]}}"#, record.join(","));
    assert_eq!(
        parse_invocations(None, body.as_bytes(), &cols, &Limits::default()),
        Err(FormatError::MissingColumn {
            column: "f0".into()
        })
    );
}

#[test]
fn escaped_keys_and_strings_decode() {
    let body =
        r#"{"instances": [{"am\u006funt": 1, "count": 2, "flag": true, "name": "a\"b", "ts": 0}]}"#;
    let r = rows(body);
    assert_eq!(r[0][0], Value::Float(1.0));
    assert_eq!(r[0][3], Value::Str("a\"b".into()));
}

#[test]
fn floats_round_trip_exactly() {
    let xs = [
        0.1,
        1.0 / 3.0,
        -2.2250738585072014e-308,
        1.7976931348623157e308,
    ];
    let data: Vec<String> = xs
        .iter()
        .map(|x| {
            format!(
                r#"[{}, 1, true, "a", 0]"#,
                serde_json::to_string(x).unwrap()
            )
        })
        .collect();
    let body = format!(r#"{{"instances": [{}]}}"#, data.join(","));
    let got: Vec<Value> = rows(&body).into_iter().map(|r| r[0].clone()).collect();
    let want: Vec<Value> = xs.iter().map(|x| Value::Float(*x)).collect();
    assert_eq!(got, want);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let cols = columns();
            let limits = Limits { max_rows: 4 };
            for ct in [None, Some("text/csv")] {
                let _ = parse_invocations(ct, &body, &cols, &limits);
            }
            let _ = crate::formats::parse_oip(&body, &cols, &limits);
        }

        #[test]
        fn never_panics_on_json_like_text(body in r#"[\[\]{}":,0-9a-z_. \-eEtrufalsn]{0,200}"#) {
            let cols = columns();
            let limits = Limits { max_rows: 4 };
            let _ = parse_invocations(None, body.as_bytes(), &cols, &limits);
            let _ = crate::formats::parse_oip(body.as_bytes(), &cols, &limits);
            let wrapped = format!(r#"{{"instances": [{body}]}}"#);
            let _ = parse_invocations(None, wrapped.as_bytes(), &cols, &limits);
            let wrapped = format!(r#"{{"dataframe_split": {{"columns": ["amount"], "data": [{body}]}}}}"#);
            let _ = parse_invocations(None, wrapped.as_bytes(), &cols, &limits);
            let wrapped = format!(
                r#"{{"inputs": [{{"name": "amount", "shape": [2], "datatype": "FP64", "data": [{body}]}}]}}"#
            );
            let _ = crate::formats::parse_oip(wrapped.as_bytes(), &cols, &limits);
        }

        #[test]
        fn rows_survive_any_finite_values(
            amount in proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
            count in any::<i64>(),
            flag in any::<bool>(),
            name in "\\PC{0,20}",
            ms in -1_000_000_000_000i64..10_000_000_000_000,
        ) {
            let body = serde_json::json!({
                "dataframe_split": {
                    "columns": ["amount", "count", "flag", "name", "ts"],
                    "data": [[amount, count, flag, name, ms]]
                }
            })
            .to_string();
            let got = parse(&body).unwrap().rows;
            prop_assert_eq!(got, vec![vec![
                Value::Float(amount),
                Value::Int(count),
                Value::Bool(flag),
                Value::Str(name),
                Value::Timestamp(ms * 1000),
            ]]);
        }
    }
}
