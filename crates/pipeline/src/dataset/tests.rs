//! Unit tests of the parent module.

use super::*;

fn access(roots: Vec<PathBuf>, max_bytes: u64) -> DataAccess {
    DataAccess {
        buckets: Vec::new(),
        cache_dir: std::env::temp_dir(),
        roots,
        max_bytes,
    }
}

#[test]
fn only_files_under_a_root_are_read_after_dot_dot_and_symlinks() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let inside = root.path().join("churn.csv");
    std::fs::write(&inside, "a\n1\n").unwrap();
    let secret = outside.path().join("secret.csv");
    std::fs::write(&secret, "a\n1\n").unwrap();
    let a = access(vec![root.path().to_path_buf()], 1 << 20);

    let real = a.confine("file://x", &inside).unwrap();
    assert_eq!(real, std::fs::canonicalize(&inside).unwrap());
    assert!(matches!(
        a.confine("file:///etc/passwd", Path::new("/etc/passwd")),
        Err(DatasetError::Outside { .. })
    ));
    let dotted = root.path().join("../x.csv");
    let err = a.confine("file://../x.csv", &dotted).unwrap_err();
    assert!(matches!(err, DatasetError::DotDot(_)), "{err}");
    #[cfg(unix)]
    {
        let link = root.path().join("link.csv");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let err = a.confine("file://link", &link).unwrap_err();
        assert!(err.to_string().contains("outside the data roots"), "{err}");
    }
    let none = access(Vec::new(), 1 << 20);
    let err = none.confine("file://x", &inside).unwrap_err();
    assert!(err.to_string().contains("none configured"), "{err}");
}

#[test]
fn a_dataset_over_the_limit_is_named_with_the_limit() {
    let a = access(Vec::new(), 100);
    assert!(a.within_limit("d", 100).is_ok());
    let err = a.within_limit("d", 101).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataset d is 101 bytes, over the 100-byte limit (max_dataset_bytes)"
    );
}

#[test]
fn object_names_stay_inside_their_store() {
    for good in ["churn.parquet", "incoming/2026/churn.csv", "a..b.csv"] {
        assert!(check_object_name(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "incoming/../../x",
        "a\\b",
        "a\nb",
    ] {
        assert!(check_object_name(bad).is_err(), "{bad:?}");
    }
}
