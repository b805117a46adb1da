//! Data arrival: a new dataset under a spec's `data.source` starts its `data` plan with no
//! publish. Each tick finds the newest dataset of every watched source (objects in the
//! datasets store; files in a directory, woken by `notify`), and once the newest has not
//! changed for the spec's debounce window, publishes one `data` trigger for it. A burst of
//! arrivals is one run on the newest; a file still being written keeps changing, so it is
//! never read half-done (an object store object is listed only once it is complete). The
//! trigger is named by the dataset, so any number of watchers start one run.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};
use tollgate_pipeline::{Stores, dataset};

use chrono::{DateTime, Utc};
use tollgate_bus::{Bus, BusError, subjects};
use tollgate_proto::{Trigger, TriggerKind};
use tollgate_spec::{DataSource, ModelSpec};
use tracing::{info, warn};

/// The newest dataset of a source, as far as this watcher has seen it.
#[derive(Debug, Clone)]
struct Seen {
    /// What the newest dataset is (name and version); a change restarts the debounce.
    identity: String,
    /// Its URI.
    uri: String,
    /// When this watcher first saw this identity.
    since: DateTime<Utc>,
    /// Whether its trigger was published.
    fired: bool,
}

/// What the watcher remembers between ticks.
#[derive(Default)]
pub struct Arrivals {
    seen: HashMap<String, Seen>,
    dirs: Option<notify::RecommendedWatcher>,
    watched: Vec<PathBuf>,
    changed: Arc<AtomicBool>,
    files: HashMap<PathBuf, Option<dataset::NewestFile>>,
    /// Each bucket or table source's newest dataset and when it was last looked at: they
    /// are listed or queried once per `data.interval`, not every tick.
    remote: HashMap<String, (DateTime<Utc>, Option<Newest>)>,
}

/// A source's newest dataset: identity (what changes when new data lands), URI and
/// modified time in ms.
type Newest = (String, String, i64);

impl Arrivals {
    /// Lists again, at the next check, every bucket source in a bucket `woken` holds (a
    /// bucket notification named it), and empties `woken`.
    pub fn wake(&mut self, woken: &Woken) {
        let buckets: Vec<String> = match woken.lock() {
            Ok(mut w) => std::mem::take(&mut *w).into_iter().collect(),
            Err(_) => return,
        };
        if buckets.is_empty() {
            return;
        }
        for (source, (checked, _)) in self.remote.iter_mut() {
            let in_bucket = tollgate_sources::cloud::ObjectUri::parse(source)
                .and_then(Result::ok)
                .is_some_and(|o| buckets.contains(&o.bucket));
            if in_bucket {
                *checked = DateTime::<Utc>::MIN_UTC;
            }
        }
    }

    /// Checks every watched source of the current specs at `now`.
    pub async fn check(&mut self, bus: &Bus, specs: &[ModelSpec], now: DateTime<Utc>) {
        for spec in specs {
            let Some(data) = &spec.data else { continue };
            let newest = match self.newest(bus, data, now).await {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(e) => {
                    warn!(model = %spec.model, error = %e, "data source not read this tick");
                    continue;
                }
            };
            if let Err(e) = self.step(bus, spec, newest, now).await {
                warn!(model = %spec.model, error = %e, "arrival not published; next tick retries");
            }
        }
    }

    /// The newest dataset of a spec's `data:` source.
    async fn newest(
        &mut self,
        bus: &Bus,
        data: &DataSource,
        now: DateTime<Utc>,
    ) -> Result<Option<Newest>, String> {
        let source = data.source.as_str();
        if dataset::is_remote(source) {
            let due = self.remote.get(source).is_none_or(|(at, _)| {
                (now - *at)
                    .to_std()
                    .is_ok_and(|waited| waited >= data.interval.0)
            });
            if due {
                let before = self.remote.get(source).map(|(_, n)| n.clone());
                let mut newest = remote_newest(data, now, before.is_none()).await?;
                // The same dataset keeps the time it was first seen at.
                if let (Some(Some(old)), Some(new)) = (&before, &newest)
                    && old.0 == new.0
                {
                    newest = Some(old.clone());
                }
                self.remote.insert(source.to_string(), (now, newest));
            }
            return Ok(self.remote.get(source).and_then(|(_, n)| n.clone()));
        }
        if source.starts_with(dataset::OBJSTORE_SCHEME) {
            return bus
                .datasets()
                .newest_object(source)
                .await
                .map_err(|e| e.to_string());
        }
        let dir = watched_dir(source);
        self.watch(&dir);
        let rescan = self.changed.swap(false, Ordering::Relaxed);
        if rescan || !self.files.contains_key(&dir) {
            let newest = dataset::newest_file(source).ok().flatten();
            self.files.insert(dir.clone(), newest);
        }
        Ok(self.files.get(&dir).cloned().flatten().map(|f| {
            (
                format!("{}@{}@{}", f.path.display(), f.size, f.modified_ms),
                dataset::file_uri(&f.path),
                f.modified_ms,
            )
        }))
    }

