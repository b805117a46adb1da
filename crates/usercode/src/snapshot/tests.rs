//! Unit tests of the parent module.

use std::path::Path;

use super::*;

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "tollgate.yaml", "model: m\n");
    write(d, "train.py", "print('hi')\n");
    write(d, "tests/model/test_quality.py", "def test_x(): pass\n");
    write(d, ".gitignore", "*.parquet\n__pycache__/\n");
    write(d, ".tollgateignore", "notebooks/\n");
    write(d, "data.parquet", "PAR1 big data");
    write(d, "__pycache__/x.pyc", "bytecode");
    write(d, "notebooks/explore.ipynb", "{}");
    write(d, ".git/HEAD", "ref: refs/heads/main");
    dir
}

#[test]
fn packs_what_git_would_track_and_nothing_else() {
    let dir = folder();
    let names: Vec<String> = files(dir.path())
        .unwrap()
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            ".gitignore",
            ".tollgateignore",
            "tests/model/test_quality.py",
            "tollgate.yaml",
            "train.py"
        ]
    );
}

#[test]
fn the_digest_depends_on_contents_not_on_times() {
    let dir = folder();
    let first = pack(dir.path()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(dir.path(), "train.py", "print('hi')\n");
    assert_eq!(pack(dir.path()).unwrap().digest, first.digest);
    write(dir.path(), "train.py", "print('changed')\n");
    assert_ne!(pack(dir.path()).unwrap().digest, first.digest);
    assert_eq!(first.files, 5);
}

#[test]
fn unpacks_the_same_files_with_their_executable_bit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = folder();
    let script = dir.path().join("train.py");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let snapshot = pack(dir.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(
        unpack(&snapshot.bytes, &snapshot.digest, out.path()).unwrap(),
        5
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("tests/model/test_quality.py")).unwrap(),
        "def test_x(): pass\n"
    );
    let mode = std::fs::metadata(out.path().join("train.py"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0);
    assert!(!out.path().join("data.parquet").exists());
}

#[test]
fn a_tampered_snapshot_is_refused() {
    let snapshot = pack(folder().path()).unwrap();
    let mut bytes = snapshot.bytes.clone();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    let out = tempfile::tempdir().unwrap();
    let err = unpack(&bytes, &snapshot.digest, out.path()).unwrap_err();
    assert!(matches!(err, SnapshotError::Digest { .. }), "{err}");
}

#[test]
fn an_archive_that_leaves_its_folder_is_refused() {
    let mut header = tar::Header::new_gnu();
    let name = b"../escaped.txt";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(2);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append(&header, &b"hi"[..]).unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let out = tempfile::tempdir().unwrap();
    let inner = out.path().join("inner");
    let err = unpack(&bytes, &digest(&bytes), &inner).unwrap_err();
    assert!(
        err.to_string().contains("leaves the snapshot's folder"),
        "{err}"
    );
    assert!(!out.path().join("escaped.txt").exists());
}

#[test]
fn a_folder_over_the_limit_names_its_largest_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train.py", "x");
    let big = std::fs::File::create(dir.path().join("weights.bin")).unwrap();
    big.set_len(MAX_BYTES + 1).unwrap();
    let err = pack(dir.path()).unwrap_err().to_string();
    assert!(err.contains("weights.bin (64.0 MiB)"), "{err}");
    assert!(err.contains(".tollgateignore"), "{err}");
}
