//! `tollgate token create | list | revoke`: the registry's token file, which holds each
//! token's digest with its identity and role. A new token is printed once, on stdout
//! alone, so `TOLLGATE_TOKEN=$(tollgate token create ...)` captures it.

use std::path::PathBuf;

use tollgate_service::tokens::TokenFile;

use crate::{CliError, TokenCommand};

/// The token file: `--file`, `TOLLGATE_TOKENS_FILE`, else the running dev stack's.
fn path(file: Option<PathBuf>) -> Result<PathBuf, CliError> {
    file.or_else(|| std::env::var_os("TOLLGATE_TOKENS_FILE").map(PathBuf::from))
        .or_else(|| {
            crate::dev::discover()
                .filter(|s| !s.tokens_file.is_empty())
                .map(|s| PathBuf::from(s.tokens_file))
        })
        .ok_or_else(|| {
            CliError::usage(
                "no token file: give --file, set TOLLGATE_TOKENS_FILE, or run tollgate dev",
            )
        })
}

fn load(path: &std::path::Path) -> Result<TokenFile, CliError> {
    TokenFile::load(path).map_err(|e| CliError::usage(e.to_string()))
}

fn save(file: &TokenFile, path: &std::path::Path) -> Result<(), CliError> {
    file.save(path).map_err(|e| CliError::usage(e.to_string()))
}

/// Runs a `tollgate token` command.
pub fn run(command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            identity,
            role,
            file,
        } => {
            let path = path(file)?;
            let mut tokens = load(&path)?;
            let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let token = tokens
                .add(&identity, role, created)
                .map_err(|e| CliError::usage(e.to_string()))?;
            save(&tokens, &path)?;
            println!("{token}");
            eprintln!(
                "token for {identity} ({role}) added to {}; it is shown only now: hand it over as TOLLGATE_TOKEN",
                path.display()
            );
            Ok(())
        }
        TokenCommand::List { file } => {
            let path = path(file)?;
            let tokens = load(&path)?;
            let mut t = crate::show::table(&["identity", "role", "created", "digest"]);
            for e in &tokens.tokens {
                t.add_row(vec![
                    e.identity.clone(),
                    e.role.to_string(),
                    e.created.clone(),
                    format!("{}…", &e.sha256[..12.min(e.sha256.len())]),
                ]);
            }
            say!("{t}");
            Ok(())
        }
        TokenCommand::Revoke {
            identity,
            keep_newest,
            file,
        } => {
            let path = path(file)?;
            let mut tokens = load(&path)?;
            let removed = tokens.revoke(&identity, keep_newest);
            save(&tokens, &path)?;
            say!(
                "revoked {removed} token{} of {identity} in {}",
                if removed == 1 { "" } else { "s" },
                path.display()
            );
            Ok(())
        }
    }
}
