//! The data servers the tests read datasets from, started like nats-server: on a free
//! loopback port, in a temporary directory, stopped when dropped.
//!
//! - [`S3Server`]: moto's S3-compatible server (`moto[server]` from PyPI, installed by
//!   `make tools`). Chosen over s3s-fs because it installs as a wheel in seconds where
//!   s3s-fs compiles for minutes, and because it checks credentials: the first three calls
//!   are free and make an IAM user with an S3 policy and a key, and every call after needs
//!   that key, so a wrong one is refused as AWS refuses it.
//! - [`AzuriteServer`]: Azurite, Microsoft's Azure Storage emulator (npm's `azurite`,
//!   installed by `make tools` into `.tools/azurite`), which checks the account key's
//!   signature on every call.
//! - [`PgServer`]: PostgreSQL from Debian's `postgresql` package (`initdb`, `pg_ctl`),
//!   with password authentication (`scram-sha-256`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

use crate::{free_port, workspace_root};

/// The venv `make tools` builds.
fn venv_bin(name: &str) -> PathBuf {
    workspace_root().join(".tools/venv/bin").join(name)
}

/// The venv's Python (`TOLLGATE_PYTHON`, else `.tools/venv/bin/python`): boto3 and
/// pyarrow are there.
pub fn python() -> PathBuf {
    std::env::var_os("TOLLGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| venv_bin("python"))
}

/// Starts `cmd` (the server `binary`) with its output discarded.
fn quiet(cmd: &mut Command, binary: &Path) -> anyhow::Result<Child> {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("{} not started (make tools installs it)", binary.display()))
}

/// Waits until something listens on `port`.
fn wait_listening(port: u16, what: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} never listened on port {port}")
}

/// moto's S3 server with authentication on, and a key that may use it.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// The key id moto made.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
}

impl S3Server {
    /// Starts moto and makes the user, its S3 policy and its key.
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let binary = std::env::var_os("TOLLGATE_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| venv_bin("moto_server"));
        let child = quiet(
            Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", "3"),
            &binary,
        )?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut server = S3Server {
            child,
            endpoint,
            access_key: String::new(),
            secret_key: String::new(),
        };
        wait_listening(port, "moto_server")?;
        let out = server.python(
            "import boto3, json\n\
             iam = boto3.client('iam', endpoint_url=E, region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x')\n\
             iam.create_user(UserName='tollgate')\n\
             iam.put_user_policy(UserName='tollgate', PolicyName='s3', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}]}))\n\
             k = iam.create_access_key(UserName='tollgate')['AccessKey']\n\
             print(k['AccessKeyId'], k['SecretAccessKey'])\n",
        )?;
        let mut words = out.split_whitespace();
        server.access_key = words.next().context("no key id")?.into();
        server.secret_key = words.next().context("no secret")?.into();
        Ok(server)
    }

