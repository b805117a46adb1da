//! Who may publish and subscribe what on NATS: one identity per service, plus `ci`,
//! `viewer`, `operator` and `admin` for people and pipelines. `tollgate nats-config` writes
//! these permissions into nats-server's config with an nkey per identity; each identity's
//! `.creds` file holds its seed (and a `.nk` file the seed alone, as the standard NATS
//! clients read it), and [`crate::Bus::connect_with`] signs in with it.
//!
//! Least privilege: only the registry (and `admin`) creates streams, buckets and stores;
//! reading one never includes deleting a consumer, purging or deleting messages; the
//! trainer adds artifacts and cannot purge them. Each identity replies on its own inbox
//! prefix (`_INBOX_trainer.>`), so none can read another's replies. Streams, buckets and
//! stores are named from [`crate::subjects`].

use crate::subjects::{self, Bucket};
use tollgate_proto::{Stage, TriggerKind};

/// A NATS identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The registry.
    Registry,
    /// The trigger-watcher.
    TriggerWatcher,
    /// The data-validator.
    DataValidator,
    /// The trainer.
    Trainer,
    /// The gate.
    Gate,
    /// The promoter.
    Promoter,
    /// The model server.
    Server,
    /// A CI pipeline: publishes code, data and manual triggers and reads its runs.
    Ci,
    /// Reads runs, alerts and dead letters.
    Viewer,
    /// A person operating Tollgate with the CLI: pushes data, publishes triggers, replays
    /// dead letters, reads everything; specs and approvals go through the registry.
    Operator,
    /// Bootstrap and break-glass: anything, including creating and deleting streams.
    Admin,
    /// An object store (MinIO and others) publishing its bucket notifications, nothing else.
    Buckets,
}

impl Identity {
    /// Every identity `tollgate nats-config` writes.
    pub const ALL: [Identity; 12] = [
        Identity::Registry,
        Identity::TriggerWatcher,
        Identity::DataValidator,
        Identity::Trainer,
        Identity::Gate,
        Identity::Promoter,
        Identity::Server,
        Identity::Ci,
        Identity::Viewer,
        Identity::Operator,
        Identity::Admin,
        Identity::Buckets,
    ];

    /// The identity's name: its `.creds` file's stem and its services' binary suffix.
    pub fn name(self) -> &'static str {
        match self {
            Identity::Registry => "registry",
            Identity::TriggerWatcher => "trigger-watcher",
            Identity::DataValidator => "data-validator",
            Identity::Trainer => "trainer",
            Identity::Gate => "gate",
            Identity::Promoter => "promoter",
            Identity::Server => "server",
            Identity::Ci => "ci",
            Identity::Viewer => "viewer",
            Identity::Operator => "operator",
            Identity::Admin => "admin",
            Identity::Buckets => "buckets",
        }
    }

    /// The identity called `name`.
    pub fn named(name: &str) -> Option<Identity> {
        Identity::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether it creates the streams, buckets and stores a connection finds missing
    /// (the registry and `admin`); the others wait for them.
    pub fn creates_streams(self) -> bool {
        matches!(self, Identity::Registry | Identity::Admin)
    }

    /// The inbox prefix its replies come on.
    pub fn inbox_prefix(self) -> String {
        format!("_INBOX_{}", self.name().replace('-', "_"))
    }
}

/// What an identity may publish and subscribe to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe: Vec<String>,
}

impl Permissions {
    fn publish(&mut self, subjects: impl IntoIterator<Item = String>) -> &mut Self {
        self.publish.extend(subjects);
        self
    }

    fn subscribe(&mut self, subjects: impl IntoIterator<Item = String>) -> &mut Self {
        self.subscribe.extend(subjects);
        self
    }

