//! Every stream, key-value bucket and object store of Tollgate's, in one place: names,
//! subjects, retention and byte caps. The connection opens them and the NATS permissions
//! name them.

use async_nats::jetstream::stream::RetentionPolicy;

use crate::subjects::{self, Bucket};

/// A stream every connection opens: its name, subjects, retention, how long it keeps
/// messages and at most how many MiB.
pub(crate) struct StreamSpec {
    pub(crate) name: &'static str,
    pub(crate) subjects: &'static [&'static str],
    pub(crate) retention: RetentionPolicy,
    pub(crate) days: u64,
    pub(crate) max_mib: u64,
}

/// Every stream of Tollgate's own, in one place: [`Bus::connect_with`] opens them and
/// [`stream_names`] lists them for nats-server's permissions.
pub(crate) const STREAMS: [StreamSpec; 8] = [
    StreamSpec {
        name: subjects::WORK_STREAM,
        subjects: &[subjects::TRIGGER_ALL, subjects::STAGE_ALL],
        retention: RetentionPolicy::WorkQueue,
        days: 7,
        max_mib: 512,
    },
    StreamSpec {
        name: subjects::RUNS_STREAM,
        subjects: &[subjects::RUN_ALL],
        retention: RetentionPolicy::Limits,
        days: 90,
        max_mib: 512,
    },
    StreamSpec {
        name: subjects::ALERTS_STREAM,
        subjects: &[subjects::ALERT_ALL],
        retention: RetentionPolicy::Limits,
        days: 90,
        max_mib: 64,
    },
    StreamSpec {
        name: subjects::DEADLETTER_STREAM,
        subjects: &[subjects::DEADLETTER_ALL],
        retention: RetentionPolicy::Limits,
        days: 30,
        max_mib: 256,
    },
    StreamSpec {
        name: subjects::SERVED_STREAM,
        subjects: &[subjects::SERVED_ALL],
        retention: RetentionPolicy::Limits,
        days: 7,
        max_mib: 256,
    },
    StreamSpec {
        name: subjects::LABELS_STREAM,
        subjects: &[subjects::LABEL_ALL],
        retention: RetentionPolicy::Limits,
        days: 90,
        max_mib: 256,
    },
    StreamSpec {
        name: subjects::SHADOW_STREAM,
        subjects: &[subjects::SHADOW_ALL],
        retention: RetentionPolicy::Limits,
        days: 30,
        max_mib: 64,
    },
    StreamSpec {
        name: subjects::LIVE_STREAM,
        subjects: &[subjects::LIVE_ALL],
        retention: RetentionPolicy::Limits,
        days: 90,
        max_mib: 64,
    },
];

/// The name of every stream a connection opens: Tollgate's own, and those behind its
/// key-value buckets (`KV_*`) and object stores (`OBJ_*`).
pub fn stream_names() -> Vec<String> {
    STREAMS
        .iter()
        .map(|s| s.name.to_string())
        .chain(Bucket::ALL.iter().map(|b| format!("KV_{}", b.name())))
        .chain(OBJECT_STORES.iter().map(|o| format!("OBJ_{o}")))
        .collect()
}

/// Every object store a connection opens.
pub(crate) const OBJECT_STORES: [&str; 4] = [
    subjects::ARTIFACTS_STORE,
    subjects::DATASETS_STORE,
    subjects::CODE_STORE,
    subjects::FAILURES_STORE,
];

const MIB: u64 = 1024 * 1024;

/// The bytes a stream, bucket (by its bucket name) or object store keeps at most unless
/// `TOLLGATE_NATS_MAX_BYTES` says otherwise. Under 6 GiB in all, which JetStream reserves
/// on each server when it creates them (the manifests give NATS 8 GB).
pub fn default_max_bytes(name: &str) -> u64 {
    if let Some(spec) = STREAMS.iter().find(|s| s.name == name) {
        return spec.max_mib * MIB;
    }
    match name {
        subjects::ARTIFACTS_STORE => 1024 * MIB,
        subjects::DATASETS_STORE => 2048 * MIB,
        subjects::CODE_STORE => 512 * MIB,
        subjects::FAILURES_STORE => 256 * MIB,
        n if n == Bucket::Predictions.name() => 512 * MIB,
        _ => 128 * MIB,
    }
}

/// The bytes every stream, bucket and object store reserves by default, summed: the
/// JetStream storage a server must grant before Tollgate's first connection succeeds.
pub fn reserved_bytes() -> u64 {
    STREAMS
        .iter()
        .map(|s| s.name)
        .chain(Bucket::ALL.iter().map(|b| b.name()))
        .chain(OBJECT_STORES)
        .map(default_max_bytes)
        .sum()
}

/// The `jetstream` block of a nats-server Tollgate starts on this machine (`tollgate dev`,
/// the tests) on `store_dir`. Its storage limit is set outright, twice the reservations:
/// nats-server's own default, three quarters of the disk free at its start, refuses them
/// on a disk with less than 8 GB free, though a local server writes a few megabytes.
pub fn local_jetstream_config(store_dir: &std::path::Path) -> String {
    format!(
        "jetstream {{\n  store_dir: \"{}\"\n  max_file_store: {}\n}}\n",
        store_dir.display(),
        2 * reserved_bytes()
    )
}
