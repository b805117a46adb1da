//! Datasets where teams keep them, through the real binaries: an S3-compatible server
//! (moto) and PostgreSQL, each started on a loopback port in a temporary directory. A
//! 1M-row object validates as the same file on disk does; a new object under a bucket
//! prefix starts the data plan; a table and a query are datasets, typed as their columns;
//! a table's watermark starts the data plan; and a missing bucket, object or table, a
//! query error, refused credentials and an unreachable database each end the run
//! `failed` with the reason.

use std::{path::Path, time::Duration};

use tollgate_e2e::{
    servers::{AzuriteServer, PgServer, S3Server},
    workspace_root,
};
use tollgate_proto::{GetRunRequest, RunSummary, TriggerKind, Verdict};

use super::processes::{ProcessStack, cli, run_id_of};

/// The six services as processes, and what these tests do with them.
struct Stack(ProcessStack);

impl std::ops::Deref for Stack {
    type Target = ProcessStack;
    fn deref(&self) -> &ProcessStack {
        &self.0
    }
}

impl std::ops::DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut ProcessStack {
        &mut self.0
    }
}

impl Stack {
    fn start(extra: Vec<(&'static str, String)>) -> Stack {
        Stack(ProcessStack::start(extra))
    }

    /// Applies the example spec with its data plan cut to `plan` and `data_block` added.
    fn apply(&self, plan: &str, data_block: &str) -> std::path::PathBuf {
        let example =
            std::fs::read_to_string(workspace_root().join("examples/churn/tollgate.yaml")).unwrap();
        let spec = example.replace(
            "  data: [validate, train, gate, promote]",
            &format!("  data: [{plan}]"),
        );
        let path = self.dir.path().join("tollgate.yaml");
        std::fs::write(&path, format!("{spec}\n{data_block}\n")).unwrap();
        self.ok(&["apply", path.to_str().unwrap()]);
        path
    }

    /// Publishes a data run on `dataset` and waits for it; returns its record.
    async fn run(&self, spec: &Path, dataset: &str) -> RunSummary {
        let out = cli(
            &self.env,
            &[
                "publish",
                "data",
                "--spec",
                spec.to_str().unwrap(),
                "--dataset",
                dataset,
                "--wait",
                "--timeout",
                "180",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let run_id = run_id_of(&stdout);
        self.record(&run_id).await
    }

    async fn record(&self, run_id: &str) -> RunSummary {
        for _ in 0..100 {
            if let Ok(r) = self
                .registry
                .clone()
                .get_run(GetRunRequest {
                    run_id: run_id.into(),
                })
                .await
                && r.get_ref().verdict() != Verdict::Unspecified
            {
                return r.into_inner();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("run {run_id} has no verdict");
    }

    /// The model's latest runs.
    async fn runs(&self) -> Vec<RunSummary> {
        self.registry
            .clone()
            .list_runs(tollgate_proto::ListRunsRequest {
                model: "churn".into(),
                limit: 50,
            })
            .await
            .unwrap()
            .into_inner()
            .runs
    }

    /// Whether any run's dataset starts with `prefix`.
    async fn any_run_on(&self, prefix: &str) -> bool {
        self.runs()
            .await
            .iter()
            .any(|r| r.dataset_uri.starts_with(prefix))
    }

    /// Waits for a data-arrival run whose dataset starts with `prefix`.
    async fn arrival(&self, prefix: &str) -> RunSummary {
        for _ in 0..600 {
            let runs = self.runs().await;
            if let Some(r) = runs.into_iter().find(|r| {
                r.trigger() == TriggerKind::Data
                    && r.requested_by == "data arrival"
                    && r.dataset_uri.starts_with(prefix)
                    && r.verdict() != Verdict::Unspecified
            }) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no arrival run on {prefix}");
    }
}

/// A run that must have failed, with `needle` in its reason.
fn failed_with(run: &RunSummary, needle: &str) {
    assert_eq!(run.verdict(), Verdict::Failed, "{}", run.reason);
    assert!(
        run.reason.contains(needle),
        "{needle:?} not in {}",
        run.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_row_object_validates_as_the_local_file_and_a_new_object_starts_the_data_plan() {
    let s3 = S3Server::start().unwrap();
    s3.bucket("churn-data").unwrap();
    let mut extra = s3.env(None);
    extra.push((
        "TOLLGATE_DATA_BUCKETS",
        "s3://churn-data, s3://no-such-bucket".into(),
    ));
    let stack = Stack::start(extra);
    let big = stack.dir.path().join("big.parquet");
    stack.ok(&[
        "data",
        "generate",
        "--rows",
        "1000000",
        "--out",
        big.to_str().unwrap(),
    ]);
    s3.put(&big, "churn-data", "history/churn.parquet").unwrap();
    let spec = stack.apply("validate", "");

    let local = stack.run(&spec, big.to_str().unwrap()).await;
    let remote = stack
        .run(&spec, "s3://churn-data/history/churn.parquet")
        .await;
    assert_eq!(local.verdict(), Verdict::Passed, "{}", local.reason);
    assert_eq!(remote.verdict(), Verdict::Passed, "{}", remote.reason);
    assert_eq!(remote.dataset_uri, "s3://churn-data/history/churn.parquet");
    let (l, r) = (local.validation.unwrap(), remote.validation.unwrap());
    assert_eq!(r.row_count, 1_000_000);
    assert_eq!(l.row_count, r.row_count);
    assert_eq!(l.success, r.success);
    assert_eq!(l.results, r.results, "each expectation found the same");
    assert_eq!(l.drift, r.drift);

    // What a stage may not read, or cannot find, ends the run failed with the reason.
    failed_with(
        &stack.run(&spec, "s3://elsewhere/churn.parquet").await,
        "outside the data buckets",
    );
    failed_with(
        &stack.run(&spec, "s3://churn-data/missing.parquet").await,
        "does not exist",
    );
    failed_with(
        &stack.run(&spec, "s3://no-such-bucket/churn.parquet").await,
        "does not exist",
    );

    // A new object under the source prefix starts the data plan, once, on that object.
    let spec = stack.apply(
        "validate",
        "data:\n  source: s3://churn-data/incoming/\n  interval: 1s\n  debounce: 1s\n",
    );
    let small = stack.dir.path().join("small.parquet");
    stack.ok(&[
        "data",
        "generate",
        "--rows",
        "5000",
        "--out",
        small.to_str().unwrap(),
    ]);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    s3.put(&small, "churn-data", "incoming/2026-12-07.parquet")
        .unwrap();
    let arrived = stack.arrival("s3://churn-data/incoming/").await;
    assert_eq!(arrived.verdict(), Verdict::Passed, "{}", arrived.reason);
    assert_eq!(
        arrived.dataset_uri,
        "s3://churn-data/incoming/2026-12-07.parquet"
    );
    assert_eq!(arrived.validation.unwrap().row_count, 5_000);

    // Listed once an hour, the bucket is looked at as soon as it notifies, as MinIO's
    // NATS target does: the S3 event JSON on tollgate.bucket.events.
    stack.apply(
        "validate",
        "data:\n  source: s3://churn-data/incoming/\n  interval: 1h\n  debounce: 1s\n",
    );
    s3.put(&small, "churn-data", "incoming/2026-12-08.parquet")
        .unwrap();
    // Not listed again within the hour: nothing starts until the bucket notifies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !stack
            .any_run_on("s3://churn-data/incoming/2026-12-08")
            .await,
        "listed before the hour was up"
    );
    let nats_url = &stack
        .env
        .iter()
        .find(|(k, _)| *k == "TOLLGATE_NATS_URL")
        .unwrap()
        .1;
    let nats = async_nats::connect(nats_url.as_str()).await.unwrap();
    let event = serde_json::json!({"EventName": "s3:ObjectCreated:Put", "Key": "churn-data/incoming/2026-12-08.parquet", "Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "churn-data"}, "object": {"key": "incoming/2026-12-08.parquet"}}}]});
    nats.publish(
        tollgate_bus::subjects::BUCKET_EVENTS,
        serde_json::to_vec(&event).unwrap().into(),
    )
    .await
    .unwrap();
    nats.flush().await.unwrap();
    let notified = stack.arrival("s3://churn-data/incoming/2026-12-08").await;
    assert_eq!(notified.verdict(), Verdict::Passed, "{}", notified.reason);

    // Refused credentials: a validator with a wrong secret.
    let mut stack = stack;
    let mut validator = stack.services.take("data-validator");
    validator.kill().unwrap();
    validator.wait().unwrap();
    let mut wrong = stack.env.clone();
    wrong.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    wrong.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret".into()));
    stack.services.spawn(&wrong, &["data-validator"]);
    let denied = stack
        .run(&spec, "s3://churn-data/history/churn.parquet")
        .await;
    failed_with(&denied, "access denied");
}

/// The churn columns, and more types: a NUMERIC, a DATE, a TIMESTAMPTZ, a BOOLEAN.
const TABLE: &str = "CREATE TABLE customers (customer_id text, age integer, tenure_months smallint, monthly_charges numeric(10, 2), total_charges double precision, contract text, payment_method text, support_calls bigint, label integer, signed_up date, active boolean, updated_at timestamptz)";

#[tokio::test(flavor = "multi_thread")]
async fn postgres_tables_and_queries_are_typed_datasets_and_a_watermark_starts_the_data_plan() {
    let pg = PgServer::start().unwrap();
    let stack = Stack::start(vec![("PGPASSWORD", pg.password.clone())]);
    let csv = stack.dir.path().join("churn.csv");
    stack.ok(&[
        "data",
        "generate",
        "--rows",
        "4000",
        "--out",
        csv.to_str().unwrap(),
    ]);
    pg.sql("crm", TABLE).unwrap();
    pg.sql(
        "crm",
        &format!(
            "\\copy customers (customer_id, age, tenure_months, monthly_charges, total_charges, contract, payment_method, support_calls, label) FROM '{}' CSV HEADER",
            csv.display()
        ),
    )
    .unwrap();
    pg.sql(
        "crm",
        "UPDATE customers SET signed_up = date '2024-01-01' + (tenure_months * 30), active = label = 0, updated_at = timestamptz '2026-12-01 00:00:00+00'",
    )
    .unwrap();
    pg.sql(
        "crm",
        "UPDATE customers SET signed_up = NULL WHERE age > 70",
    )
    .unwrap();

    // The table, read as the stages read it, keeps each column's type and its nulls.
    let parquet = stack.dir.path().join("customers.parquet");
    let mut env = stack.env.clone();
    env.push(("PGPASSWORD", pg.password.clone()));
    let pulled = cli(
        &env,
        &[
            "data",
            "pull",
            &pg.uri("table=customers"),
            "--out",
            parquet.to_str().unwrap(),
        ],
    );
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let schema = std::process::Command::new(tollgate_e2e::servers::python())
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq\nt = pq.read_table(sys.argv[1])\nprint(t.num_rows, t.column('signed_up').null_count)\nfor f in t.schema: print(f.name, f.type)",
            parquet.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let schema = String::from_utf8_lossy(&schema.stdout).to_string();
    let nulls = pg
        .sql("crm", "SELECT count(*) FROM customers WHERE age > 70")
        .unwrap();
    assert!(
        schema.starts_with(&format!("4000 {}", nulls.trim())),
        "{schema}"
    );
    for typed in [
        "customer_id string",
        "age int64",
        "tenure_months int64",
        "monthly_charges double",
        "total_charges double",
        "support_calls int64",
        "signed_up date32[day]",
        "active bool",
        "updated_at timestamp[us]",
    ] {
        assert!(schema.contains(typed), "{typed} not in {schema}");
    }

    // A table trains and passes the gates like a file; a query is a dataset too.
    let spec = stack.apply("validate, train, gate", "");
    let table = stack.run(&spec, &pg.uri("table=customers")).await;
    assert_eq!(table.verdict(), Verdict::Passed, "{}", table.reason);
    assert!(table.model_version > 0);
    assert_eq!(table.validation.unwrap().row_count, 4_000);
    let query = stack
        .run(
            &spec,
            &pg.uri("query=SELECT%20*%20FROM%20customers%20WHERE%20age%20%3C%3D%2060"),
        )
        .await;
    assert_eq!(query.verdict(), Verdict::Passed, "{}", query.reason);
    let under = pg
        .sql("crm", "SELECT count(*) FROM customers WHERE age <= 60")
        .unwrap();
    assert_eq!(
        query.validation.unwrap().row_count.to_string(),
        under.trim()
    );

    failed_with(
        &stack.run(&spec, &pg.uri("table=no_such_table")).await,
        "does not exist",
    );
    failed_with(
        &stack.run(&spec, &pg.uri("query=SELEC%201")).await,
        "syntax error",
    );
    let mallory = format!(
        "postgres://mallory@127.0.0.1:{}/crm?table=customers",
        pg.port
    );
    failed_with(&stack.run(&spec, &mallory).await, "access denied");

    // New rows past the watermark start the data plan.
    let source = pg.uri("table=customers");
    let spec = stack.apply(
        "validate",
        &format!(
            "data:\n  source: {{uri: \"{source}\", watermark: updated_at}}\n  interval: 1s\n  debounce: 1s\n"
        ),
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    pg.sql(
        "crm",
        "INSERT INTO customers SELECT customer_id || '-new', age, tenure_months, monthly_charges, total_charges, contract, payment_method, support_calls, label, signed_up, active, timestamptz '2026-12-07 09:00:00+00' FROM customers LIMIT 10",
    )
    .unwrap();
    let arrived = stack.arrival("postgres://").await;
    assert_eq!(arrived.verdict(), Verdict::Passed, "{}", arrived.reason);
    assert_eq!(arrived.validation.unwrap().row_count, 4_010);

    // The database gone: the run fails with the reason, and the services keep serving.
    pg.stop();
    let gone = stack.run(&spec, &source).await;
    failed_with(&gone, "unreachable");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_azure_blob_validates_as_the_local_file_and_a_wrong_account_key_is_refused() {
    let azure = AzuriteServer::start().unwrap();
    azure.container("churn-data").unwrap();
    let mut extra = azure.env(None);
    extra.push(("TOLLGATE_DATA_BUCKETS", "az://churn-data".into()));
    let stack = Stack::start(extra);
    let data = stack.dir.path().join("churn.parquet");
    stack.ok(&[
        "data",
        "generate",
        "--rows",
        "20000",
        "--out",
        data.to_str().unwrap(),
    ]);
    stack.ok(&[
        "data",
        "push",
        data.to_str().unwrap(),
        "--to",
        "az://churn-data/history/churn.parquet",
    ]);
    let spec = stack.apply("validate", "");
    let local = stack.run(&spec, data.to_str().unwrap()).await;
    let remote = stack
        .run(&spec, "az://churn-data/history/churn.parquet")
        .await;
    assert_eq!(remote.verdict(), Verdict::Passed, "{}", remote.reason);
    assert_eq!(
        local.validation,
        remote.validation.clone().map(|mut v| {
            v.duration_ms = local.validation.as_ref().unwrap().duration_ms;
            v
        })
    );
    failed_with(
        &stack.run(&spec, "az://churn-data/missing.parquet").await,
        "does not exist",
    );
    // The CLI reads it too, and a key the account does not have is refused.
    let mut env = stack.env.clone();
    env.extend(azure.env(None));
    let pulled = stack.dir.path().join("pulled.parquet");
    let out = cli(
        &env,
        &[
            "data",
            "pull",
            "az://churn-data/history/churn.parquet",
            "--out",
            pulled.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(&data).unwrap()
    );
    let mut wrong = env.clone();
    wrong.extend(azure.env(Some("bm90LXRoZS1rZXk=")));
    let refused = cli(
        &wrong,
        &[
            "data",
            "pull",
            "az://churn-data/history/churn.parquet",
            "--out",
            pulled.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("access denied"), "{said}");
}
