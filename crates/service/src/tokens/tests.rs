//! Unit tests of the parent module.

use super::*;

#[test]
fn a_token_is_found_by_its_digest_and_only_the_digest_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let mut file = TokenFile::load(&path).unwrap();
    assert!(file.tokens.is_empty());
    let token = file.add("carol", Role::Approver, "now".into()).unwrap();
    file.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(&token), "the token itself is never written");
    let back = TokenFile::load(&path).unwrap();
    let found = back.find(&token).unwrap();
    assert_eq!(
        (found.identity.as_str(), found.role),
        ("carol", Role::Approver)
    );
    assert!(back.find("tg_wrong").is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn revoking_removes_every_token_of_the_identity_and_bad_identities_are_refused() {
    let mut file = TokenFile::default();
    let a = file.add("bob", Role::Approver, String::new()).unwrap();
    file.add("bob", Role::Viewer, String::new()).unwrap();
    file.add("ci", Role::Ci, String::new()).unwrap();
    let newest = file.add("bob", Role::Approver, String::new()).unwrap();
    assert_eq!(file.revoke("bob", true), 2, "rotation keeps the newest");
    assert!(file.find(&a).is_none());
    assert!(file.find(&newest).is_some());
    assert_eq!(file.revoke("bob", false), 1);
    assert_eq!(file.tokens.len(), 1);
    assert!(file.add("bob smith", Role::Viewer, String::new()).is_err());
    assert!("root".parse::<Role>().is_err());
    assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
    let split = "service".parse::<Role>().unwrap_err();
    assert!(split.contains("trainer, gate or promoter"), "{split}");
}
