use super::*;
use crate::formats::testutil::TS0;

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn binary() -> (Vec<Value>, Vec<Prediction>) {
    (
        vec![Value::Bool(false), Value::Bool(true)],
        vec![
            Prediction {
                label: Value::Bool(true),
                proba: Some(vec![0.25, 0.75]),
            },
            Prediction {
                label: Value::Bool(false),
                proba: Some(vec![0.9, 0.1]),
            },
        ],
    )
}

fn regression() -> Vec<Prediction> {
    vec![
        Prediction {
            label: Value::Float(1.5),
            proba: None,
        },
        Prediction {
            label: Value::Float(-0.125),
            proba: None,
        },
    ]
}

fn answer<'a>(classes: &'a [Value], predictions: &'a [Prediction]) -> ScoringAnswer<'a> {
    ScoringAnswer {
        request_id: "r-1",
        client_request_id: Some("c-1"),
        model: "fraud",
        version: 3,
        classes,
        predictions,
    }
}

#[test]
fn invocations_for_a_binary_classifier() {
    let (classes, preds) = binary();
    assert_eq!(
        text(render_invocations(&answer(&classes, &preds))),
        r#"{"predictions":[true,false],"probabilities":[[0.25,0.75],[0.9,0.1]],"classes":[false,true],"request_id":"r-1","client_request_id":"c-1","model":"fraud","version":"3"}"#
    );
}

#[test]
fn invocations_for_a_regressor() {
    let preds = regression();
    let a = ScoringAnswer {
        request_id: "r-2",
        client_request_id: None,
        model: "price",
        version: 1,
        classes: &[],
        predictions: &preds,
    };
    assert_eq!(
        text(render_invocations(&a)),
        r#"{"predictions":[1.5,-0.125],"request_id":"r-2","model":"price","version":"1"}"#
    );
}

#[test]
fn oip_for_a_binary_classifier() {
    let (classes, preds) = binary();
    assert_eq!(
        text(render_oip(&answer(&classes, &preds))),
        r#"{"model_name":"fraud","model_version":"3","id":"c-1","parameters":{"request_id":"r-1","client_request_id":"c-1"},"outputs":[{"name":"predictions","shape":[2],"datatype":"BOOL","data":[true,false]},{"name":"probabilities","shape":[2,2],"datatype":"FP64","data":[0.25,0.75,0.9,0.1]}]}"#
    );
}

#[test]
fn oip_for_a_regressor() {
    let preds = regression();
    let a = ScoringAnswer {
        request_id: "r-2",
        client_request_id: None,
        model: "price",
        version: 1,
        classes: &[],
        predictions: &preds,
    };
    assert_eq!(
        text(render_oip(&a)),
        r#"{"model_name":"price","model_version":"1","id":"r-2","parameters":{"request_id":"r-2"},"outputs":[{"name":"predictions","shape":[2],"datatype":"FP64","data":[1.5,-0.125]}]}"#
    );
}

