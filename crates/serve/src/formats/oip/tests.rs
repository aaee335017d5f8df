use super::*;
use crate::formats::testutil::{CARD, EMAIL, TS1, assert_no_leak, columns, row0, row1};

fn parse(body: &str) -> Result<ScoringRequest, FormatError> {
    parse_oip(body.as_bytes(), &columns(), &Limits::default())
}

/// A request with one tensor per column; `inputs` is the JSON of the tensor list.
fn request(inputs: &str) -> String {
    format!(r#"{{"id": "req-1", "inputs": [{inputs}]}}"#)
}

const AMOUNT: &str = r#"{"name": "amount", "shape": [2], "datatype": "FP64", "data": [12, -0.5]}"#;
const COUNT: &str = r#"{"name": "count", "shape": [2], "datatype": "INT64", "data": [3, -7]}"#;
const FLAG: &str = r#"{"name": "flag", "shape": [2], "datatype": "BOOL", "data": [true, false]}"#;
const NAME: &str = r#"{"name": "name", "shape": [2], "datatype": "BYTES", "data": ["ann", "bob"]}"#;
const TS: &str = r#"{"name": "ts", "shape": [2], "datatype": "BYTES", "data": ["2026-11-21T10:00:00Z", "2023-11-14T22:13:20Z"]}"#;

fn all_but(skip: &str, extra: &[&str]) -> String {
    let mut parts: Vec<&str> = [AMOUNT, COUNT, FLAG, NAME, TS]
        .into_iter()
        .filter(|t| !t.contains(&format!("\"name\": \"{skip}\"")))
        .collect();
    parts.extend_from_slice(extra);
    request(&parts.join(","))
}

#[test]
fn one_tensor_per_column_round_trips() {
    let req = parse(&all_but("", &[])).unwrap();
    assert_eq!(req.rows, vec![row0(), row1()]);
    assert_eq!(req.client_request_id.as_deref(), Some("req-1"));
    assert_eq!(req.routing_key, None);
    assert_eq!(req.format, RequestFormat::Oip);
}

#[test]
fn shape_n_by_1_nested_data_and_any_tensor_order() {
    let body = request(
        r#"{"name": "ts", "datatype": "INT64", "data": [[1795255200000], [1700000000000]], "shape": [2, 1]},
           {"data": [[12.0], [-0.5]], "shape": [2, 1], "datatype": "FP32", "name": "amount"},
           {"name": "name", "shape": [2, 1], "datatype": "BYTES", "data": [["ann"], ["bob"]]},
           {"name": "count", "shape": [2, 1], "datatype": "INT8", "data": [3, -7]},
           {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [true, false], "parameters": {"x": 1}}"#,
    );
    assert_eq!(parse(&body).unwrap().rows, vec![row0(), row1()]);
}

#[test]
fn parameters_carry_the_routing_key_and_outputs_are_accepted() {
    let body = format!(
        r#"{{"parameters": {{"routing_key": "user-9", "other": [1]}}, "outputs": [{{"name": "predictions"}}],
            "inputs": [{AMOUNT},{COUNT},{FLAG},{NAME},{TS}]}}"#
    );
    let req = parse(&body).unwrap();
    assert_eq!(req.routing_key.as_deref(), Some("user-9"));
    assert_eq!(req.client_request_id, None);
}

#[test]
fn one_positional_tensor_holds_every_column_in_model_order() {
    let body = request(
        r#"{"name": "input-0", "shape": [2, 5], "datatype": "BYTES", "data":
            [["12", "3", "true", "ann", "2026-11-21T10:00:00Z"],
             ["-0.5", "-7", "false", "bob", "2023-11-14T22:13:20Z"]]}"#,
    );
    assert_eq!(parse(&body).unwrap().rows, vec![row0(), row1()]);
    let err = parse(&request(
        r#"{"name": "input-0", "shape": [1, 4], "datatype": "BYTES", "data": ["1", "2", "true", "a"]}"#,
    ))
    .unwrap_err();
    assert!(matches!(err, FormatError::BadShape { ref input, .. } if input == "input-0"));
    assert!(err.to_string().contains("[n, 5]"), "{err}");
}

#[test]
fn positional_fp64_for_a_numeric_model() {
    let cols = vec![
        InputColumn::new("x", FieldType::Float),
        InputColumn::new("n", FieldType::Int),
    ];
    let body = r#"{"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP64", "data": [0.5, 1, 2.5, 3.0]}]}"#;
    let req = parse_oip(body.as_bytes(), &cols, &Limits::default()).unwrap();
    assert_eq!(
        req.rows,
        vec![
            vec![Value::Float(0.5), Value::Int(1)],
            vec![Value::Float(2.5), Value::Int(3)]
        ]
    );
    let body = r#"{"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 1.5]}]}"#;
    let err = parse_oip(body.as_bytes(), &cols, &Limits::default()).unwrap_err();
    assert!(matches!(err, FormatError::WrongType { ref column, row: 0, .. } if column == "n"));
}