    /// Runs `code` with boto3, `E` set to the endpoint and `K`, `S` to the key; returns
    /// what it printed.
    fn python(&self, code: &str) -> anyhow::Result<String> {
        let program = format!(
            "E = {:?}\nK = {:?}\nS = {:?}\n{code}",
            self.endpoint, self.access_key, self.secret_key
        );
        let out = Command::new(python()).args(["-c", &program]).output()?;
        if !out.status.success() {
            bail!("boto3: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Makes a bucket.
    pub fn bucket(&self, name: &str) -> anyhow::Result<()> {
        self.python(&format!(
            "import boto3\nboto3.client('s3', endpoint_url=E, region_name='us-east-1', aws_access_key_id=K, aws_secret_access_key=S).create_bucket(Bucket={name:?})\n"
        ))?;
        Ok(())
    }

    /// Uploads `file` to `s3://bucket/key`.
    pub fn put(&self, file: &Path, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.python(&format!(
            "import boto3\nboto3.client('s3', endpoint_url=E, region_name='us-east-1', aws_access_key_id=K, aws_secret_access_key=S).upload_file({:?}, {bucket:?}, {key:?})\n",
            file.display().to_string()
        ))?;
        Ok(())
    }

    /// The environment a process reads the store with: the endpoint, the region and the
    /// key (or `secret` instead of the real secret, to be refused).
    pub fn env(&self, secret: Option<&str>) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                secret.unwrap_or(&self.secret_key).to_string(),
            ),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite's blob service with its well-known development account.
pub struct AzuriteServer {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`, for `AZURITE_BLOB_STORAGE_URL`.
    pub url: String,
}

/// The development account's key every Azurite accepts.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl AzuriteServer {
    /// Starts Azurite's blob service on a free port, storing in a temp dir.
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = tempfile::tempdir()?;
        let binary = workspace_root().join(".tools/azurite/node_modules/.bin/azurite-blob");
        let child = quiet(
            Command::new(&binary)
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(dir.path())
                .args(["--silent", "--skipApiVersionCheck"]),
            &binary,
        )?;
        let server = AzuriteServer {
            child,
            _dir: dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_listening(port, "azurite-blob")?;
        Ok(server)
    }

    /// Makes a container (with azure-storage-blob from the venv).
    pub fn container(&self, name: &str) -> anyhow::Result<()> {
        let program = format!(
            "from azure.storage.blob import BlobServiceClient\nBlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={}/devstoreaccount1;').create_container({name:?})\n",
            self.url
        );
        let out = Command::new(python()).args(["-c", &program]).output()?;
        if !out.status.success() {
            bail!(
                "azure-storage-blob: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The environment a process reads it with: the emulator, and the account key (or
    /// `key` instead, to be refused).
    pub fn env(&self, key: Option<&str>) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
            ("AZURITE_BLOB_STORAGE_URL", self.url.clone()),
        ];
        if let Some(key) = key {
            env.push(("AZURE_STORAGE_ACCOUNT_KEY", key.to_string()));
        }
        env
    }
}

impl Drop for AzuriteServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's PostgreSQL binaries: `TOLLGATE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn pg_bin() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TOLLGATE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (make tools installs Debian's postgresql)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .context("no initdb under /usr/lib/postgresql")
}

/// A PostgreSQL server in a temporary directory, with a `tollgate` user and database.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Its port on loopback.
    pub port: u16,
    /// The `tollgate` user's password.
    pub password: String,
}

/// Runs `cmd` as the `postgres` user when this process is root (PostgreSQL refuses to
/// run as root), as this user otherwise.
fn as_postgres(program: &Path, args: &[&str]) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program).args(args);
        cmd
    } else {
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd
    }
}

impl PgServer {
    /// Runs `initdb` and starts the server on a free port.
    pub fn start() -> anyhow::Result<Self> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir()?;
        let password = "tollgate-e2e-password".to_string();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password)?;
        // The postgres user owns what it runs in.
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status();
        let out = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "tollgate",
                "--auth=scram-sha-256",
                "--pwfile",
                pwfile.to_str().unwrap(),
            ],
        )
        .output()?;
        if !out.status.success() {
            bail!("initdb: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            dir.path().display()
        );
        let log = dir.path().join("log");
        let out = as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        )
        .output()?;
        if !out.status.success() {
            bail!(
                "pg_ctl start: {}{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let server = PgServer {
            bin,
            dir,
            port,
            password,
        };
        server.sql("postgres", "CREATE DATABASE crm")?;
        Ok(server)
    }

    /// Runs `sql` in `database` with psql; returns what it printed.
    pub fn sql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "tollgate",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tA",
            ])
            .args(["-c", sql])
            .env("PGPASSWORD", &self.password)
            .output()?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `postgres://tollgate@127.0.0.1:<port>/crm?<what>`.
    pub fn uri(&self, what: &str) -> String {
        format!("postgres://tollgate@127.0.0.1:{}/crm?{what}", self.port)
    }

    /// Stops the server at once (connections in hand drop).
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
