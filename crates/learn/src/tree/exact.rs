//! Lossless `f64` fields for serialised model state.
//!
//! serde_json's default number parser may land one ulp away from the value that was
//! written, which would make a restored tree predict differently. State fields are
//! therefore written as the shortest decimal string that reads back to the same bits
//! (`"0.1"`, `"1e-7"`, `"NaN"`, `"inf"`); plain JSON numbers are accepted on input.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One `f64` written exactly.
#[derive(Debug, Clone, Copy)]
struct Exact(f64);

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // `Debug` prints the shortest representation that parses back to the same bits.
        s.serialize_str(&format!("{:?}", self.0))
    }
}

struct ExactVisitor;

impl Visitor<'_> for ExactVisitor {
    type Value = Exact;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a string holding a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Exact, E> {
        v.parse().map(Exact).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Exact, E> {
        Ok(Exact(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Exact, E> {
        Ok(Exact(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Exact, E> {
        Ok(Exact(v as f64))
    }
}

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExactVisitor)
    }
}

/// `#[serde(with = "exact")]` for an `f64` field.
pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    Exact(*v).serialize(s)
}

/// `#[serde(with = "exact")]` for an `f64` field.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Exact::deserialize(d).map(|e| e.0)
}

/// `#[serde(with = "exact::vec")]` for a `Vec<f64>` field.
pub(crate) mod vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| Exact(x)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Exact> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|e| e.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct S {
        #[serde(with = "super")]
        a: f64,
        #[serde(with = "super::vec")]
        v: Vec<f64>,
    }

    #[test]
    fn every_value_comes_back_bit_for_bit() {
        let values = vec![
            0.6462214723351177,
            0.1 + 0.2,
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE / 3.0,
            -0.0,
            f64::INFINITY,
            f64::NAN,
            1.0 / 3.0,
        ];
        for &a in &values {
            let s = S {
                a,
                v: values.clone(),
            };
            let back: S = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(back.a.to_bits(), a.to_bits());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back.v), bits(&values));
        }
        let plain: S = serde_json::from_str(r#"{"a": 0.5, "v": [1, -2, "3.25"]}"#).unwrap();
        assert_eq!(plain.a, 0.5);
        assert_eq!(plain.v, vec![1.0, -2.0, 3.25]);
        assert!(serde_json::from_str::<S>(r#"{"a": "x", "v": []}"#).is_err());
    }
}
