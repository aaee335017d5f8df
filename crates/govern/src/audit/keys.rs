//! The checkpoint signing key: a hex seed in a 0600 file, its public half in `audit.pub`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::AuditError;

/// The public key file written beside the key file.
pub const PUBLIC_KEY_FILE: &str = "audit.pub";

pub(crate) fn public_key_path(key_file: &Path) -> PathBuf {
    key_file.with_file_name(PUBLIC_KEY_FILE)
}

/// First 16 hex digits of SHA-256 over the 32 public key bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

fn read_hex32(path: &Path, what: &str) -> Result<[u8; 32], AuditError> {
    let text = fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
    let mut out = [0u8; 32];
    let t = text.trim();
    if t.len() != 64 || hex::decode_to_slice(t, &mut out).is_err() {
        return Err(AuditError::key(
            path,
            format!("expected {what} as 64 hex digits"),
        ));
    }
    Ok(out)
}

/// Reads a public key file (`audit.pub`: 64 hex digits).
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, AuditError> {
    let bytes = read_hex32(path, "a public key")?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| AuditError::key(path, "not a valid Ed25519 public key"))
}

/// Derives the public key from a signing key file without keeping the secret around.
pub fn load_signing_key_public(path: &Path) -> Result<VerifyingKey, AuditError> {
    Ok(load_signing_key(path)?.verifying_key())
}

pub(crate) fn load_signing_key(path: &Path) -> Result<SigningKey, AuditError> {
    let seed = read_hex32(path, "a signing key seed")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "audit key file readable by group or others");
        }
    }
    Ok(SigningKey::from_bytes(&seed))
}

/// Loads the signing key, creating it (mode 0600) if the file does not exist, and writes
/// `audit.pub` beside it when missing or different.
pub(crate) fn load_or_create(key_file: &Path) -> Result<SigningKey, AuditError> {
    let key = match load_signing_key(key_file) {
        Ok(k) => k,
        Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            create_key(key_file)?
        }
        Err(e) => return Err(e),
    };
    let pub_path = public_key_path(key_file);
    let want = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
    let have = fs::read_to_string(&pub_path).unwrap_or_default();
    if have != want {
        let tmp = pub_path.with_extension("pub.tmp");
        fs::write(&tmp, &want).map_err(|e| AuditError::io(&tmp, e))?;
        fs::rename(&tmp, &pub_path).map_err(|e| AuditError::io(&pub_path, e))?;
    }
    Ok(key)
}

fn create_key(key_file: &Path) -> Result<SigningKey, AuditError> {
    if let Some(parent) = key_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| AuditError::io(parent, e))?;
    }
    let seed: [u8; 32] = rand::random();
    let key = SigningKey::from_bytes(&seed);
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(key_file)
        .map_err(|e| AuditError::io(key_file, e))?;
    f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io(key_file, e))?;
    if let Some(parent) = key_file.parent() {
        super::segments::sync_dir(parent)?;
    }
    tracing::info!(path = %key_file.display(), key_id = %key_id(&key.verifying_key()), "audit key created");
    Ok(key)
}
