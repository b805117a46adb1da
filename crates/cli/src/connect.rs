//! How the CLI reaches the registry: its client, with the bearer token from
//! `TOLLGATE_TOKEN` or the running dev stack's own.

use crate::CliError;

/// A registry client calling with [`token`], trusting `TOLLGATE_REGISTRY_CA` for an
/// `https://` registry.
pub(crate) fn client(url: &str) -> Result<tollgate_proto::RegistryApi, CliError> {
    client_with(url, &token())
}

/// A registry client calling with `token`.
pub(crate) fn client_with(url: &str, token: &str) -> Result<tollgate_proto::RegistryApi, CliError> {
    let ca = match std::env::var_os("TOLLGATE_REGISTRY_CA").filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            Some(std::fs::read(&path).map_err(|e| CliError::file(&path, e))?)
        }
        None => None,
    };
    tollgate_proto::registry_client_tls(url, token, ca).map_err(|source| CliError::RegistryUrl {
        url: url.into(),
        source,
    })
}

/// The variable holding the bearer token the CLI calls the registry with.
pub const TOKEN_ENV: &str = "TOLLGATE_TOKEN";

/// The bearer token the CLI calls the registry with: `TOLLGATE_TOKEN`, else the running
/// `tollgate dev` stack's own (an `admin` token in its data directory); empty: none.
pub(crate) fn token() -> String {
    match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => tollgate_stack::discover()
            .filter(|s| !s.cli_token_file.is_empty())
            .and_then(|s| std::fs::read_to_string(s.cli_token_file).ok())
            .map(|t| t.trim().to_string())
            .unwrap_or_default(),
    }
}

/// A run's record. The registry records a run from its events a moment after the verdict
/// that `publish --wait` prints, so a run not found yet is asked for again for up to 5 s.
pub(crate) async fn get_run(
    registry: &mut tollgate_proto::RegistryApi,
    run_id: &str,
) -> Result<tollgate_proto::RunSummary, CliError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let request = tollgate_proto::GetRunRequest {
            run_id: run_id.into(),
        };
        match registry.get_run(request).await {
            Ok(run) => return Ok(run.into_inner()),
            Err(s) if s.code() == tonic::Code::NotFound && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(s) => return Err(s.into()),
        }
    }
}
