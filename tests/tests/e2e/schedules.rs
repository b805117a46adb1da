//! Schedules and data arrival against a real nats-server. With a clock the test controls,
//! a slot fires one run (with two trigger-watchers), missed slots fire once within the
//! catch-up window and not at all past it; a trigger that names no dataset takes the
//! spec's data source; and new data in the object store or a watched directory starts one
//! run per burst.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tollgate_pipeline::{Stores, dataset::file_uri};

use chrono::{DateTime, TimeZone, Utc};
use tollgate_e2e::{Pipeline, example_spec};
use tollgate_proto::{RunSummary, TriggerKind, Verdict};
use tollgate_stack::services::trigger_watcher::Clock;

/// A clock that stands still until the test moves it.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

async fn scheduled(p: &Pipeline) -> Vec<RunSummary> {
    p.runs("churn")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.trigger() == TriggerKind::Schedule)
        .collect()
}

/// Waits until `n` scheduled runs have ended; returns them, newest first.
async fn wait_scheduled(p: &Pipeline, n: usize) -> Vec<RunSummary> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let runs = scheduled(p).await;
        if runs.len() >= n && runs.iter().all(|r| r.verdict() != Verdict::Unspecified) {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} scheduled runs ended",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_slot_fires_once_with_two_watchers_and_missed_slots_fire_once_in_the_window() {
    // Sunday 2026-11-29 16:00 UTC is Monday 01:00 in Tokyo: an hour before the slot.
    let clock = Arc::new(TestClock(Mutex::new(utc(2026, 11, 29, 16, 0))));
    let for_services = clock.clone();
    let p = Pipeline::start_hosted(move |h| {
        h.clock = for_services;
        h.schedule_tick_ms = 100;
    })
    .await
    .unwrap();
    // A second trigger-watcher on the same NATS and clock: there is no leader.
    let second = tollgate_stack::services::trigger_watcher::Config {
        nats: tollgate_service::NatsConfig::at(p.nats.url.clone()),
        schedule_tick_ms: 100,
        ..Default::default()
    };
    tokio::spawn(tollgate_stack::services::trigger_watcher::run_with_clock(
        second,
        clock.clone(),
        p.stop_token().cancelled_owned(),
    ));
    let data = p.dataset("data/churn.parquet", 3_000, 31, false).unwrap();
    let dir = data.parent().unwrap();
    let text = format!(
        "{}\ndata: {{source: \"file://{}/\"}}\nschedule:\n  - {{cron: \"0 2 * * MON\", timezone: Asia/Tokyo, catch_up: 6h}}\n",
        example_spec(),
        dir.display()
    );
    let spec = tollgate_spec::ModelSpec::parse(&text).unwrap();
    let applied_at = clock.now().timestamp_millis();
    tollgate_pipeline::specs::apply(&p.bus, &spec, &text, None, applied_at, "e2e")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        scheduled(&p).await.is_empty(),
        "nothing is due before 02:00 JST"
    );

    // The slot passes: one run, of the data plan (the spec has no schedule plan), on the
    // newest file of the data source, recording its slot.
    let slot = utc(2026, 11, 29, 17, 0);
    clock.set(slot + chrono::Duration::seconds(30));
    let runs = wait_scheduled(&p, 1).await;
    let run = &runs[0];
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    assert_eq!(run.scheduled_for_unix_ms, slot.timestamp_millis());
    assert_eq!(run.dataset_uri, file_uri(&data));
    assert!(
        run.requested_reason.contains("0 2 * * MON (Asia/Tokyo)")
            && run.requested_reason.contains("2026-11-30T02:00:00+09:00"),
        "{}",
        run.requested_reason
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        scheduled(&p).await.len(),
        1,
        "two watchers, one run per slot"
    );

    // Down for three weeks; back an hour after the third missed slot: one run, for it.
    let third = utc(2026, 12, 20, 17, 0);
    clock.set(third + chrono::Duration::hours(1));
    let runs = wait_scheduled(&p, 2).await;
    assert_eq!(runs[0].scheduled_for_unix_ms, third.timestamp_millis());
    assert!(
        runs[0]
            .requested_reason
            .contains("standing for 2 missed earlier slots"),
        "{}",
        runs[0].requested_reason
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(scheduled(&p).await.len(), 2);

    // Down again; back two days after the last missed slot, past the 6 h window: none.
    clock.set(utc(2027, 1, 3, 17, 0) + chrono::Duration::days(2));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scheduled(&p).await.len(),
        2,
        "a slot past its catch-up window never fires"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trigger_without_a_dataset_takes_the_newest_object_under_the_source_prefix() {
    let p = Pipeline::start().await.unwrap();
    let first = p.dataset("a.parquet", 2_000, 3, false).unwrap();
    let second = p.dataset("b.parquet", 2_000, 4, false).unwrap();
    p.bus
        .datasets()
        .push(&first, "churn/2026-11-01.parquet")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    p.bus
        .datasets()
        .push(&second, "churn/2026-11-08.parquet")
        .await
        .unwrap();
    p.bus
        .datasets()
        .push(&first, "other/2026-12-01.parquet")
        .await
        .unwrap();
    let spec = format!(
        "{}\ndata: {{source: \"objstore://churn/\"}}\n",
        example_spec()
    );
    // Sources are policy: the admin applies this one.
    p.apply(&spec).await.unwrap();
    let t = p
        .trigger(TriggerKind::Data, "churn", &spec, "")
        .await
        .unwrap();
    let run = p.verdict(&t).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    assert_eq!(run.dataset_uri, "objstore://churn/2026-11-08.parquet");

    // A source with nothing in it fails the run and says why. The source is policy: the
    // admin applies it, and a trigger that names no spec runs under it.
    let empty = format!(
        "{}\ndata: {{source: \"objstore://nothing/\"}}\n",
        example_spec()
    );
    p.apply(&empty).await.unwrap();
    let t = p.trigger(TriggerKind::Data, "churn", "", "").await.unwrap();
    let run = p.verdict(&t).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.reason
            .contains("objstore://nothing/ holds no Parquet or CSV dataset yet"),
        "{}",
        run.reason
    );
}

