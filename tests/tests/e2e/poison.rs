//! Poison messages against a real nats-server: random bytes, a protobuf of the wrong type,
//! an empty body and a huge body on every subject a service consumes (each trigger kind,
//! model changes among them; each stage; run events). Each is dead-lettered at once with
//! its reason, the pipeline keeps serving, and `tollgate dlq` lists and replays them.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use tollgate_bus::subjects;
use tollgate_e2e::{Pipeline, example_spec};
use tollgate_proto::{ModelVersion, RunEventKind, RunId, Stage, TriggerKind, Verdict};

/// `n` bytes from a seeded xorshift: the same "random" body on every run.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

pub(crate) fn tollgate(p: &Pipeline, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::processes::bin("tollgate"))
        .args(args)
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_on_every_consumed_subject_is_dead_lettered_and_the_pipeline_keeps_serving() {
    let p = Pipeline::start().await.unwrap();
    let mut targets: Vec<String> = TriggerKind::NAMED
        .iter()
        .map(|&k| subjects::trigger(k))
        .collect();
    targets.extend(Stage::NAMED.iter().map(|&s| subjects::stage(s)));
    targets.push(subjects::run_event(&RunId::new(), RunEventKind::Created));

    let wrong_type = ModelVersion {
        model: "churn".into(),
        version: 3,
        ..Default::default()
    };
    for (i, subject) in targets.iter().enumerate() {
        let raw = |body: Vec<u8>| {
            p.bus
                .publish_raw(subject.clone(), HeaderMap::new(), body.into())
        };
        raw(noise(256, 7 + i as u64)).await.unwrap();
        p.bus
            .publish(subject.clone(), &wrong_type, None)
            .await
            .unwrap();
        raw(Vec::new()).await.unwrap();
        raw(vec![0xff; 900_000]).await.unwrap();
    }

    // Every one is dead-lettered on its first delivery, with a reason.
    let expected = targets.len() * 4;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let letters = loop {
        let letters = p.bus.dead_letters().list().await.unwrap();
        if letters.len() >= expected {
            break letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {expected} poison messages dead-lettered: {:?}",
            letters.len(),
            letters
                .iter()
                .map(|l| (&l.subject, &l.reason))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(letters.len(), expected);
    let mut per_subject: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &letters {
        *per_subject.entry(l.subject.as_str()).or_default() += 1;
        assert_eq!(l.deliveries, 1, "{} was retried: {}", l.subject, l.reason);
        assert!(!l.reason.is_empty() && !l.consumer.is_empty(), "{l:?}");
    }
    for subject in &targets {
        assert_eq!(per_subject.get(subject.as_str()), Some(&4), "{subject}");
    }
    let wrong: Vec<_> = letters
        .iter()
        .filter(|l| l.reason.contains("a ModelVersion message where a"))
        .collect();
    assert_eq!(wrong.len(), targets.len(), "the wrong type is named");

    // The services kept serving.
    let data = p.dataset("churn.parquet", 3000, 9, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);

    // The CLI lists them and replays one on its subject (still poison: back it comes).
    let out = tollgate(&p, &["dlq", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains(&subjects::stage(Stage::Train))
            && table.contains("a ModelVersion message where a Run belongs"),
        "{table}"
    );
    let first = &letters[0];
    let out = tollgate(&p, &["dlq", "replay", &first.id.to_string()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert_eq!(
        said.trim(),
        format!("replayed dead letter {} on {}", first.id, first.subject)
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = p.bus.dead_letters().list().await.unwrap();
        let back = now
            .iter()
            .any(|l| l.id > first.id && l.subject == first.subject && l.payload == first.payload);
        if back && !now.iter().any(|l| l.id == first.id) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "replay not seen");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = tollgate(&p, &["dlq", "replay", "999999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dead letter 999999"));
}