#[test]
fn timestamps_come_as_text_or_epoch_milliseconds() {
    let ts = r#"{"name": "ts", "shape": [2], "datatype": "INT64", "data": [1795255200000, 1700000000000]}"#;
    let req = parse(&all_but("ts", &[ts])).unwrap();
    assert_eq!(req.rows[1][4], Value::Timestamp(TS1));
}

#[test]
fn nulls_are_missing_values() {
    let amount = r#"{"name": "amount", "shape": [2], "datatype": "FP64", "data": [null, -0.5]}"#;
    let req = parse(&all_but("amount", &[amount])).unwrap();
    assert_eq!(req.rows[0][0], Value::Null);
}

#[test]
fn a_datatype_that_cannot_hold_the_column_is_refused() {
    let name = r#"{"name": "name", "shape": [2], "datatype": "FP64", "data": [1, 2]}"#;
    let err = parse(&all_but("name", &[name])).unwrap_err();
    assert_eq!(
        err,
        FormatError::DatatypeMismatch {
            column: "name".into(),
            datatype: "FP64",
            expected: FieldType::String,
            use_: "BYTES"
        }
    );
    let amount = r#"{"name": "amount", "shape": [2], "datatype": "BYTES", "data": ["1", "2"]}"#;
    assert!(matches!(
        parse(&all_but("amount", &[amount])),
        Err(FormatError::DatatypeMismatch {
            datatype: "BYTES",
            ..
        })
    ));
    let count = r#"{"name": "count", "shape": [2], "datatype": "FP64", "data": [1, 2]}"#;
    assert!(matches!(
        parse(&all_but("count", &[count])),
        Err(FormatError::DatatypeMismatch {
            datatype: "FP64",
            ..
        })
    ));
}

