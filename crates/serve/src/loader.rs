//! Loading a registered version for serving: its files from the artifact store into a
//! [`Model`], with the input columns requests must carry.

use crate::error::ServeError;
use crate::formats::InputColumn;
use freshet_core::{Field, FieldType, Schema, Value};
use freshet_learn::model::Model;
use freshet_registry::Store;
use freshet_registry::artifacts::{ArtifactPath, ArtifactStore};
use std::io::Read;

/// A model version ready to score.
#[derive(Debug)]
pub struct LoadedModel {
    pub name: String,
    pub version: i64,
    pub model: Model,
    /// The fields the model reads, once each, in feature order: what a request must
    /// carry, and the layout rows are parsed into.
    pub input: Schema,
    /// Class index → label value (empty for regression).
    pub classes: Vec<Value>,
    /// The input columns as the request formats take them, built once per version
    /// rather than per request.
    columns: Vec<InputColumn>,
}

impl LoadedModel {
    /// Wrap a model (for tests and for models trained in this process).
    pub fn new(name: &str, version: i64, model: Model) -> Self {
        let mut fields: Vec<Field> = Vec::new();
        for f in &model.spec().features {
            if !fields.iter().any(|g| g.name == f.field) {
                fields.push(Field::new(f.field.clone(), f.field_type));
            }
        }
        // Columns left out at training because they trend with arrival order are
        // still taken (and ignored by the features): leaving one out must not break
        // the clients that send it. They are numeric by construction.
        for name in &model.spec().trending_excluded {
            if !fields.iter().any(|g| &g.name == name) {
                fields.push(Field::new(name.clone(), FieldType::Float));
            }
        }
        let classes = model.classes().iter().map(|c| c.to_value()).collect();
        let columns = fields
            .iter()
            .map(|f| InputColumn::new(f.name.clone(), f.ty))
            .collect();
        Self {
            name: name.to_string(),
            version,
            model,
            input: Schema::new(fields),
            classes,
            columns,
        }
    }

    /// The input columns a request must carry, in feature order.
    pub fn columns(&self) -> &[InputColumn] {
        &self.columns
    }

    pub fn is_regression(&self) -> bool {
        !self.model.task().is_classification()
    }
}

/// Read the files of `name`/`version` from the artifact store and build the model.
pub fn load_version(
    store: &dyn Store,
    artifacts: &dyn ArtifactStore,
    name: &str,
    version: i64,
) -> Result<LoadedModel, ServeError> {
    let fail = |reason: String| ServeError::Load {
        name: name.to_string(),
        version,
        reason,
    };
    let uri = store.get_download_uri(name, version)?;
    let root = uri.strip_prefix("mlflow-artifacts:/").ok_or_else(|| {
        fail(format!(
            "its files are at '{uri}', outside this server's store"
        ))
    })?;
    let root = ArtifactPath::parse(root)?;
    let mut files = Vec::new();
    for entry in artifacts.list(Some(&root))? {
        if entry.is_dir {
            continue;
        }
        let path = root.join(&entry.path)?;
        let (mut reader, size) = artifacts.open(&path)?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("reading {}: {e}", entry.path)))?;
        files.push((entry.path, bytes));
    }
    let model = Model::from_files(&files).map_err(|e| fail(e.to_string()))?;
    Ok(LoadedModel::new(name, version, model))
}
