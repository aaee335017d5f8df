//! The model directory, laid out like an MLflow model so that MLflow tooling can list
//! and describe it:
//!
//! ```text
//! MLmodel                  YAML: artifact_path, flavors (freshet, python_function),
//!                          model_uuid, utc_time_created, signature
//! model.json               spec, feature state, learner state, metadata; format_version
//! reference_profile.json   the training-data profile (absent if none was built)
//! ```
//!
//! The `python_function` flavor names the loader module `freshet_pyfunc`, which is not
//! shipped: Python cannot load the model yet, but MLflow reads the directory.

use super::profile::{PROFILE_FORMAT_VERSION, PROFILE_OLDEST_READABLE, ReferenceProfile};
use super::{FORMAT_VERSION, Model, ModelError};
use freshet_core::FieldType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const MLMODEL: &str = "MLmodel";
pub const MODEL_JSON: &str = "model.json";
pub const PROFILE_JSON: &str = "reference_profile.json";
/// `artifact_path` written to `MLmodel`.
pub const ARTIFACT_PATH: &str = "model";
/// Python module named by the `python_function` flavor (not shipped yet).
pub const PYFUNC_LOADER: &str = "freshet_pyfunc";

/// The `MLmodel` file. Unknown keys are accepted on read: MLflow adds its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlModel {
    pub artifact_path: String,
    pub flavors: Flavors,
    pub model_uuid: String,
    pub utc_time_created: String,
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavors {
    pub freshet: FreshetFlavor,
    pub python_function: PyFuncFlavor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreshetFlavor {
    pub format_version: u32,
    pub learner: String,
    pub task: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PyFuncFlavor {
    pub loader_module: String,
    pub data: String,
}

/// MLflow's column-based signature: each side is a JSON string of column specs
/// (`[{"type": "double", "name": "amount", "required": false}]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    pub inputs: String,
    pub outputs: String,
}

impl Model {
    /// The files of the model directory, as (relative path, bytes), for an artifact
    /// store. `reference_profile.json` is included when the model has a profile.
    ///
    /// # Errors
    /// [`ModelError::Corrupt`] if serialisation fails (a non-finite float in state).
    pub fn to_files(&self) -> Result<Vec<(String, Vec<u8>)>, ModelError> {
        let corrupt = |file: &str, e: &dyn std::fmt::Display| ModelError::Corrupt {
            file: file.to_owned(),
            reason: e.to_string(),
        };
        let mlmodel =
            serde_yaml_ng::to_string(&self.mlmodel()).map_err(|e| corrupt(MLMODEL, &e))?;
        let model = serde_json::to_vec(self).map_err(|e| corrupt(MODEL_JSON, &e))?;
        let mut files = vec![
            (MLMODEL.to_owned(), mlmodel.into_bytes()),
            (MODEL_JSON.to_owned(), model),
        ];
        if let Some(p) = &self.profile {
            let bytes = serde_json::to_vec_pretty(p).map_err(|e| corrupt(PROFILE_JSON, &e))?;
            files.push((PROFILE_JSON.to_owned(), bytes));
        }
        Ok(files)
    }

    /// A model from the files of its directory (as [`to_files`](Self::to_files) gives
    /// them); other files are ignored.
    ///
    /// # Errors
    /// [`ModelError::MissingFile`], [`ModelError::Corrupt`], or
    /// [`ModelError::UnsupportedFormat`] for a format version this build cannot read.
    pub fn from_files(files: &[(String, Vec<u8>)]) -> Result<Self, ModelError> {
        let get = |name: &str| {
            files
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, b)| b.as_slice())
        };
        let need = |name: &str| {
            get(name).ok_or_else(|| ModelError::MissingFile {
                file: name.to_owned(),
            })
        };
        let mlmodel: MlModel =
            serde_yaml_ng::from_slice(need(MLMODEL)?).map_err(|e| ModelError::Corrupt {
                file: MLMODEL.to_owned(),
                reason: e.to_string(),
            })?;
        check_version(
            MLMODEL,
            mlmodel.flavors.freshet.format_version,
            FORMAT_VERSION,
        )?;
        let data = mlmodel.flavors.freshet.data.as_str();
        let mut model: Model = parse_versioned(data, need(data)?, FORMAT_VERSION)?;
        if let Some(bytes) = get(PROFILE_JSON) {
            model.profile = Some(parse_versioned_from::<ReferenceProfile>(
                PROFILE_JSON,
                bytes,
                PROFILE_OLDEST_READABLE..=PROFILE_FORMAT_VERSION,
            )?);
        }
        Ok(model)
    }

    /// Write the model directory (created if needed; existing files are replaced).
    ///
    /// # Errors
    /// [`ModelError::Io`] naming the path, or as [`to_files`](Self::to_files).
    pub fn save_dir(&self, dir: &Path) -> Result<(), ModelError> {
        let io = |path: &Path, source| ModelError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let stale = dir.join(PROFILE_JSON);
        if self.profile.is_none() && stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| io(&stale, e))?;
        }
        for (name, bytes) in self.to_files()? {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    /// Read a model directory written by [`save_dir`](Self::save_dir).
    ///
    /// # Errors
    /// As [`from_files`](Self::from_files), or [`ModelError::Io`].
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        let mut files = Vec::with_capacity(3);
        for name in [MLMODEL, MODEL_JSON, PROFILE_JSON] {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => files.push((name.to_owned(), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ModelError::Io {
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
        Self::from_files(&files)
    }

    /// The `MLmodel` description of this model.
    pub fn mlmodel(&self) -> MlModel {
        let created =
            chrono::DateTime::from_timestamp_micros(self.metadata.stamp.created_at_micros)
                .unwrap_or_default();
        MlModel {
            artifact_path: ARTIFACT_PATH.to_owned(),
            flavors: Flavors {
                freshet: FreshetFlavor {
                    format_version: FORMAT_VERSION,
                    learner: self.spec.learner.name().to_owned(),
                    task: self.spec.task.as_str().to_owned(),
                    data: MODEL_JSON.to_owned(),
                },
                python_function: PyFuncFlavor {
                    loader_module: PYFUNC_LOADER.to_owned(),
                    data: MODEL_JSON.to_owned(),
                },
            },
            model_uuid: self.metadata.stamp.uuid.clone(),
            // MLflow writes Python's `str(datetime.utcnow())`.
            utc_time_created: created.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            signature: self.signature(),
        }
    }

    fn signature(&self) -> Signature {
        let col = |name: &str, ty: FieldType| serde_json::json!({ "type": mlflow_type(ty), "name": name, "required": false });
        // A field read by two features is one input column.
        let mut seen = BTreeMap::new();
        let inputs: Vec<serde_json::Value> = self
            .spec
            .features
            .iter()
            .filter(|f| seen.insert(f.field.as_str(), ()).is_none())
            .map(|f| col(&f.field, f.field_type))
            .collect();
        let out_ty = if self.spec.task.is_classification() {
            self.spec.label_type
        } else {
            FieldType::Float
        };
        let mut output = col(&self.spec.label, out_ty);
        output["required"] = serde_json::Value::Bool(true);
        Signature {
            inputs: serde_json::Value::from(inputs).to_string(),
            outputs: serde_json::Value::from(vec![output]).to_string(),
        }
    }
}

/// MLflow's column type names.
fn mlflow_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Int => "long",
        FieldType::Float => "double",
        FieldType::Bool => "boolean",
        FieldType::Timestamp | FieldType::Date => "datetime",
    }
}

fn check_version(file: &str, found: u32, supported: u32) -> Result<(), ModelError> {
    if found == supported {
        Ok(())
    } else {
        Err(ModelError::UnsupportedFormat {
            file: file.to_owned(),
            found,
            supported,
        })
    }
}

/// Parse a JSON file whose top level has `format_version`: the version is checked
/// first, so a newer layout gets a version error rather than a confusing field error.
fn parse_versioned<T: serde::de::DeserializeOwned + Versioned>(
    file: &str,
    bytes: &[u8],
    supported: u32,
) -> Result<T, ModelError> {
    parse_versioned_from(file, bytes, supported..=supported)
}

/// A document that says which layout version it is.
pub(crate) trait Versioned {
    fn format_version(&self) -> u32;
}

impl Versioned for Model {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl Versioned for ReferenceProfile {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

/// [`parse_versioned`] for a layout that still reads older versions (whose new fields
/// are optional). The document is parsed once; only when that fails is its version
/// probed, to tell a layout this build does not read from a corrupt file.
fn parse_versioned_from<T: serde::de::DeserializeOwned + Versioned>(
    file: &str,
    bytes: &[u8],
    readable: std::ops::RangeInclusive<u32>,
) -> Result<T, ModelError> {
    #[derive(Deserialize)]
    struct Probe {
        format_version: u32,
    }
    let corrupt = |e: serde_json::Error| ModelError::Corrupt {
        file: file.to_owned(),
        reason: e.to_string(),
    };
    let found = match serde_json::from_slice::<T>(bytes) {
        Ok(doc) => Ok(doc),
        Err(e) => Err((e, serde_json::from_slice::<Probe>(bytes).map_err(corrupt)?)),
    };
    let version = match &found {
        Ok(doc) => doc.format_version(),
        Err((_, probe)) => probe.format_version,
    };
    if !readable.contains(&version) {
        check_version(file, version, *readable.end())?;
    }
    found.map_err(|(e, _)| corrupt(e))
}
