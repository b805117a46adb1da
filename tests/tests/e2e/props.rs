//! Property tests (proptest): whatever bytes or text arrive, decoding every protobuf
//! message, parsing specs and Great Expectations suites, and decoding model artifacts
//! return a value or an error, never a panic. `make fuzz` runs each with 100x the cases.

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::Value;
use tollgate_e2e::{example_spec, workspace_root};
use tollgate_ml::artifact::{Artifact, Score};
use tollgate_proto as pb;
use tollgate_spec::{ModelSpec, read_gx_suite};

/// Decodes `bytes` as each message type; a panic fails the property.
macro_rules! decode_each {
    ($bytes:expr, $($ty:ty),+ $(,)?) => {
        $( let _ = <$ty as prost::Message>::decode($bytes); )+
    };
}

/// A real artifact, trained once, for the damaged-artifact property.
static ARTIFACT: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.parquet");
    let mut df = tollgate_ml::synth::churn(tollgate_ml::synth::SynthOptions {
        rows: 1500,
        seed: 3,
        dirty: false,
    })
    .unwrap();
    tollgate_ml::data::write(&mut df, &path).unwrap();
    let text = example_spec();
    let spec = ModelSpec::parse(&text).unwrap();
    let trained = tollgate_ml::train::train(&spec, &text, &path, "props").unwrap();
    trained.artifact.encode().unwrap()
});

/// The GX suite fixture (vendored under tests/fixtures), as text.
static SUITE: LazyLock<String> = LazyLock::new(|| {
    std::fs::read_to_string(workspace_root().join("tests/fixtures/gx/churn_suite.json")).unwrap()
});

/// Words a GX suite is made of, so arbitrary JSON often looks like one.
const KEYS: &[&str] = &[
    "expectations",
    "expectation_type",
    "type",
    "kwargs",
    "column",
    "mostly",
    "min_value",
    "max_value",
    "value_set",
    "name",
];

/// Arbitrary JSON: scalars, and arrays and objects of them, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        prop::sample::select(KEYS).prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(KEYS).prop_map(String::from),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `text` with a slice replaced by `insert`, at char boundaries: a damaged copy.
fn damage(text: &str, at: usize, cut: usize, insert: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + cut).min(chars.len());
    chars[..at]
        .iter()
        .chain(insert.chars().collect::<Vec<_>>().iter())
        .chain(chars[end..].iter())
        .collect()
}

proptest! {
    #[test]
    fn every_protobuf_message_decodes_any_bytes_to_a_value_or_an_error(
        bytes in prop::collection::vec(any::<u8>(), 0..512)
    ) {
        decode_each!(
            &bytes[..],
            pb::Trigger,
            pb::CiContext,
            pb::ConcurrencyGroup,
            pb::Run,
            pb::StageResult,
            pb::ExpectationResult,
            pb::ValidationReport,
            pb::ColumnDrift,
            pb::ModelVersion,
            pb::AuditEntry,
            pb::GateCheck,
            pb::GateDecision,
            pb::RunEvent,
            pb::RunSummary,
            pb::RegisterVersionRequest,
            pb::GetVersionRequest,
            pb::ListVersionsRequest,
            pb::ListVersionsResponse,
            pb::LatestByStageRequest,
            pb::TransitionStageRequest,
            pb::Artifact,
            pb::GetRunRequest,
            pb::ListRunsRequest,
            pb::ListRunsResponse,
            pb::ApprovalRequest,
            pb::Approval,
            pb::OverrideRequest,
            pb::RollbackRequest,
            pb::UpdateVersionRequest,
            pb::SetAliasRequest,
            pb::ResolveRequest,
            pb::RecordGateRequest,
        );
    }

    #[test]
    fn specs_from_any_text_parse_or_are_refused(text in any::<String>()) {
        let _ = ModelSpec::parse(&text);
    }

    #[test]
    fn damaged_copies_of_the_example_spec_parse_or_are_refused(
        at in any::<usize>(), cut in 0usize..200, insert in any::<String>()
    ) {
        let _ = ModelSpec::parse(&damage(&example_spec(), at, cut, &insert));
    }

    #[test]
    fn gx_suites_from_any_json_read_or_are_refused(value in json()) {
        let _ = read_gx_suite(&value.to_string());
    }

    #[test]
    fn damaged_copies_of_a_gx_suite_read_or_are_refused(
        at in any::<usize>(), cut in 0usize..100, insert in any::<String>()
    ) {
        let _ = read_gx_suite(&damage(&SUITE, at, cut, &insert));
    }

    #[test]
    fn artifacts_from_any_bytes_decode_or_are_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..2048)
    ) {
        let _ = Artifact::decode(&bytes);
    }

    #[test]
    fn damaged_artifacts_decode_or_are_refused(
        cut in any::<usize>(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..16)
    ) {
        let mut bytes = ARTIFACT.clone();
        for (i, b) in flips {
            let n = bytes.len();
            bytes[i % n] ^= b;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(artifact) = Artifact::decode(&bytes) {
            // What decodes must also score without panicking.
            let _ = artifact.score(&tollgate_ml::table::Record {
                numeric: vec![Some(1.0); artifact.columns().numeric.len()],
                categorical: vec![Some("x".into()); artifact.columns().categorical.len()],
            });
        }
    }
}