/// Runs started by data arrival, newest first.
async fn arrived(p: &Pipeline) -> Vec<RunSummary> {
    p.runs("churn")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.trigger() == TriggerKind::Data && r.requested_by == "data arrival")
        .collect()
}

/// Waits until `n` arrival runs have ended, then a little longer for any extra one.
async fn wait_arrived(p: &Pipeline, n: usize) -> Vec<RunSummary> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let runs = arrived(p).await;
        if runs.len() >= n && runs.iter().all(|r| r.verdict() != Verdict::Unspecified) {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            return arrived(p).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} arrival runs",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_data_starts_one_data_run_per_burst_from_the_object_store_and_from_a_directory() {
    let p = Pipeline::start_hosted(|h| h.schedule_tick_ms = 100)
        .await
        .unwrap();
    let files: Vec<_> = (0..3)
        .map(|i| {
            p.dataset(&format!("burst-{i}.parquet"), 2_000, 40 + i, false)
                .unwrap()
        })
        .collect();
    let apply = |text: String| {
        let bus = p.bus.clone();
        async move {
            let spec = tollgate_spec::ModelSpec::parse(&text).unwrap();
            tollgate_pipeline::specs::apply(
                &bus,
                &spec,
                &text,
                None,
                Utc::now().timestamp_millis(),
                "e2e",
            )
            .await
            .unwrap();
        }
    };
    apply(format!(
        "{}\ndata: {{source: \"objstore://arrive/\", debounce: 1s}}\n",
        example_spec()
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Three objects in quick succession: one run, on the newest.
    for (i, file) in files.iter().enumerate() {
        p.bus
            .datasets()
            .push(file, &format!("arrive/{i}.parquet"))
            .await
            .unwrap();
    }
    let runs = wait_arrived(&p, 1).await;
    assert_eq!(runs.len(), 1, "a burst is one run");
    assert_eq!(runs[0].verdict(), Verdict::Passed, "{}", runs[0].reason);
    assert_eq!(runs[0].dataset_uri, "objstore://arrive/2.parquet");

    // A watched directory: a file landing there starts the data plan, with no publish.
    let watched = p.dir.path().join("landing");
    std::fs::create_dir_all(&watched).unwrap();
    apply(format!(
        "{}\ndata: {{source: \"file://{}/\", debounce: 1s}}\n",
        example_spec(),
        watched.display()
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let landed = watched.join("2026-12-01.parquet");
    std::fs::copy(&files[0], &landed).unwrap();
    let runs = wait_arrived(&p, 2).await;
    assert_eq!(runs.len(), 2, "one run for the file");
    assert_eq!(runs[0].dataset_uri, file_uri(&landed));
    assert_eq!(runs[0].verdict(), Verdict::Passed, "{}", runs[0].reason);
}
