//! The `pii` processor: per-field drop, redact or keyed hash (HMAC-SHA256), applied
//! before a record is stored anywhere — the event table, the dead-letter table, logs.
//!
//! The key comes from an environment variable or a file, never from the YAML, and its
//! version label is written beside hashed records in `_pii_key_version` so that keys
//! can be rotated.

use crate::Row;
use freshet_core::config::PiiConfig;
use freshet_core::system_columns::PII_KEY_VERSION;
use freshet_core::{ConfigError, Field, FieldType, PiiAction, Schema, Value};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;
use std::sync::Arc;

/// The marker that replaces redacted values.
pub const REDACTED: &str = "[REDACTED]";

/// A hashing key and its version label.
#[derive(Clone)]
pub struct PiiKey {
    mac: Hmac<Sha256>,
    version: Arc<str>,
}

impl std::fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("PiiKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl PiiKey {
    pub fn new(key: &[u8], version: &str) -> Result<Self, ConfigError> {
        if key.len() < 16 {
            return Err(ConfigError::new(
                "pii.key_env",
                "the PII key must be at least 16 bytes",
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| ConfigError::new("pii.key_env", "unusable PII key"))?;
        Ok(Self {
            mac,
            version: version.into(),
        })
    }

    /// Load the key named by the configuration: the environment variable first, then
    /// the file (relative paths are relative to `base_dir`). `Ok(None)` when neither is set.
    pub fn load(cfg: &PiiConfig, base_dir: &Path) -> Result<Option<Self>, ConfigError> {
        if let Ok(v) = std::env::var(&cfg.key_env)
            && !v.is_empty()
        {
            return Self::new(v.trim().as_bytes(), &cfg.key_version).map(Some);
        }
        if let Some(file) = &cfg.key_file {
            let path = if file.is_absolute() {
                file.clone()
            } else {
                base_dir.join(file)
            };
            let bytes = std::fs::read(&path).map_err(|e| {
                ConfigError::new(
                    "pii.key_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let trimmed = String::from_utf8_lossy(&bytes).trim().to_string();
            return Self::new(trimmed.as_bytes(), &cfg.key_version).map(Some);
        }
        Ok(None)
    }

    /// Hex HMAC-SHA256 of `text`.
    pub fn hash(&self, text: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The PII policy of one stream.
#[derive(Debug, Clone)]
pub struct PiiPolicy {
    actions: Vec<Option<PiiAction>>,
    key: Option<PiiKey>,
    hashes: bool,
    drops: bool,
    active: bool,
}

impl PiiPolicy {
    /// Build the policy for `schema`; a schema that hashes needs a key.
    pub fn new(schema: &Schema, key: Option<PiiKey>, path: &str) -> Result<Self, ConfigError> {
        let actions: Vec<Option<PiiAction>> = schema.fields().iter().map(|f| f.pii).collect();
        let hashes = actions.contains(&Some(PiiAction::Hash));
        if hashes && key.is_none() {
            return Err(ConfigError::new(
                path,
                "a field is tagged `pii: hash` but no key is available: set the variable named by \
                 pii.key_env (FRESHET_PII_KEY by default) or pii.key_file",
            ));
        }
        let active = actions.iter().any(Option::is_some);
        let drops = actions.contains(&Some(PiiAction::Drop));
        Ok(Self {
            actions,
            key: if hashes { key } else { None },
            hashes,
            drops,
            active,
        })
    }

    /// The fields after the policy: dropped fields removed, hashed and redacted ones as
    /// strings without value checks, and `_pii_key_version` appended when hashing.
    pub fn output_fields(&self, schema: &Schema) -> Vec<Field> {
        let mut out = Vec::with_capacity(schema.len() + 1);
        for (f, a) in schema.fields().iter().zip(&self.actions) {
            match a {
                Some(PiiAction::Drop) => {}
                Some(PiiAction::Hash | PiiAction::Redact) => {
                    let mut g = Field::new(f.name.clone(), FieldType::String);
                    g.required = f.required;
                    g.pii = f.pii;
                    out.push(g);
                }
                None => out.push(f.clone()),
            }
        }
        if self.hashes {
            out.push(Field::new(PII_KEY_VERSION, FieldType::String));
        }
        out
    }

    /// Apply the policy to a validated row, in place unless fields are dropped.
    pub fn apply(&self, mut row: Row) -> Row {
        if !self.active {
            return row;
        }
        if self.drops {
            let mut out = Vec::with_capacity(row.len() + 1);
            for (v, a) in row.into_iter().zip(&self.actions) {
                if let Some(v) = self.protect(v, *a) {
                    out.push(v);
                }
            }
            row = out;
        } else {
            for (slot, a) in row.iter_mut().zip(&self.actions) {
                if a.is_some() {
                    let v = std::mem::replace(slot, Value::Null);
                    if let Some(p) = self.protect(v, *a) {
                        *slot = p;
                    }
                }
            }
        }
        if let Some(k) = &self.key {
            row.push(Value::Str(k.version.to_string()));
        }
        row
    }

    fn protect(&self, v: Value, action: Option<PiiAction>) -> Option<Value> {
        protect_value(self.key.as_ref(), v, action)
    }

    /// A JSON payload for the dead-letter table built from raw (possibly invalid)
    /// values aligned to `schema`, with the policy applied: safe to store and log.
    pub fn safe_payload(&self, schema: &Schema, raw: &[Value]) -> String {
        let mut obj = serde_json::Map::with_capacity(raw.len());
        for ((f, v), a) in schema.fields().iter().zip(raw).zip(&self.actions) {
            if v.is_null() {
                continue;
            }
            if let Some(p) = self.protect(v.clone(), *a) {
                let j = match p {
                    Value::Nested => serde_json::Value::String("<nested value>".into()),
                    other => other.to_json(),
                };
                obj.insert(f.name.clone(), j);
            }
        }
        serde_json::Value::Object(obj).to_string()
    }

    /// Whether the field at `index` of the input schema is PII-tagged.
    pub fn is_tagged(&self, index: usize) -> bool {
        self.actions.get(index).is_some_and(Option::is_some)
    }
}

/// One value under a PII action: kept, dropped (`None`), redacted, or hashed with
/// `key` (redacted without a key). Null stays null. The one rule for ingest and for
/// scoring inputs.
pub fn protect_value(key: Option<&PiiKey>, v: Value, action: Option<PiiAction>) -> Option<Value> {
    match action {
        None => Some(v),
        Some(PiiAction::Drop) => None,
        Some(_) if v.is_null() => Some(Value::Null),
        Some(PiiAction::Redact) => Some(Value::Str(REDACTED.into())),
        Some(PiiAction::Hash) => Some(match (key, &v) {
            (Some(k), Value::Str(s)) => Value::Str(k.hash(s)),
            (Some(k), other) => Value::Str(k.hash(&other.to_json().to_string())),
            (None, _) => Value::Str(REDACTED.into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("card", FieldType::String).pii(PiiAction::Hash),
            Field::new("name", FieldType::String).pii(PiiAction::Redact),
            Field::new("ssn", FieldType::String).pii(PiiAction::Drop),
            Field::new("amount", FieldType::Float),
        ])
    }

    fn key() -> PiiKey {
        PiiKey::new(b"0123456789abcdef0123", "k7").unwrap()
    }

    #[test]
    fn hash_redact_drop_and_key_version() {
        let p = PiiPolicy::new(&schema(), Some(key()), "x").unwrap();
        let row = vec![
            Value::Str("4111111111111111".into()),
            Value::Str("Ada".into()),
            Value::Str("123-45-6789".into()),
            Value::Float(3.0),
        ];
        let out = p.apply(row);
        assert_eq!(out.len(), 4);
        let Value::Str(h) = &out[0] else { panic!() };
        assert_eq!(h.len(), 64);
        assert_eq!(
            out[0],
            p.apply(vec![
                Value::Str("4111111111111111".into()),
                Value::Null,
                Value::Null,
                Value::Null
            ])[0]
        );
        assert_eq!(out[1], Value::Str(REDACTED.into()));
        assert_eq!(out[2], Value::Float(3.0));
        assert_eq!(out[3], Value::Str("k7".into()));
        let names: Vec<String> = p
            .output_fields(&schema())
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["card", "name", "amount", PII_KEY_VERSION]);
    }

    #[test]
    fn hmac_matches_reference_vector() {
        // Reference computed independently with Python:
        // hmac.new(b"freshet-test-key-0001", b"hello", hashlib.sha256).hexdigest()
        let k = PiiKey::new(b"freshet-test-key-0001", "v1").unwrap();
        assert_eq!(
            k.hash("hello"),
            "6607f2a593718a7804554a39bf2016ee163bc289ce7be65681b460ae31ba63d2"
        );
    }

    #[test]
    fn payload_never_contains_raw_pii() {
        let p = PiiPolicy::new(&schema(), Some(key()), "x").unwrap();
        let raw = vec![
            Value::Str("4111111111111111".into()),
            Value::Str("Ada Lovelace".into()),
            Value::Int(123456789),
            Value::Str("oops".into()),
        ];
        let payload = p.safe_payload(&schema(), &raw);
        for secret in ["4111111111111111", "Ada Lovelace", "123456789"] {
            assert!(!payload.contains(secret), "{payload}");
        }
        assert!(payload.contains("oops"));
    }

    #[test]
    fn hashing_without_a_key_is_a_config_error() {
        assert!(PiiPolicy::new(&schema(), None, "streams.s.schema").is_err());
        assert!(PiiKey::new(b"short", "v").is_err());
    }
}