    /// Watches `dir` for changes (once).
    fn watch(&mut self, dir: &Path) {
        if self.watched.iter().any(|d| d == dir) {
            return;
        }
        if self.dirs.is_none() {
            let changed = self.changed.clone();
            match notify::recommended_watcher(move |_event| {
                changed.store(true, Ordering::Relaxed);
            }) {
                Ok(w) => self.dirs = Some(w),
                Err(e) => warn!(error = %e, "cannot watch directories; rescanning every tick"),
            }
        }
        if let Some(w) = self.dirs.as_mut() {
            use notify::Watcher;
            if let Err(e) = w.watch(dir, notify::RecursiveMode::NonRecursive) {
                warn!(dir = %dir.display(), error = %e, "cannot watch directory");
            }
        }
        self.watched.push(dir.to_path_buf());
    }

    async fn step(
        &mut self,
        bus: &Bus,
        spec: &ModelSpec,
        (identity, uri, modified_ms): (String, String, i64),
        now: DateTime<Utc>,
    ) -> Result<(), BusError> {
        let Some(data) = &spec.data else {
            return Ok(());
        };
        let entry = self.seen.entry(spec.model.clone()).or_insert_with(|| Seen {
            identity: identity.clone(),
            uri: uri.clone(),
            since: now,
            fired: false,
        });
        if entry.identity != identity {
            *entry = Seen {
                identity: identity.clone(),
                uri,
                since: now,
                fired: false,
            };
        }
        let applied = bus.specs().applied(&spec.model).await?.unwrap_or(0);
        let settled = (now - entry.since)
            .to_std()
            .is_ok_and(|waited| waited >= data.debounce.0);
        // Data that was there before the spec was applied is not an arrival.
        if entry.fired || !settled || modified_ms < applied {
            return Ok(());
        }
        let id = subjects::trigger_ids::arrival(&spec.model, &identity);
        let trigger = Trigger {
            trigger_id: id.clone(),
            kind: TriggerKind::Data as i32,
            model: spec.model.clone(),
            dataset_uri: entry.uri.clone(),
            reason: format!("new data under {}: {}", data.source, entry.uri),
            requested_by: "data arrival".into(),
            created_unix_ms: now.timestamp_millis(),
            ..Default::default()
        };
        bus.publish(
            subjects::system_trigger(TriggerKind::Data),
            &trigger,
            Some(&id),
        )
        .await?;
        info!(model = %spec.model, dataset = %entry.uri, "data arrived; data plan triggered");
        entry.fired = true;
        Ok(())
    }
}

/// The buckets bucket notifications named since the last check.
pub type Woken = Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>;

/// The bucket names of an S3 event notification (`Records[].s3.bucket.name`, as S3 and
/// MinIO send it); none when the body is not one.
pub fn notified_buckets(body: &[u8]) -> Vec<String> {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    event["Records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r["s3"]["bucket"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Follows `tollgate.bucket.events` until `shutdown`: each notification's buckets are
/// listed at the next check. Without the subscription, buckets are listed every
/// `data.interval` only.
pub async fn follow_bucket_events(
    bus: &Bus,
    shutdown: tokio_util::sync::CancellationToken,
) -> Woken {
    use futures::StreamExt;
    let woken = Woken::default();
    let mut events = match bus.client().subscribe(subjects::BUCKET_EVENTS).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "bucket notifications not followed; buckets are listed every data.interval");
            return woken;
        }
    };
    let into = woken.clone();
    tokio::spawn(async move {
        while let Some(Some(message)) = shutdown.run_until_cancelled(events.next()).await {
            let buckets = notified_buckets(&message.payload);
            if buckets.is_empty() {
                warn!("a bucket notification without S3 records ignored");
                continue;
            }
            info!(?buckets, "bucket notification: listing at the next check");
            if let Ok(mut w) = into.lock() {
                w.extend(buckets);
            }
        }
    });
    woken
}

/// The newest dataset of a bucket or table source: the newest object under a bucket prefix
/// (named by its ETag and version, so a rewritten key is new data), or a table's largest
/// `watermark` value. The watermark read when the watcher first looks is the baseline,
/// not an arrival; a table without a watermark has no arrivals.
async fn remote_newest(
    data: &DataSource,
    now: DateTime<Utc>,
    first: bool,
) -> Result<Option<Newest>, String> {
    use tollgate_sources::{cloud, postgres};
    let source = &data.source;
    if let Some(object) = cloud::ObjectUri::parse(source) {
        let object = object.map_err(|e| e.to_string())?;
        let newest = cloud::newest(&object).await.map_err(|e| e.to_string())?;
        // Stores keep the time to the second: the object may have landed up to 999 ms
        // after the time they give.
        return Ok(newest.map(|(uri, meta)| {
            (
                format!("{uri}@{}", cloud::identity(&meta)),
                uri,
                meta.last_modified.timestamp_millis() + 999,
            )
        }));
    }
    let (Some(pg), Some(column)) = (postgres::PgUri::parse(source), &data.watermark) else {
        return Ok(None);
    };
    let pg = pg.map_err(|e| e.to_string())?;
    let mark = postgres::watermark(&pg, column)
        .await
        .map_err(|e| e.to_string())?;
    Ok(mark.map(|m| {
        let seen = if first { 0 } else { now.timestamp_millis() };
        (format!("{column}={m}"), source.clone(), seen)
    }))
}

/// The directory a `file://` source watches.
fn watched_dir(source: &str) -> PathBuf {
    let path = source.strip_prefix("file://").unwrap_or(source);
    let path = Path::new(path);
    if source.ends_with('/') {
        return path.to_path_buf();
    }
    path.ancestors()
        .find(|a| !a.to_string_lossy().contains(['*', '?', '[']))
        .unwrap_or(path)
        .to_path_buf()
}
