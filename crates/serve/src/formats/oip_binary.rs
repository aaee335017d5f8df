//! The Open Inference Protocol's binary tensor data extension, as Triton's and KServe's
//! clients speak it.
//!
//! A request with the `Inference-Header-Content-Length: N` header is N bytes of the JSON
//! inference request followed by raw tensor data: each input whose `parameters` hold
//! `binary_data_size` has no `data` in the JSON; its elements are the next that many
//! bytes, little-endian, in the order of `inputs` (`BOOL` one byte each; `BYTES` each
//! element a 4-byte little-endian length and its bytes). [`decode_request`] turns such a
//! request into the plain JSON request [`super::parse_oip`] reads, so every check and
//! coercion is the same for both encodings.
//!
//! Answers go out binary when the request asks: `parameters.binary_data_output: true`
//! for every output, or `outputs: [{"name": …, "parameters": {"binary_data": true}}]`
//! per output. [`encode_answer`] rewrites a rendered answer that way and returns the
//! JSON part's length for the `Inference-Header-Content-Length` answer header.

use super::FormatError;
use serde_json::{Map, Number, Value as Json};

/// Which outputs the client wants as binary data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryOutputs {
    all: bool,
    names: Vec<String>,
}

impl BinaryOutputs {
    /// Whether any output goes out binary.
    pub fn any(&self) -> bool {
        self.all || !self.names.is_empty()
    }

    fn wants(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name)
    }

    fn of(request: &Json) -> Self {
        let all = request
            .pointer("/parameters/binary_data_output")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let names = request
            .get("outputs")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter(|o| {
                o.pointer("/parameters/binary_data")
                    .and_then(Json::as_bool)
                    .unwrap_or(false)
            })
            .filter_map(|o| o.get("name").and_then(Json::as_str).map(str::to_string))
            .collect();
        BinaryOutputs { all, names }
    }
}

fn invalid(field: String, expected: &'static str) -> FormatError {
    FormatError::Invalid { field, expected }
}

/// The bytes of one element of a fixed-size datatype.
fn element_size(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "BOOL" | "INT8" | "UINT8" => 1,
        "INT16" | "UINT16" | "FP16" => 2,
        "INT32" | "UINT32" | "FP32" => 4,
        "INT64" | "UINT64" | "FP64" => 8,
        _ => return None,
    })
}

/// A request body as plain JSON: `header_len` is the `Inference-Header-Content-Length`
/// header's value, if the request had one. Also says which outputs to answer in binary.
///
/// # Errors
/// [`FormatError::Invalid`] naming the header, the input or its `binary_data_size` when
/// the binary part does not match what the JSON part declares; JSON errors as
/// [`FormatError::Malformed`].
pub fn decode_request(
    body: &[u8],
    header_len: Option<&str>,
) -> Result<(Option<Vec<u8>>, BinaryOutputs), FormatError> {
    let Some(raw_len) = header_len else {
        // Plain JSON: only the output wishes matter, and only if any are there.
        let wishes = if mentions_binary_data(body) {
            serde_json::from_slice::<Json>(body)
                .map(|v| BinaryOutputs::of(&v))
                .unwrap_or_default()
        } else {
            BinaryOutputs::default()
        };
        return Ok((None, wishes));
    };
    let len: usize = raw_len.trim().parse().map_err(|_| {
        invalid(
            "Inference-Header-Content-Length".into(),
            "the length in bytes of the JSON part of the body",
        )
    })?;
    if len > body.len() {
        return Err(invalid(
            "Inference-Header-Content-Length".into(),
            "at most the length of the body",
        ));
    }
    let (head, mut rest) = body.split_at(len);
    let mut request: Json = serde_json::from_slice(head).map_err(|e| FormatError::Malformed {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let wishes = BinaryOutputs::of(&request);
    if let Some(inputs) = request.get_mut("inputs").and_then(Json::as_array_mut) {
        for (i, input) in inputs.iter_mut().enumerate() {
            let Some(obj) = input.as_object_mut() else {
                continue;
            };
            let Some(size) = take_binary_size(obj, i)? else {
                continue;
            };
            if obj.contains_key("data") {
                return Err(invalid(
                    format!("inputs[{i}].data"),
                    "absent when parameters.binary_data_size is given",
                ));
            }
            if size > rest.len() {
                return Err(invalid(
                    format!("inputs[{i}].parameters.binary_data_size"),
                    "within the binary part of the body",
                ));
            }
            let (bytes, tail) = rest.split_at(size);
            rest = tail;
            let datatype = obj.get("datatype").and_then(Json::as_str).unwrap_or("");
            let data = decode_tensor(datatype, bytes, i)?;
            obj.insert("data".into(), Json::Array(data));
        }
    }
    if !rest.is_empty() {
        return Err(invalid(
            "Inference-Header-Content-Length".into(),
            "followed by exactly the inputs' binary_data_size bytes",
        ));
    }
    let plain = serde_json::to_vec(&request)
        .map_err(|_| invalid("inputs".into(), "tensors that can be written back as JSON"))?;
    Ok((Some(plain), wishes))
}

/// A cheap pre-check: only a body that mentions `binary_data` can ask for binary output.
fn mentions_binary_data(body: &[u8]) -> bool {
    body.windows(11).any(|w| w == b"binary_data")
}

/// Removes `parameters.binary_data_size` from input `i` and returns it.
fn take_binary_size(obj: &mut Map<String, Json>, i: usize) -> Result<Option<usize>, FormatError> {
    let Some(params) = obj.get_mut("parameters").and_then(Json::as_object_mut) else {
        return Ok(None);
    };
    let Some(v) = params.remove("binary_data_size") else {
        return Ok(None);
    };
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            invalid(
                format!("inputs[{i}].parameters.binary_data_size"),
                "a non-negative integer",
            )
        })
}

