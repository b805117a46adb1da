//! Who calls the registry: the bearer token of each gRPC call and dashboard request,
//! checked against the token file's digests, and what each role may do.
//!
//! With a token file configured (`tokens_file`, `TOLLGATE_TOKENS_FILE`) every call needs
//! a valid token: none or a wrong one is `Unauthenticated`, a role that may not do the
//! call is `PermissionDenied`. The identity recorded in approvals and audit trails is the
//! token's; a name the caller gives (`--as`) is only a label that must match it. Without
//! a token file the registry is open, and says so loudly at start-up.

use std::path::PathBuf;

use tollgate_service::tokens::{BearerError, Role, WatchedTokens};
use tonic::{Request, Status, metadata::MetadataMap};
use tracing::warn;

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The token's identity; empty on an open registry.
    pub identity: String,
    /// The token's role; `None` on an open registry, where every call is allowed.
    pub role: Option<Role>,
}

impl Caller {
    /// The caller of an open registry.
    pub fn open() -> Self {
        Caller {
            identity: String::new(),
            role: None,
        }
    }

    /// Whether the caller's role is one of `allowed` (on an open registry, always).
    pub fn may(&self, allowed: &[Role]) -> bool {
        self.role.is_none_or(|role| allowed.contains(&role))
    }

    /// Refuses the call unless the caller's role is one of `allowed`.
    pub fn require(&self, allowed: &[Role], what: &str) -> Result<(), Status> {
        match self.role {
            Some(role) if !self.may(allowed) => Err(Status::permission_denied(format!(
                "{} (role {role}) may not {what}: it needs the {} role",
                self.identity,
                allowed
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))),
            _ => Ok(()),
        }
    }

    /// The identity to record for a name the caller gave (`approver`, `actor`): the
    /// token's, which a given name must match. On an open registry, the given name.
    pub fn label(&self, given: &str) -> Result<String, Status> {
        if self.role.is_none() {
            return Ok(given.to_string());
        }
        if given.is_empty() || given == self.identity {
            Ok(self.identity.clone())
        } else {
            Err(Status::permission_denied(format!(
                "the token is {}'s, not {given}'s: the recorded identity is the token's",
                self.identity
            )))
        }
    }
}

/// The caller a request was authenticated as (the interceptor put it there).
pub fn caller<T>(request: &Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::open)
}

/// Checks bearer tokens against the token file, reading it again when it changes.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: Option<WatchedTokens>,
}

impl Authenticator {
    /// Checks tokens against the file at `path`; `None` leaves the registry open.
    pub fn new(path: Option<PathBuf>) -> Self {
        if path.is_none() {
            warn!(
                "registry authentication is OFF: no tokens_file (TOLLGATE_TOKENS_FILE), so anyone who reaches this port may approve, promote and register"
            );
        }
        Authenticator {
            tokens: path.map(WatchedTokens::new),
        }
    }

    /// Whether tokens are checked.
    pub fn enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// The caller of a request with `metadata`.
    pub fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let header = metadata.get("authorization").and_then(|v| v.to_str().ok());
        self.caller_of(header)
    }

    /// The caller of a request whose `Authorization` header is `header`.
    pub fn caller_of(&self, header: Option<&str>) -> Result<Caller, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(Caller::open());
        };
        match tokens.bearer(header) {
            Ok(entry) => Ok(Caller {
                identity: entry.identity,
                role: Some(entry.role),
            }),
            Err(BearerError::Unreadable(e)) => {
                warn!(error = %e, "token file unreadable; refusing calls");
                Err(Status::unavailable(
                    "the registry cannot read its token file",
                ))
            }
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }

    /// The gRPC interceptor: authenticates each call and leaves its [`Caller`] in the
    /// request's extensions.
    pub fn intercept(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.caller(request.metadata())?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}
