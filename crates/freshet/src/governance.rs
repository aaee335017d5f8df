//! Wiring of the governance room: the token store, the OIDC verifier, the group map and
//! the audit chain, from `auth` and `audit` in `freshet.yaml`.

use anyhow::{Context, Result};
use freshet_core::FreshetConfig;
use freshet_govern::Governance;
use freshet_govern::approvals::Approvals;
use freshet_govern::audit::AuditConfig;
use freshet_govern::authn::Authenticator;
use freshet_govern::identity::{Grant, Role};
use freshet_govern::inventory::InventoryStore;
use freshet_govern::oidc::{OidcConfig, OidcVerifier};
use freshet_govern::permissions::PermissionStore;
use freshet_govern::tokens::TokenStore;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The audit chain's folders and key, resolved against the config's folder.
pub fn audit_config(config: &FreshetConfig, base: &Path) -> AuditConfig {
    let a = &config.audit;
    let mut c = AuditConfig::new(
        resolve(base, &a.dir),
        resolve(base, &a.checkpoint_dir),
        resolve(base, &a.key_file),
    );
    c.checkpoint_every = a.checkpoint_every;
    c.checkpoint_interval = Duration::from_secs(a.checkpoint_interval_secs);
    c
}

/// The token store file.
pub fn token_store_path(config: &FreshetConfig, base: &Path) -> PathBuf {
    resolve(base, &config.auth.store)
}

/// The admin token file `freshet init` and `freshet demo` write.
pub fn admin_token_path(config: &FreshetConfig, base: &Path) -> PathBuf {
    resolve(base, &config.auth.admin_token_file)
}

/// Grants of each OIDC group.
fn groups(config: &FreshetConfig) -> Result<BTreeMap<String, Vec<Grant>>> {
    let mut out = BTreeMap::new();
    for (group, grants) in &config.auth.groups {
        let mut list = Vec::new();
        for (i, g) in grants.iter().enumerate() {
            let field = format!("auth.groups.{group}[{i}]");
            let roles = g
                .roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            list.push(
                Grant::new(roles, g.scopes.clone()).map_err(|e| anyhow::anyhow!("{field}: {e}"))?,
            );
        }
        out.insert(group.clone(), list);
    }
    Ok(out)
}

/// Opens the governance service: tokens, OIDC, the audit chain (taking its lock).
pub fn open(config: &FreshetConfig, base: &Path) -> Result<Arc<Governance>> {
    let store_path = token_store_path(config, base);
    let tokens = TokenStore::open(&store_path)
        .with_context(|| format!("cannot open the token store at {}", store_path.display()))?;
    let oidc = match &config.auth.oidc {
        None => None,
        Some(o) => {
            let mut c = OidcConfig::new(o.issuer.clone(), o.audiences.clone());
            c.algorithms = o.algorithms.clone();
            c.leeway_secs = o.leeway_secs;
            c.roles_claim = o.roles_claim.clone();
            c.jwks_refresh_min_interval = Duration::from_secs(o.jwks_refresh_min_interval_secs);
            Some(OidcVerifier::new(c).map_err(|e| anyhow::anyhow!("auth.oidc: {e}"))?)
        }
    };
    let authn = Authenticator::new(config.auth.enabled, Arc::new(tokens), oidc, groups(config)?);
    let approvals = Arc::new(open_approvals(config, base)?);
    let audit = audit_config(config, base);
    let dir = audit.dir.clone();
    let inventory = InventoryStore::open(&store_path)
        .with_context(|| format!("cannot open the inventory at {}", store_path.display()))?;
    let facts = config
        .models
        .iter()
        .map(|(n, m)| (n.clone(), m.governance.clone()))
        .collect();
    let permissions = PermissionStore::open(&store_path).with_context(|| {
        format!(
            "cannot open the object permissions at {}",
            store_path.display()
        )
    })?;
    let gov = Governance::open(
        authn,
        audit,
        approvals,
        (inventory, facts),
        permissions,
        config.auth.metrics_public,
    )
    .with_context(|| format!("cannot open the audit chain at {}", dir.display()))?;
    Ok(Arc::new(gov))
}

