//! The CI templates for a model repository and the setup action they use: the action's
//! install script run as a runner would, against a release laid out as the release
//! workflow publishes it (file:// instead of GitHub), and the templates' contract (no
//! Tollgate checkout, the team's Tollgate through repository secrets, `tollgate dev` only
//! for pull-request checks). `make test` also runs actionlint over all of them.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use tollgate_e2e::{processes::bin, workspace_root};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap()
}

/// Publishes the built `tollgate` as release `version` under `dir`, as the release
/// workflow names and checksums it; returns the release base URL.
fn release(dir: &Path, version: &str) -> String {
    let target = match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    };
    let out = dir.join("releases").join(version);
    std::fs::create_dir_all(&out).unwrap();
    let archive = format!("tollgate-{version}-{target}.tar.gz");
    let built = bin("tollgate");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(out.join(&archive))
        .arg("-C")
        .arg(built.parent().unwrap())
        .arg("tollgate")
        .status()
        .unwrap();
    assert!(status.success());
    let sum = Command::new("sha256sum")
        .arg(&archive)
        .current_dir(&out)
        .output()
        .unwrap();
    std::fs::write(out.join(format!("{archive}.sha256")), sum.stdout).unwrap();
    format!("file://{}", dir.join("releases").display())
}

fn install(root: &Path, base: &str, version: &str, git: Option<&str>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_root().join("deploy/github/setup-tollgate/install.sh"))
        .env("TOLLGATE_VERSION", version)
        .env("TOLLGATE_ROOT", root)
        .env("TOLLGATE_RELEASE_BASE", base)
        .env_remove("TOLLGATE_GIT");
    if let Some(git) = git {
        cmd.env("TOLLGATE_GIT", git);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_setup_action_installs_the_released_binary_checks_its_sum_and_keeps_a_cached_one() {
    let dir = tempfile::tempdir().unwrap();
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let base = release(dir.path(), &version);
    let root: PathBuf = dir.path().join("tool");

    let out = install(&root, &base, &version, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("installed the released"),
        "{}",
        text(&out)
    );
    let installed = Command::new(root.join("bin/tollgate"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&installed.stdout).trim(),
        format!("tollgate {}", env!("CARGO_PKG_VERSION"))
    );

    // A restored cache of the same version is kept as it is.
    let again = install(&root, "file:///nowhere", &version, None);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("(cached)"), "{}", text(&again));

    // An archive that does not match its published sum is refused.
    let other = dir.path().join("other");
    let sums = std::fs::read_dir(dir.path().join("releases").join(&version))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sha256"))
        .unwrap();
    let archive = sums.file_stem().unwrap().to_string_lossy().to_string();
    std::fs::write(&sums, format!("{}  {archive}\n", "0".repeat(64))).unwrap();
    let refused = install(&other, &base, &version, None);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("does not match its published SHA-256"),
        "{}",
        text(&refused)
    );
    assert!(!other.join("bin/tollgate").exists());

    // No released binary: it falls back to building from source, which needs to know
    // where the source is.
    let unreleased = install(&other, &base, "v9.9.9", None);
    assert!(!unreleased.status.success());
    assert!(
        text(&unreleased).contains("set TOLLGATE_GIT to build from source"),
        "{}",
        text(&unreleased)
    );
    let action = read("deploy/github/setup-tollgate/action.yml");
    assert!(action.contains("actions/cache@"), "{action}");
    let script = read("deploy/github/setup-tollgate/install.sh");
    assert!(script.contains("cargo install --locked"), "{script}");
}

#[test]
fn the_templates_need_no_tollgate_checkout_and_publish_to_the_teams_tollgate() {
    let ci = read("deploy/github/ml-ci.yml");
    let retrain = read("deploy/github/ml-retrain.yml");
    for (name, template) in [("ml-ci", &ci), ("ml-retrain", &retrain)] {
        for gone in ["make ", "cargo build", "rust-toolchain"] {
            assert!(!template.contains(gone), "{name} still runs {gone:?}");
        }
        for needed in [
            "deploy/github/setup-tollgate@",
            "secrets.TOLLGATE_NATS_CREDS",
            "secrets.TOLLGATE_TOKEN",
            "vars.TOLLGATE_NATS_URL",
            "TOLLGATE_NATS_CREDS=$RUNNER_TEMP/tollgate.creds",
        ] {
            assert!(template.contains(needed), "{name} lacks {needed:?}");
        }
    }
    // `tollgate dev` only for pull-request checks without a deployed Tollgate; never
    // for a retrain, whose version must outlive the job.
    assert!(ci.contains("if: vars.TOLLGATE_NATS_URL == '' && github.event_name == 'pull_request'"));
    assert!(ci.contains("tollgate dev"));
    assert!(!retrain.contains("tollgate dev --"));
    let release = read(".github/workflows/release.yml");
    for needed in [
        "tags: [\"v*\"]",
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "sha256sum",
        "--platform linux/amd64,linux/arm64",
    ] {
        assert!(release.contains(needed), "release.yml lacks {needed:?}");
    }
}
