//! Registry access tokens: who a caller is and what role it has, from a bearer token.
//!
//! The token file (`TOLLGATE_TOKENS_FILE`, TOML; a Kubernetes Secret in a cluster) holds
//! each token's SHA-256 digest with its identity and role, never the token: a leaked file
//! grants nothing. `tollgate token create` prints a new token once and adds its digest;
//! `tollgate token revoke` removes an identity's tokens. The registry reads the file again
//! whenever it changes.

use std::{fmt, path::Path, str::FromStr};

use serde::{Deserialize, Serialize};

/// What a token's holder may do at the registry: a person's role, or the one job of a
/// service, so that no service can do another's (least privilege).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A person who applies specs (a model's policy) with `tollgate apply`.
    Admin,
    /// A person who approves, rejects, overrides, rolls back, tags and aliases (and, for
    /// each model, must be on its applied spec's `approvers:` list).
    Approver,
    /// CI: publishes triggers and reads runs and versions.
    Ci,
    /// The trainer: registers versions.
    Trainer,
    /// The gate: records gate decisions.
    Gate,
    /// The promoter: moves versions between stages.
    Promoter,
    /// Reads only (the model server, the data-validator, dashboards).
    Viewer,
    /// A person operating Tollgate: manages webhooks and reads everything.
    Operator,
}

impl Role {
    /// Every role, as `--role` lists them.
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Approver,
        Role::Ci,
        Role::Trainer,
        Role::Gate,
        Role::Promoter,
        Role::Viewer,
        Role::Operator,
    ];

    /// The role's word.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Approver => "approver",
            Role::Ci => "ci",
            Role::Trainer => "trainer",
            Role::Gate => "gate",
            Role::Promoter => "promoter",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    /// The role a service's token has: its own job, or reading.
    pub fn of_service(service: &str) -> Role {
        match service {
            "trainer" => Role::Trainer,
            "gate" => Role::Gate,
            "promoter" => Role::Promoter,
            _ => Role::Viewer,
        }
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        word.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let words = || Role::ALL.map(Role::name).join(", ");
        if s == "service" {
            return Err(format!(
                "the service role is split by job: give each service its own token with role trainer, gate or promoter, or viewer for the data-validator and the model server (roles: {})",
                words()
            ));
        }
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use one of {}", words()))
    }
}

/// One token's record: whose it is, its role, and the digest it is checked by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds it: a person (`carol`) or a service (`trainer`).
    pub identity: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// When it was made (RFC 3339).
    #[serde(default)]
    pub created: String,
}

/// The token file's contents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// Every valid token, as `[[token]]` tables.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

/// Why the token file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read or written.
    #[error("token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a token file.
    #[error("token file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The identity is empty or holds characters other than letters, digits, `-`, `_`, `.`
    /// and `@`.
    #[error("identity {0:?}: use letters, digits, '-', '_', '.' and '@'")]
    Identity(String),
}

/// Writes `text` to a file only its owner can read (0600), synced to disk: token files,
/// the dev stack's CLI token and NATS `.creds` files.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The digest a token is stored and checked by.
pub fn digest(token: &str) -> String {
    tollgate_spec::digest(token)
}

impl TokenFile {
    /// Reads the file at `path`; a file that does not exist holds no tokens.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
            Err(source) => {
                return Err(TokenError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| TokenError::Invalid {
            path: path.display().to_string(),
            message: e.message().to_string(),
        })
    }

    /// Writes the file at `path` (a new file readable by its owner only), replacing it
    /// whole so a reader never sees half of it.
    pub fn save(&self, path: &Path) -> Result<(), TokenError> {
        let io = |source| TokenError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = toml::to_string(self).map_err(|e| TokenError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let header = "# Tollgate registry tokens: digests only (tollgate token create / revoke).\n";
        let tmp = path.with_extension("tmp");
        write_private(&tmp, &format!("{header}{text}")).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Makes a token for `identity` with `role`, records its digest, and returns the
    /// token: the only time it is ever shown.
    pub fn add(
        &mut self,
        identity: &str,
        role: Role,
        created: String,
    ) -> Result<String, TokenError> {
        let valid = !identity.is_empty()
            && identity
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
        if !valid {
            return Err(TokenError::Identity(identity.into()));
        }
        let bytes: [u8; 32] = rand::random();
        let token = format!(
            "tg_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        self.tokens.push(TokenEntry {
            identity: identity.into(),
            role,
            sha256: digest(&token),
            created,
        });
        Ok(token)
    }

    /// Removes the tokens of `identity` (all, or all but the newest with `keep_newest`);
    /// returns how many.
    pub fn revoke(&mut self, identity: &str, keep_newest: bool) -> usize {
        let before = self.tokens.len();
        let newest = self.tokens.iter().rposition(|t| t.identity == identity);
        let mut i = 0;
        self.tokens.retain(|t| {
            let keep = t.identity != identity || (keep_newest && Some(i) == newest);
            i += 1;
            keep
        });
        before - self.tokens.len()
    }

    /// The record of `token`, if it is valid.
    pub fn find(&self, token: &str) -> Option<&TokenEntry> {
        let d = digest(token);
        self.tokens.iter().find(|t| t.sha256 == d)
    }
}

#[cfg(test)]
mod tests;

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// The request carries no `Authorization: Bearer` header.
    #[error("no bearer token: set TOLLGATE_TOKEN (tollgate token create makes one)")]
    Missing,
    /// The token is not in the file.
    #[error("the bearer token is not valid (unknown or revoked)")]
    Unknown,
    /// The token file could not be read: every call is refused.
    #[error("the token file cannot be read")]
    Unreadable(#[source] TokenError),
}

/// A token file read again whenever it changes: what the registry and the model server
/// check bearer tokens against, so a new or revoked token counts at once.
#[derive(Debug, Clone)]
pub struct WatchedTokens {
    path: std::path::PathBuf,
    cache: std::sync::Arc<std::sync::RwLock<(Option<std::time::SystemTime>, TokenFile)>>,
}

impl WatchedTokens {
    /// Checks tokens against the file at `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        WatchedTokens {
            path: path.into(),
            cache: Default::default(),
        }
    }

    /// The tokens as the file holds them now.
    pub fn current(&self) -> Result<TokenFile, TokenError> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if cache.0.is_some() && cache.0 == modified {
                return Ok(cache.1.clone());
            }
        }
        let file = TokenFile::load(&self.path)?;
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = (modified, file.clone());
        Ok(file)
    }

    /// The entry of the bearer token an `Authorization` header value carries.
    pub fn bearer(&self, header: Option<&str>) -> Result<TokenEntry, BearerError> {
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(BearerError::Missing);
        };
        let tokens = self.current().map_err(BearerError::Unreadable)?;
        tokens
            .find(token.trim())
            .cloned()
            .ok_or(BearerError::Unknown)
    }
}