    /// A durable pull consumer `name` on `stream`: create, look up, pull, ack.
    fn durable(&mut self, stream: &str, name: &str) -> &mut Self {
        self.publish([
            format!("$JS.API.CONSUMER.CREATE.{stream}.{name}"),
            format!("$JS.API.CONSUMER.CREATE.{stream}.{name}.>"),
            format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}"),
            format!("$JS.API.CONSUMER.INFO.{stream}.{name}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"),
            format!("$JS.ACK.{stream}.{name}.>"),
        ])
    }

    /// Reading `stream` through consumers of its own (ordered, ephemeral) and direct gets:
    /// what key-value reads, watches and object-store reads are made of.
    fn reads(&mut self, stream: &str) -> &mut Self {
        self.publish([
            format!("$JS.API.CONSUMER.CREATE.{stream}"),
            format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
            format!("$JS.API.CONSUMER.INFO.{stream}.>"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"),
            format!("$JS.API.DIRECT.GET.{stream}"),
            format!("$JS.API.DIRECT.GET.{stream}.>"),
            format!("$JS.API.STREAM.MSG.GET.{stream}"),
            format!("$JS.ACK.{stream}.>"),
            format!("$JS.FC.{stream}.>"),
        ])
    }

    fn reads_bucket(&mut self, bucket: Bucket) -> &mut Self {
        self.reads(&format!("KV_{}", bucket.name()))
    }

    fn writes_bucket(&mut self, bucket: Bucket) -> &mut Self {
        self.reads_bucket(bucket)
            .publish([format!("$KV.{}.>", bucket.name())])
    }

    fn reads_store(&mut self, store: &str) -> &mut Self {
        self.reads(&format!("OBJ_{store}"))
    }

    /// Adding objects to `store` (chunks and their metadata), never purging old ones.
    fn writes_store(&mut self, store: &str) -> &mut Self {
        self.reads_store(store).publish([format!("$O.{store}.>")])
    }

    /// Adding and replacing objects: a replaced object's old chunks are purged.
    fn replaces_in_store(&mut self, store: &str) -> &mut Self {
        self.writes_store(store)
            .publish([format!("$JS.API.STREAM.PURGE.OBJ_{store}")])
    }

    /// Handing runs to `stages` (and everything a stage service does around a run: its
    /// events, dead letters, concurrency groups and cancel requests).
    fn runs_stages(&mut self, stages: &[Stage]) -> &mut Self {
        self.publish(stages.iter().map(|&s| subjects::stage(s)))
            .publish([
                subjects::RUN_ALL.to_string(),
                subjects::DEADLETTER_ALL.to_string(),
            ])
            .writes_bucket(Bucket::Groups)
            .reads_bucket(Bucket::Specs)
    }

    /// Keeping predictions and joining labels to them: the predictions bucket, and the
    /// labelled predictions stream live metrics are read from.
    fn labels(&mut self) -> &mut Self {
        self.writes_bucket(Bucket::Predictions)
            .publish([subjects::LABEL_ALL.to_string()])
            .reads(subjects::LABELS_STREAM)
    }

    /// Consuming `stages` from the work queue.
    fn consumes_stages(&mut self, stages: &[Stage]) -> &mut Self {
        for &s in stages {
            self.durable(subjects::WORK_STREAM, &subjects::stage_consumer(s));
        }
        self
    }
}

/// The stages a stage service may hand a run to: any but `promote` (only the gate, after
/// grading) and `production` (only the registry, after a recorded approval).
const HANDOFFS: &[Stage] = &[
    Stage::Validate,
    Stage::Train,
    Stage::Gate,
    Stage::Integration,
    Stage::Approval,
];

/// What every connection may do: open the streams, buckets and stores (the registry
/// creates a missing one) and hear replies on its own inbox.
fn every_connection(identity: Identity) -> Permissions {
    let mut p = Permissions::default();
    p.publish(["$JS.API.INFO".to_string()]);
    for s in crate::catalog::stream_names() {
        p.publish([format!("$JS.API.STREAM.INFO.{s}")]);
        if identity.creates_streams() {
            p.publish([format!("$JS.API.STREAM.CREATE.{s}")]);
        }
    }
    p.subscribe([format!("{}.>", identity.inbox_prefix())]);
    p
}