#[test]
fn elements_must_match_their_datatype_and_are_never_echoed() {
    let amount = format!(
        r#"{{"name": "amount", "shape": [2], "datatype": "FP64", "data": [1, "{EMAIL}"]}}"#
    );
    let err = parse(&all_but("amount", &[&amount])).unwrap_err();
    assert_eq!(
        err,
        FormatError::WrongType {
            column: "amount".into(),
            row: 1,
            expected: "FP64".into(),
            reason: "expected a number".into()
        }
    );
    assert_no_leak(&err, EMAIL);
    let ts =
        format!(r#"{{"name": "ts", "shape": [2], "datatype": "BYTES", "data": ["{CARD}", "x"]}}"#);
    let err = parse(&all_but("ts", &[&ts])).unwrap_err();
    assert!(matches!(err, FormatError::WrongType { ref column, row: 0, .. } if column == "ts"));
    assert_no_leak(&err, CARD);
    let count = r#"{"name": "count", "shape": [2], "datatype": "INT8", "data": [3, 300]}"#;
    let err = parse(&all_but("count", &[count])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 'count' (INT8), row 1: integer out of the datatype's range"
    );
    let flag = r#"{"name": "flag", "shape": [2], "datatype": "BOOL", "data": [true, {"a": 1}]}"#;
    assert!(matches!(
        parse(&all_but("flag", &[flag])),
        Err(FormatError::WrongType { row: 1, .. })
    ));
}

#[test]
fn data_length_must_match_the_shape() {
    let amount = r#"{"name": "amount", "shape": [2], "datatype": "FP64", "data": [1, 2, 3]}"#;
    let err = parse(&all_but("amount", &[amount])).unwrap_err();
    assert_eq!(
        err,
        FormatError::ShapeMismatch {
            input: "amount".into(),
            shape: vec![2],
            expected: 2,
            found: 3
        }
    );
    let amount = r#"{"name": "amount", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}"#;
    assert!(matches!(
        parse(&all_but("amount", &[amount])),
        Err(FormatError::BadShape { .. })
    ));
    let amount = r#"{"name": "amount", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]}"#;
    assert_eq!(
        parse(&all_but("amount", &[amount])),
        Err(FormatError::RowCountMismatch {
            column: "count".into(),
            expected: 3,
            found: 2
        })
    );
    let amount = r#"{"name": "amount", "shape": [-2], "datatype": "FP64", "data": [1, 2]}"#;
    assert!(matches!(
        parse(&all_but("amount", &[amount])),
        Err(FormatError::Invalid { ref field, .. }) if field == "inputs[4].shape"
    ));
}

#[test]
fn missing_extra_and_duplicate_inputs_are_named() {
    assert_eq!(
        parse(&all_but("flag", &[])),
        Err(FormatError::MissingColumn {
            column: "flag".into()
        })
    );
    let zip = r#"{"name": "zip", "shape": [2], "datatype": "INT64", "data": [1, 2]}"#;
    assert_eq!(
        parse(&all_but("", &[zip])),
        Err(FormatError::ExtraColumn {
            column: "zip".into()
        })
    );
    assert_eq!(
        parse(&all_but("ts", &[AMOUNT])),
        Err(FormatError::DuplicateColumn {
            column: "amount".into()
        })
    );
    assert_eq!(
        parse(&all_but("", &[AMOUNT])),
        Err(FormatError::DuplicateColumn {
            column: "amount".into()
        })
    );
}

#[test]
fn structural_errors() {
    assert_eq!(
        parse(r#"{"id": "x"}"#),
        Err(FormatError::MissingKey {
            key: "inputs".into()
        })
    );
    assert_eq!(
        parse(r#"{"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64"}]}"#),
        Err(FormatError::MissingKey {
            key: "inputs[0].data".into()
        })
    );
    assert_eq!(
        parse(r#"{"inputs": [], "model": "x"}"#),
        Err(FormatError::UnknownKey {
            key: "model".into()
        })
    );
    assert_eq!(
        parse(
            r#"{"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [1], "dtype": 1}]}"#
        ),
        Err(FormatError::UnknownKey {
            key: "inputs[0].dtype".into()
        })
    );
    assert_eq!(
        parse(
            r#"{"inputs": [{"name": "amount", "shape": [1], "datatype": "FLOAT", "data": [1]}]}"#
        ),
        Err(FormatError::UnsupportedDatatype {
            input: "amount".into()
        })
    );
    assert_eq!(
        parse(r#"{"id": 5, "inputs": []}"#),
        Err(FormatError::Invalid {
            field: "id".into(),
            expected: "a string"
        })
    );
    assert_eq!(
        parse(r#"{"inputs": [], "inputs": []}"#),
        Err(FormatError::DuplicateKey {
            key: "inputs".into()
        })
    );
    assert!(matches!(
        parse(r#"{"inputs": {"amount": [1]}}"#),
        Err(FormatError::Invalid { ref field, .. }) if field == "inputs"
    ));
    assert!(matches!(
        parse(r#"{"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": 1}]}"#),
        Err(FormatError::Invalid { ref field, .. }) if field == "inputs[0].data"
    ));
    assert!(matches!(
        parse("{\"inputs\": [\n{\"name\" \"amount\"}]}"),
        Err(FormatError::Malformed { line: 2, .. })
    ));
    assert_eq!(
        parse(r#"{"inputs": []}"#),
        Err(FormatError::MissingColumn {
            column: "amount".into()
        })
    );
}

#[test]
fn empty_and_oversized_requests() {
    let empty = |c: &str, dt: &str| {
        format!(r#"{{"name": "{c}", "shape": [0], "datatype": "{dt}", "data": []}}"#)
    };
    let body = request(
        &[
            empty("amount", "FP64"),
            empty("count", "INT64"),
            empty("flag", "BOOL"),
            empty("name", "BYTES"),
            empty("ts", "BYTES"),
        ]
        .join(","),
    );
    assert_eq!(parse(&body), Err(FormatError::Empty));

    let limits = Limits { max_rows: 1 };
    let err = parse_oip(all_but("", &[]).as_bytes(), &columns(), &limits).unwrap_err();
    assert_eq!(err, FormatError::TooManyRows { max: 1 });

    // Data far past the limit is refused while it is read.
    let limits = Limits { max_rows: 2 };
    let data = vec!["1"; 100].join(",");
    let body = request(&format!(
        r#"{{"name": "amount", "shape": [100], "datatype": "FP64", "data": [{data}]}}"#
    ));
    assert_eq!(
        parse_oip(body.as_bytes(), &columns(), &limits),
        Err(FormatError::TooManyRows { max: 2 })
    );
}

#[test]
fn datatypes_parse_and_hold() {
    for d in Datatype::ALL {
        assert_eq!(Datatype::parse(d.name()), Some(d));
    }
    assert_eq!(Datatype::parse("fp64"), None);
    assert!(Datatype::Uint8.holds(FieldType::Float));
    assert!(Datatype::Int32.holds(FieldType::Date));
    assert!(!Datatype::Fp64.holds(FieldType::Timestamp));
    assert!(!Datatype::Bool.holds(FieldType::Int));
    assert!(Datatype::Uint8.check(&Value::Int(-1)).is_err());
    assert!(Datatype::Uint64.check(&Value::Float(1e19)).is_err());
    assert_eq!(Datatype::Fp16.check(&Value::Int(3)), Ok(()));
}