/// The maker-checker approvals of a configuration (in the governance store file).
pub fn open_approvals(config: &FreshetConfig, base: &Path) -> Result<Approvals> {
    let path = token_store_path(config, base);
    let tiers = config
        .models
        .iter()
        .map(|(name, m)| (name.clone(), m.governance.risk_tier.as_str().to_string()));
    let required = config
        .approvals
        .required_tiers
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    let ttl = chrono::Duration::hours(config.approvals.ttl_hours.min(24 * 365) as i64);
    Approvals::open(&path, tiers, &required, ttl)
        .with_context(|| format!("cannot open the approvals at {}", path.display()))
}

/// Refuses to serve without authentication on anything but a loopback address, and
/// says loudly that it is off.
pub fn check_listener(config: &FreshetConfig, addr: std::net::SocketAddr) -> Result<()> {
    if config.auth.enabled {
        return Ok(());
    }
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "auth.enabled is false and server.listen ({addr}) is not a loopback address: \
             anyone who can reach it could change models and data. Turn auth on \
             (auth: {{ enabled: true }}, then `freshet token create`) or listen on 127.0.0.1"
        );
    }
    tracing::warn!(listen = %addr, "AUTHENTICATION IS OFF: every request on this loopback listener acts as an admin (set auth.enabled: true)");
    Ok(())
}

/// Writes `token` to `path` with mode 0600.
pub fn write_token_file(path: &Path, token: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    #[cfg(not(unix))]
    std::fs::write(path, format!("{token}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Makes sure the admin token file holds a working admin token: creates one (named
/// `admin`, or `admin-<time>` when that name is taken) when the file is missing or its
/// token no longer works. Returns whether one was created. The creation is audited.
pub fn ensure_admin_token(gov: &Governance, file: &Path, by: &str) -> Result<bool> {
    if let Ok(text) = std::fs::read_to_string(file) {
        let works = gov
            .authenticator()
            .tokens()
            .authenticate(text.trim())?
            .is_ok_and(|p| p.is_admin());
        if works {
            return Ok(false);
        }
    }
    let taken = gov.list_tokens()?.iter().any(|t| t.name == "admin");
    let name = if taken {
        format!("admin-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"))
    } else {
        "admin".to_string()
    };
    let by = freshet_govern::identity::Principal::system(by);
    let t = gov.create_token(
        &by,
        &name,
        vec![Grant::new(vec![Role::Admin], vec!["*".into()])?],
        None,
    )?;
    write_token_file(file, &t.token)?;
    let mut detail = BTreeMap::new();
    detail.insert("file".to_string(), file.display().to_string());
    gov.record_decision(
        by.name.trim_start_matches("system:"),
        "token.create",
        &format!("token:{name}"),
        freshet_govern::audit::Outcome::Succeeded,
        detail,
    )?;
    Ok(true)
}

/// A data-scientist token for one external training job, expiring after `secs`; the
/// job gets it as `MLFLOW_TRACKING_TOKEN`.
pub fn mint_job_token(gov: &Governance, model: &str, job: &str, secs: u64) -> Option<String> {
    let name = format!("job-{model}-{}", &job[..job.len().min(12)]);
    let scopes = vec!["*".to_string()];
    let grant = Grant::new(vec![Role::DataScientist], scopes).ok()?;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(secs.min(86_400 * 7) as i64);
    let by = freshet_govern::identity::Principal::system("loop");
    match gov.create_token(&by, &name, vec![grant], Some(expires)) {
        Ok(t) => {
            let mut detail = BTreeMap::new();
            detail.insert("expires_at".to_string(), expires.to_rfc3339());
            if let Err(e) = gov.record_decision(
                "loop",
                "token.create",
                &format!("token:{name}"),
                freshet_govern::audit::Outcome::Succeeded,
                detail,
            ) {
                tracing::error!(error = %e, "cannot audit a job token; not handing it out");
                return None;
            }
            Some(t.token)
        }
        Err(e) => {
            tracing::warn!(model, error = %e, "cannot mint a job token");
            None
        }
    }
}