/// What `identity` may publish and subscribe to.
pub fn permissions(identity: Identity) -> Permissions {
    let mut p = every_connection(identity);
    match identity {
        Identity::Registry => {
            p.durable(subjects::RUNS_STREAM, subjects::REGISTRY_RUNS_CONSUMER)
                .publish([
                    subjects::trigger(TriggerKind::Model),
                    subjects::stage(Stage::Promote),
                    subjects::stage(Stage::Production),
                    subjects::RUN_ALL.into(),
                    subjects::ALERT_ALL.into(),
                    subjects::DEADLETTER_ALL.into(),
                ])
                .writes_bucket(Bucket::Models)
                .writes_bucket(Bucket::Runs)
                .writes_bucket(Bucket::Alerts)
                .writes_bucket(Bucket::Groups)
                // `tollgate apply` goes through the registry: policies and their schedules.
                .writes_bucket(Bucket::Specs)
                .writes_bucket(Bucket::Triggers)
                // Webhook subscriptions and their delivery log; stage changes become
                // webhook events.
                .writes_bucket(Bucket::Webhooks)
                .writes_bucket(Bucket::Deliveries)
                .subscribe([subjects::trigger(TriggerKind::Model)])
                .reads_store(subjects::ARTIFACTS_STORE)
                .reads_store(subjects::CODE_STORE)
                .reads(subjects::RUNS_STREAM)
                .reads(subjects::ALERTS_STREAM)
                // The dashboard's live-metrics chart, and what a rollout's analysis reads.
                .reads(subjects::LIVE_STREAM)
                .reads(subjects::SHADOW_STREAM)
                .subscribe([subjects::RUN_ALL.into(), subjects::ALERT_ALL.into()])
                // It relays each run's events to the inbox its publisher listens on.
                .publish(Identity::ALL.map(|i| format!("{}.>", i.inbox_prefix())));
        }
        Identity::TriggerWatcher => {
            // It stores the specs runs use by digest, never a model's policy.
            p.durable(subjects::WORK_STREAM, subjects::TRIGGER_CONSUMER)
                .runs_stages(HANDOFFS)
                .publish([
                    subjects::system_trigger(TriggerKind::Data),
                    subjects::trigger(TriggerKind::Schedule),
                    format!(
                        "$KV.{}.{}>",
                        Bucket::Specs.name(),
                        subjects::spec_keys::by_digest("")
                    ),
                ])
                .writes_bucket(Bucket::Triggers)
                .reads_store(subjects::DATASETS_STORE)
                .subscribe([subjects::BUCKET_EVENTS.into()]);
        }
        Identity::Buckets => {
            p.publish([subjects::BUCKET_EVENTS.to_string()]);
        }
        Identity::DataValidator => {
            p.consumes_stages(&[Stage::Validate])
                .runs_stages(HANDOFFS)
                .publish([subjects::trigger(TriggerKind::Drift)])
                .reads_store(subjects::DATASETS_STORE)
                // A failed validation's failing rows, beside its run.
                .writes_store(subjects::FAILURES_STORE);
        }
        Identity::Trainer => {
            p.consumes_stages(&[Stage::Train])
                .runs_stages(HANDOFFS)
                .writes_store(subjects::ARTIFACTS_STORE)
                .reads_store(subjects::DATASETS_STORE)
                .reads_store(subjects::CODE_STORE);
        }
        Identity::Gate => {
            p.consumes_stages(&[Stage::Gate])
                .runs_stages(HANDOFFS)
                .publish([subjects::stage(Stage::Promote)])
                .reads_store(subjects::DATASETS_STORE)
                .reads_store(subjects::CODE_STORE);
        }
        Identity::Promoter => {
            p.consumes_stages(&[
                Stage::Promote,
                Stage::Integration,
                Stage::Approval,
                Stage::Production,
            ])
            .runs_stages(HANDOFFS)
            .publish([subjects::alert(subjects::Alert::Approval)])
            .reads_store(subjects::CODE_STORE)
            // The model's policy says whether Production comes at once or by a rollout.
            .reads_bucket(Bucket::Specs);
        }
        Identity::Server => {
            p.publish([
                subjects::SERVED_ALL.to_string(),
                subjects::trigger(TriggerKind::Drift),
            ])
            .subscribe([subjects::trigger(TriggerKind::Model)])
            .reads(subjects::SERVED_STREAM)
            .reads_bucket(Bucket::Specs)
            // It keeps what it scored for labels, and joins the labels it is sent.
            .labels();
            // Its monitors share a durable consumer per model of the served inputs and
            // of the labels; the labels monitor raises its alert.
            for stream in [subjects::SERVED_STREAM, subjects::LABELS_STREAM] {
                p.publish([
                    format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>"),
                    format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
                ]);
            }
            p.publish([
                subjects::alert(subjects::Alert::LiveAucRoc),
                // What it saw of a shadow, and its versions' live figures.
                subjects::SHADOW_ALL.to_string(),
                subjects::LIVE_ALL.to_string(),
            ]);
        }
        Identity::Ci => {
            // It uploads the code snapshot and a model trained elsewhere with its trigger.
            p.publish([
                subjects::trigger(TriggerKind::Code),
                subjects::trigger(TriggerKind::Data),
                subjects::trigger(TriggerKind::Manual),
            ])
            .writes_store(subjects::CODE_STORE)
            .reads_store(subjects::FAILURES_STORE);
        }
        Identity::Viewer => {
            for stream in [
                subjects::RUNS_STREAM,
                subjects::ALERTS_STREAM,
                subjects::DEADLETTER_STREAM,
                subjects::LABELS_STREAM,
                subjects::SHADOW_STREAM,
                subjects::LIVE_STREAM,
            ] {
                p.reads(stream);
            }
            for b in [Bucket::Runs, Bucket::Alerts, Bucket::Specs, Bucket::Models] {
                p.reads_bucket(b);
            }
            p.reads_store(subjects::FAILURES_STORE);
            p.subscribe([subjects::RUN_ALL.into(), subjects::ALERT_ALL.into()]);
        }
        Identity::Operator => operator(&mut p),
        Identity::Admin => {
            p.publish([">".to_string()]).subscribe([">".to_string()]);
        }
    }
    p.publish.dedup();
    p
}

