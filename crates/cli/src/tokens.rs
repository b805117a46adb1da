//! Credentials: `tollgate token create | list | revoke` keep the registry's token file,
//! which holds each token's digest with its identity and role (a new token is printed
//! once, on stdout alone, so `TOLLGATE_TOKEN=$(tollgate token create ...)` captures it);
//! `tollgate nats-config` writes nats-server's users and permissions and each identity's
//! `.creds` file.

use std::path::PathBuf;

use tollgate_service::tokens::TokenFile;

use clap::Subcommand;

use crate::CliError;

/// `tollgate token ...`: the registry's token file (`TOLLGATE_TOKENS_FILE`, else the
/// running `tollgate dev` stack's).
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for an identity and role: the token is printed once (stdout), only
    /// its SHA-256 digest is stored. Hand it to its holder as `TOLLGATE_TOKEN`.
    Create {
        /// Who holds it: a person on the spec's `approvers:` list, `ci`, a service.
        #[arg(long)]
        identity: String,
        /// approver, ci, service or viewer.
        #[arg(long)]
        role: tollgate_service::tokens::Role,
        /// The token file [default: TOLLGATE_TOKENS_FILE, else the dev stack's].
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List the tokens' identities, roles and when they were made (never the tokens).
    List {
        /// The token file [default: TOLLGATE_TOKENS_FILE, else the dev stack's].
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Remove an identity's tokens. To rotate: `token create` a new one for the same
    /// identity, hand it over, then `token revoke --identity NAME --keep-newest`.
    Revoke {
        /// Whose tokens.
        #[arg(long)]
        identity: String,
        /// Keep the identity's newest token (the one just made to replace the others).
        #[arg(long)]
        keep_newest: bool,
        /// The token file [default: TOLLGATE_TOKENS_FILE, else the dev stack's].
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// The token file: `--file`, `TOLLGATE_TOKENS_FILE`, else the running dev stack's.
fn path(file: Option<PathBuf>) -> Result<PathBuf, CliError> {
    file.or_else(|| std::env::var_os("TOLLGATE_TOKENS_FILE").map(PathBuf::from))
        .or_else(|| {
            tollgate_stack::discover()
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
            let mut t = crate::output::table(&["identity", "role", "created", "digest"]);
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

/// What `nats-config` wrote.
pub struct NatsWritten {
    /// The server config.
    pub config: PathBuf,
    /// How many `.creds` files there are.
    pub identities: usize,
}

/// Writes `dir/nats-server.conf`, `dir/<identity>.creds` and `dir/<identity>.nk` (the
/// seed alone, for the standard NATS clients) for every identity; keeps
/// the key of a `.creds` file that is already there.
pub fn nats_config(dir: &std::path::Path) -> Result<NatsWritten, crate::CliError> {
    use tollgate_bus::access::{Identity, authorization, creds_text, parse_creds};
    std::fs::create_dir_all(dir).map_err(|e| CliError::file(dir, e))?;
    let mut users = Vec::new();
    for identity in Identity::ALL {
        let path = dir.join(format!("{}.creds", identity.name()));
        let existing = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| parse_creds(&t).ok())
            .and_then(|(_, seed)| nkeys::KeyPair::from_seed(&seed).ok());
        let pair = match existing {
            Some(pair) => pair,
            None => {
                let pair = nkeys::KeyPair::new_user();
                let seed = pair
                    .seed()
                    .map_err(|e| CliError::usage(format!("nkey for {}: {e}", identity.name())))?;
                write_secret(&path, &creds_text(identity, &seed))?;
                pair
            }
        };
        // The seed alone, as the standard NATS clients read an nkey user's seed file
        // (nats-py's `nkeys_seed`, Go's `nats.NkeyOptionFromSeed`, `nats --nkey`).
        let seed = pair
            .seed()
            .map_err(|e| CliError::usage(format!("nkey for {}: {e}", identity.name())))?;
        write_secret(
            &dir.join(format!("{}.nk", identity.name())),
            &format!("{seed}\n"),
        )?;
        users.push((identity, pair.public_key()));
    }
    let config = dir.join("nats-server.conf");
    let text = format!(
        "# Generated by tollgate nats-config: one nkey user per Tollgate identity and what\n# each may publish and subscribe to. Start: nats-server -c {} -js -sd STORE_DIR\n\n{}",
        config.display(),
        authorization(&users)
    );
    std::fs::write(&config, text).map_err(|e| CliError::file(&config, e))?;
    Ok(NatsWritten {
        config,
        identities: users.len(),
    })
}

/// Writes a secret file only its owner can read.
pub(crate) fn write_secret(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    tollgate_service::tokens::write_private(path, text).map_err(|e| CliError::file(path, e))
}
