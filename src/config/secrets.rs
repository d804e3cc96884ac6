//! The one step of loading that reads files other than the config itself:
//! token files named by the config, each refused when other users may read
//! it. Kept apart so that parsing and the rules stay pure.

use super::Problem;
use super::schema::Role;
use super::settings::{ApiToken, Secret, Settings, TokenHash};
use std::path::{Path, PathBuf};

/// Where a secret read from a file goes.
#[derive(Clone, Debug)]
pub enum Slot {
    /// `cloud.token_file`: the connector token.
    CloudToken,
    /// `fiscalbox.billing.password_file`: the billing password (mode 0600).
    BillingPassword,
    /// `api.tokens[i].file`: an API token, kept only as its hash.
    ApiToken { name: String, role: Role },
    /// `gateway.merchant_key_file`: the gateway's merchant control key.
    GatewayKey,
}

/// A secret the config names by file, not yet read.
#[derive(Clone, Debug)]
pub struct SecretFile {
    /// The config key naming the file (`cloud.token_file`, `api.tokens[0].file`).
    pub key: String,
    pub line: Option<usize>,
    pub path: PathBuf,
    pub slot: Slot,
}

/// Read every secret file into `settings`; one problem per unreadable or
/// too-open file (the message never holds the secret).
pub fn resolve(settings: &mut Settings, files: &[SecretFile]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for f in files {
        let read = match f.slot {
            Slot::BillingPassword => read_private_file(&f.path),
            _ => read_token_file(&f.path),
        };
        match read {
            Ok(secret) => match &f.slot {
                Slot::CloudToken => settings.cloud.token = Some(secret),
                Slot::BillingPassword => {
                    if let Some(b) = settings.fiscalbox.as_mut().and_then(|f| f.billing.as_mut()) {
                        b.password = secret;
                    }
                }
                Slot::ApiToken { name, role } => settings.api.tokens.push(ApiToken {
                    name: name.clone(),
                    role: *role,
                    hash: TokenHash::of(secret.expose()),
                }),
                Slot::GatewayKey => {
                    if let Some(g) = settings.gateway.as_mut() {
                        g.merchant_key = secret;
                    }
                }
            },
            Err(message) => problems.push(Problem {
                key: f.key.clone(),
                line: f.line,
                message,
            }),
        }
    }
    problems
}

/// Read a password from a file that only its owner may read (0600).
pub fn read_private_file(path: &Path) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} may be read by other users (mode {:o}); it holds a password: chmod 0600 it",
            path.display(),
            mode & 0o777
        ));
    }
    read_token_file(path)
}

/// Read a token from a file that only its owner (and group) may read.
pub fn read_token_file(path: &Path) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(format!(
            "{} is readable by every user (mode {:o}); it holds a token: chmod 0640 (or 0600) it",
            path.display(),
            mode & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret::new(token))
}