/// The operator's permissions: a person who feeds data and work and reads everything.
fn operator(p: &mut Permissions) {
    // Its writes that change what is trusted (specs, approvals, stages) are the
    // registry's, which checks and records them; on NATS it feeds data and work.
    p.publish([
        subjects::trigger(TriggerKind::Code),
        subjects::trigger(TriggerKind::Data),
        subjects::trigger(TriggerKind::Manual),
    ])
    // Replaying a dead letter republishes it where it failed and removes it.
    .publish(HANDOFFS.iter().map(|&s| subjects::stage(s)))
    .publish([format!(
        "$JS.API.STREAM.MSG.DELETE.{}",
        subjects::DEADLETTER_STREAM
    )])
    .replaces_in_store(subjects::DATASETS_STORE)
    .writes_store(subjects::CODE_STORE)
    .reads_store(subjects::ARTIFACTS_STORE)
    .reads_store(subjects::FAILURES_STORE)
    // `tollgate feedback push`: labels joined to the predictions they name.
    .labels();
    for stream in [
        subjects::RUNS_STREAM,
        subjects::ALERTS_STREAM,
        subjects::DEADLETTER_STREAM,
        subjects::SHADOW_STREAM,
        subjects::LIVE_STREAM,
    ] {
        p.reads(stream);
    }
    for b in Bucket::ALL {
        p.reads_bucket(b);
    }
    p.subscribe([subjects::RUN_ALL.into(), subjects::ALERT_ALL.into()]);
}

/// nats-server's `authorization` block for `users` (identity, public nkey).
pub fn authorization(users: &[(Identity, String)]) -> String {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("authorization {\n  users = [\n");
    for (identity, nkey) in users {
        let p = permissions(*identity);
        out.push_str(&format!(
            "    # {}\n    {{\n      nkey: \"{nkey}\"\n      permissions: {{\n        publish: {{ allow: [{}] }}\n        subscribe: {{ allow: [{}] }}\n      }}\n    }}\n",
            identity.name(),
            list(&p.publish),
            list(&p.subscribe),
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

/// A `.creds` file's text: the identity and its nkey seed.
pub fn creds_text(identity: Identity, seed: &str) -> String {
    format!(
        "# Tollgate NATS credentials for {name} (tollgate nats-config). Keep secret.\n# identity: {name}\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n",
        name = identity.name()
    )
}

/// The identity and seed a `.creds` file holds, or why it holds none.
pub fn parse_creds(text: &str) -> Result<(Identity, String), String> {
    let identity = text
        .lines()
        .find_map(|l| l.strip_prefix("# identity: "))
        .and_then(|n| Identity::named(n.trim()))
        .ok_or("no '# identity:' line naming a Tollgate identity")?;
    let seed = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SU") && l.len() > 40)
        .ok_or("no user nkey seed")?;
    Ok((identity, seed.to_string()))
}

#[cfg(test)]
mod tests;