/// The elements of input `i` from its raw bytes, as JSON values.
fn decode_tensor(datatype: &str, bytes: &[u8], i: usize) -> Result<Vec<Json>, FormatError> {
    let field = || format!("inputs[{i}].parameters.binary_data_size");
    if datatype == "BYTES" {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| {
                invalid(
                    field(),
                    "whole BYTES elements (a 4-byte length, then the bytes)",
                )
            })?;
            let n = u32::from_le_bytes(*len) as usize;
            if n > tail.len() {
                return Err(invalid(
                    field(),
                    "whole BYTES elements (a 4-byte length, then the bytes)",
                ));
            }
            let (s, tail) = tail.split_at(n);
            let s = std::str::from_utf8(s).map_err(|_| {
                invalid(format!("inputs[{i}].data"), "UTF-8 text in BYTES elements")
            })?;
            out.push(Json::String(s.to_string()));
            rest = tail;
        }
        return Ok(out);
    }
    let Some(size) = element_size(datatype) else {
        return Err(invalid(
            format!("inputs[{i}].datatype"),
            "BOOL, an integer type, FP16, FP32, FP64 or BYTES for binary data",
        ));
    };
    if !bytes.len().is_multiple_of(size) {
        return Err(invalid(
            field(),
            "a whole number of elements of the datatype",
        ));
    }
    Ok(bytes
        .chunks_exact(size)
        .map(|c| element(datatype, c))
        .collect())
}

fn element(datatype: &str, c: &[u8]) -> Json {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    let float = |f: f64| Number::from_f64(f).map_or(Json::Null, Json::Number);
    match datatype {
        "BOOL" => Json::Bool(c[0] != 0),
        "INT8" => Json::from(c[0] as i8),
        "UINT8" => Json::from(c[0]),
        "INT16" => Json::from(i16::from_le_bytes([b[0], b[1]])),
        "UINT16" => Json::from(u16::from_le_bytes([b[0], b[1]])),
        "INT32" => Json::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "UINT32" => Json::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "FP16" => float(half::f16::from_le_bytes([b[0], b[1]]).to_f64()),
        "FP32" => float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        "INT64" => Json::from(i64::from_le_bytes(b)),
        "UINT64" => Json::from(u64::from_le_bytes(b)),
        _ => float(f64::from_le_bytes(b)),
    }
}

/// A rendered OIP answer with the outputs the client asked for as binary data, and the
/// length of its JSON part; the answer as it is when none are asked for.
pub fn encode_answer(answer: Vec<u8>, wishes: &BinaryOutputs) -> (Vec<u8>, Option<usize>) {
    if !wishes.any() {
        return (answer, None);
    }
    let Ok(mut v) = serde_json::from_slice::<Json>(&answer) else {
        return (answer, None);
    };
    let mut binary = Vec::new();
    if let Some(outputs) = v.get_mut("outputs").and_then(Json::as_array_mut) {
        for out in outputs.iter_mut() {
            let Some(obj) = out.as_object_mut() else {
                continue;
            };
            let name = obj.get("name").and_then(Json::as_str).unwrap_or("");
            if !wishes.wants(name) {
                continue;
            }
            let datatype = obj
                .get("datatype")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            let Some(Json::Array(data)) = obj.remove("data") else {
                continue;
            };
            let start = binary.len();
            for d in &data {
                encode_element(&datatype, d, &mut binary);
            }
            let mut params = Map::new();
            params.insert("binary_data_size".into(), Json::from(binary.len() - start));
            obj.insert("parameters".into(), Json::Object(params));
        }
    }
    let Ok(mut body) = serde_json::to_vec(&v) else {
        return (answer, None);
    };
    let head = body.len();
    body.extend_from_slice(&binary);
    (body, Some(head))
}