#[test]
fn string_and_int_classes() {
    let classes = vec![Value::Str("a".into()), Value::Str("b\"c".into())];
    let preds = vec![Prediction {
        label: Value::Str("b\"c".into()),
        proba: Some(vec![0.5, 0.5]),
    }];
    let out = text(render_oip(&answer(&classes, &preds)));
    assert!(
        out.contains(r#"{"name":"predictions","shape":[1],"datatype":"BYTES","data":["b\"c"]}"#),
        "{out}"
    );
    let out = text(render_invocations(&answer(&classes, &preds)));
    assert!(out.starts_with(
        r#"{"predictions":["b\"c"],"probabilities":[[0.5,0.5]],"classes":["a","b\"c"],"#
    ));

    let classes = vec![Value::Int(0), Value::Int(1)];
    let preds = vec![Prediction {
        label: Value::Int(1),
        proba: Some(vec![0.0, 1.0]),
    }];
    let out = text(render_oip(&answer(&classes, &preds)));
    assert!(out.contains(r#""datatype":"INT64","data":[1]"#), "{out}");
}

#[test]
fn nan_and_missing_probabilities_are_null() {
    let classes = vec![Value::Bool(false), Value::Bool(true)];
    let preds = vec![
        Prediction {
            label: Value::Bool(true),
            proba: Some(vec![f64::NAN, 1.0]),
        },
        Prediction {
            label: Value::Null,
            proba: None,
        },
        Prediction {
            label: Value::Bool(false),
            proba: Some(vec![1.0]),
        },
    ];
    let a = answer(&classes, &preds);
    let inv = text(render_invocations(&a));
    assert!(
        inv.starts_with(
            r#"{"predictions":[true,null,false],"probabilities":[[null,1.0],[null,null],[1.0,null]],"#
        ),
        "{inv}"
    );
    let oip = text(render_oip(&a));
    assert!(
        oip.contains(r#""data":[true,null,false]"#)
            && oip.contains(
                r#""shape":[3,2],"datatype":"FP64","data":[null,1.0,null,null,1.0,null]"#
            ),
        "{oip}"
    );
    assert!(!inv.contains("NaN") && !oip.contains("NaN"));

    let preds = vec![Prediction {
        label: Value::Float(f64::INFINITY),
        proba: None,
    }];
    let a = ScoringAnswer {
        classes: &[],
        ..answer(&[], &preds)
    };
    assert!(text(render_invocations(&a)).starts_with(r#"{"predictions":[null],"#));
    assert!(text(render_oip(&a)).contains(r#""data":[null]"#));
}

#[test]
fn timestamp_and_date_labels_are_text() {
    let preds = vec![
        Prediction {
            label: Value::Timestamp(TS0),
            proba: None,
        },
        Prediction {
            label: Value::Date(10),
            proba: None,
        },
    ];
    let a = answer(&[], &preds);
    assert!(
        text(render_invocations(&a))
            .starts_with(r#"{"predictions":["2026-11-21T10:00:00+00:00","1970-01-11"],"#)
    );
    assert_eq!(label_datatype(&[], &preds, false), Datatype::Bytes);
}

#[test]
fn label_datatypes() {
    let p = |v: Value| Prediction {
        label: v,
        proba: None,
    };
    assert_eq!(label_datatype(&[], &[], true), Datatype::Fp64);
    assert_eq!(
        label_datatype(&[], &[p(Value::Int(1)), p(Value::Float(0.5))], false),
        Datatype::Fp64
    );
    assert_eq!(
        label_datatype(&[], &[p(Value::Int(1)), p(Value::Null)], false),
        Datatype::Int64
    );
    assert_eq!(
        label_datatype(&[], &[p(Value::Int(1)), p(Value::Bool(true))], false),
        Datatype::Bytes
    );
    // A regressor (no classes) always answers FP64.
    let out = text(render_oip(&answer(&[], &[p(Value::Int(2))])));
    assert!(out.contains(r#""datatype":"FP64","data":[2.0]"#), "{out}");
    // Classes decide over the answer.
    assert_eq!(
        label_datatype(&[Value::Bool(true)], &[p(Value::Int(1))], false),
        Datatype::Bool
    );
    // Mixed labels under BYTES are written as text.
    let classes = [Value::Int(1), Value::Bool(true), Value::Float(0.5)];
    let preds: Vec<Prediction> = classes.iter().cloned().map(p).collect();
    let out = text(render_oip(&answer(&classes, &preds)));
    assert!(
        out.contains(r#""datatype":"BYTES","data":["1","true","0.5"]"#),
        "{out}"
    );
}

#[test]
fn rendering_is_byte_identical_across_calls() {
    let (classes, preds) = binary();
    let a = answer(&classes, &preds);
    assert_eq!(render_invocations(&a), render_invocations(&a));
    assert_eq!(render_oip(&a), render_oip(&a));
    let cols = crate::formats::testutil::columns();
    assert_eq!(
        render_oip_metadata("m", &[1], &cols, &classes, false),
        render_oip_metadata("m", &[1], &cols, &classes, false)
    );
}

#[test]
fn floats_round_trip_through_rendering() {
    let xs = [0.1 + 0.2, 1.0 / 3.0, 5e-324, 1.7976931348623157e308, -0.0];
    let preds: Vec<Prediction> = xs
        .iter()
        .map(|x| Prediction {
            label: Value::Float(*x),
            proba: None,
        })
        .collect();
    let a = answer(&[], &preds);
    #[derive(serde::Deserialize)]
    struct Body {
        predictions: Vec<f64>,
    }
    let body: Body = serde_json::from_slice(&render_invocations(&a)).unwrap();
    for (got, want) in body.predictions.iter().zip(xs) {
        assert_eq!(got.to_bits(), want.to_bits());
    }
}

#[test]
fn metadata_describes_inputs_and_outputs() {
    let cols = crate::formats::testutil::columns();
    let classes = [Value::Bool(false), Value::Bool(true)];
    assert_eq!(
        text(render_oip_metadata(
            "fraud",
            &[1, 2],
            &cols,
            &classes,
            false
        )),
        r#"{"name":"fraud","versions":["1","2"],"platform":"freshet","inputs":[{"name":"amount","datatype":"FP64","shape":[-1]},{"name":"count","datatype":"INT64","shape":[-1]},{"name":"flag","datatype":"BOOL","shape":[-1]},{"name":"name","datatype":"BYTES","shape":[-1]},{"name":"ts","datatype":"BYTES","shape":[-1]}],"outputs":[{"name":"predictions","datatype":"BOOL","shape":[-1]},{"name":"probabilities","datatype":"FP64","shape":[-1,2]}]}"#
    );
    assert_eq!(
        text(render_oip_metadata("price", &[], &cols[..1], &[], true)),
        r#"{"name":"price","versions":[],"platform":"freshet","inputs":[{"name":"amount","datatype":"FP64","shape":[-1]}],"outputs":[{"name":"predictions","datatype":"FP64","shape":[-1]}]}"#
    );
    let out = text(render_oip_metadata("new", &[1], &cols[..1], &[], false));
    assert!(
        out.ends_with(r#""outputs":[{"name":"predictions","datatype":"BYTES","shape":[-1]},{"name":"probabilities","datatype":"FP64","shape":[-1,-1]}]}"#),
        "{out}"
    );
}

#[test]
fn rendered_answers_parse_back_as_the_protocol_describes() {
    let (classes, preds) = binary();
    let a = answer(&classes, &preds);
    let v: serde_json::Value = serde_json::from_slice(&render_oip(&a)).unwrap();
    assert_eq!(v["outputs"][1]["data"].as_array().unwrap().len(), 4);
    assert_eq!(v["outputs"][0]["shape"][0], 2);
}
