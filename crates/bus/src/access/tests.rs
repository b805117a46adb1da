//! Unit tests of the parent module.

use super::*;

fn may_publish(identity: Identity, subject: &str) -> bool {
    permissions(identity).publish.iter().any(|p| p == subject)
}

#[test]
fn only_the_gate_and_the_registry_start_promote_and_only_the_registry_production() {
    let promote = subjects::stage(Stage::Promote);
    let production = subjects::stage(Stage::Production);
    // The admin is the break-glass identity: it may publish anything (`>`).
    for identity in Identity::ALL.into_iter().filter(|&i| i != Identity::Admin) {
        let expected = matches!(identity, Identity::Gate | Identity::Registry);
        assert_eq!(
            may_publish(identity, &promote),
            expected,
            "{}",
            identity.name()
        );
        assert_eq!(
            may_publish(identity, &production),
            identity == Identity::Registry,
            "{}",
            identity.name()
        );
    }
}

#[test]
fn ci_and_the_viewer_write_no_bucket_and_hear_only_their_own_inbox() {
    for identity in [Identity::Ci, Identity::Viewer] {
        let p = permissions(identity);
        // CI uploads code snapshots and models with its triggers; nothing else.
        let code = format!("$O.{}.", subjects::CODE_STORE);
        assert!(
            !p.publish
                .iter()
                .any(|s| s.starts_with("$KV.") || (s.starts_with("$O.") && !s.starts_with(&code)))
        );
        let stages = subjects::STAGE_ALL.trim_end_matches('>');
        assert!(!p.publish.iter().any(|s| s.starts_with(stages)));
        assert!(!p.subscribe.iter().any(|s| s.starts_with("_INBOX_trainer")));
    }
    assert_eq!(
        permissions(Identity::Ci).subscribe,
        vec!["_INBOX_ci.>".to_string()]
    );
    assert!(
        !permissions(Identity::Viewer)
            .publish
            .iter()
            .any(|s| s.starts_with("$O."))
    );
}

#[test]
fn creds_round_trip_and_name_their_identity() {
    let text = creds_text(
        Identity::TriggerWatcher,
        "SUAEXAMPLESEEDEXAMPLESEEDEXAMPLESEEDEXAMPLESEED",
    );
    let (identity, seed) = parse_creds(&text).unwrap();
    assert_eq!(identity, Identity::TriggerWatcher);
    assert!(seed.starts_with("SUA"));
    assert_eq!(identity.inbox_prefix(), "_INBOX_trigger_watcher");
    assert!(parse_creds("nothing here").is_err());
}

#[test]
fn only_the_registry_and_admin_create_streams_and_no_reader_deletes_consumers() {
    for identity in Identity::ALL {
        let p = permissions(identity);
        let creates = p
            .publish
            .iter()
            .any(|s| s.starts_with("$JS.API.STREAM.CREATE."));
        assert_eq!(
            creates,
            matches!(identity, Identity::Registry | Identity::Admin),
            "{}",
            identity.name()
        );
        if identity != Identity::Admin {
            assert!(
                !p.publish.iter().any(|s| s.contains(".CONSUMER.DELETE.")
                    || s.contains(".STREAM.DELETE.")
                    || s == "$JS.API.STREAM.PURGE.OBJ_tollgate_artifacts"),
                "{}: {:?}",
                identity.name(),
                p.publish
            );
        }
    }
}

#[test]
fn byte_caps_parse_by_name_and_bad_pairs_are_skipped() {
    let caps = crate::bus::parse_max_bytes("tollgate_datasets=20GiB, TOLLGATE_RUNS=512MiB,oops");
    assert_eq!(
        caps,
        vec![
            ("tollgate_datasets".to_string(), 20 * 1024 * 1024 * 1024),
            ("TOLLGATE_RUNS".to_string(), 512 * 1024 * 1024)
        ]
    );
    assert_eq!(
        crate::bus::default_max_bytes(subjects::DATASETS_STORE),
        2048 * 1024 * 1024
    );
}