fn encode_element(datatype: &str, d: &Json, out: &mut Vec<u8>) {
    match datatype {
        "BOOL" => out.push(u8::from(d.as_bool().unwrap_or(false))),
        "INT64" => out.extend_from_slice(&d.as_i64().unwrap_or(0).to_le_bytes()),
        "FP64" => out.extend_from_slice(&d.as_f64().unwrap_or(f64::NAN).to_le_bytes()),
        // BYTES (and anything else the renderer might add): text, length-prefixed.
        _ => {
            let s = match d {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            };
            let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&s.as_bytes()[..len as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_request(json: &str, tail: &[u8]) -> Vec<u8> {
        let mut b = json.as_bytes().to_vec();
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn binary_inputs_become_plain_json() {
        let head = r#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},{"name":"n","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}},{"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]}],"parameters":{"binary_data_output":true}}"#;
        let mut tail = Vec::new();
        tail.extend_from_slice(&1.5f32.to_le_bytes());
        tail.extend_from_slice(&(-2.0f32).to_le_bytes());
        tail.extend_from_slice(&3u32.to_le_bytes());
        tail.extend_from_slice(b"ann");
        tail.extend_from_slice(&0u32.to_le_bytes());
        let body = binary_request(head, &tail);
        let (plain, wishes) =
            decode_request(&body, Some(&head.len().to_string())).expect("decodes");
        let v: Json = serde_json::from_slice(&plain.expect("rewritten")).unwrap();
        assert_eq!(v["inputs"][0]["data"], serde_json::json!([1.5, -2.0]));
        assert_eq!(v["inputs"][1]["data"], serde_json::json!(["ann", ""]));
        assert_eq!(v["inputs"][2]["data"], serde_json::json!([true, false]));
        assert!(
            v["inputs"][0]["parameters"]
                .get("binary_data_size")
                .is_none()
        );
        assert!(wishes.any() && wishes.wants("predictions"));
    }

    #[test]
    fn mismatched_binary_parts_name_the_field() {
        let head = r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}}]}"#;
        let short = binary_request(head, &[0u8; 4]);
        let e = decode_request(&short, Some(&head.len().to_string())).unwrap_err();
        assert!(
            e.to_string()
                .contains("inputs[0].parameters.binary_data_size"),
            "{e}"
        );
        let long = binary_request(head, &[0u8; 12]);
        let e = decode_request(&long, Some(&head.len().to_string())).unwrap_err();
        assert!(
            e.to_string().contains("Inference-Header-Content-Length"),
            "{e}"
        );
        let e = decode_request(&long, Some("many")).unwrap_err();
        assert!(
            e.to_string().contains("Inference-Header-Content-Length"),
            "{e}"
        );
        let e = decode_request(&long, Some("9999")).unwrap_err();
        assert!(
            e.to_string().contains("Inference-Header-Content-Length"),
            "{e}"
        );
        // FP16 (IEEE half precision, little-endian): 1.0, -2.5 and 65504 (its largest).
        let fp16 = r#"{"inputs":[{"name":"x","shape":[3],"datatype":"FP16","parameters":{"binary_data_size":6}}]}"#;
        let (plain, _) = decode_request(
            &binary_request(fp16, &[0x00, 0x3C, 0x00, 0xC1, 0xFF, 0x7B]),
            Some(&fp16.len().to_string()),
        )
        .unwrap();
        let v: Json = serde_json::from_slice(&plain.expect("rewritten")).unwrap();
        assert_eq!(
            v["inputs"][0]["data"],
            serde_json::json!([1.0, -2.5, 65504.0])
        );
        let odd = r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","parameters":{"binary_data_size":3}}]}"#;
        let e = decode_request(
            &binary_request(odd, &[0, 0x3C, 0]),
            Some(&odd.len().to_string()),
        )
        .unwrap_err();
        assert!(e.to_string().contains("binary_data_size"), "{e}");
    }

    #[test]
    fn answers_go_binary_only_where_asked() {
        let answer = br#"{"model_name":"m","outputs":[{"name":"predictions","shape":[2],"datatype":"INT64","data":[1,0]},{"name":"probabilities","shape":[2,2],"datatype":"FP64","data":[0.25,0.75,0.5,0.5]}]}"#.to_vec();
        let (same, none) = encode_answer(answer.clone(), &BinaryOutputs::default());
        assert_eq!((same, none), (answer.clone(), None));
        let wishes = BinaryOutputs {
            all: false,
            names: vec!["probabilities".into()],
        };
        let (body, head) = encode_answer(answer, &wishes);
        let head = head.expect("binary");
        let v: Json = serde_json::from_slice(&body[..head]).unwrap();
        assert_eq!(v["outputs"][0]["data"], serde_json::json!([1, 0]));
        assert_eq!(v["outputs"][1]["parameters"]["binary_data_size"], 32);
        let floats: Vec<f64> = body[head..]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(floats, [0.25, 0.75, 0.5, 0.5]);
    }
}
