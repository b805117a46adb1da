//! Webhooks: events delivered to where people are. A subscription (`tollgate webhook add`,
//! admin or operator) names a URL, the event types and optionally a model; every event of
//! those types becomes one delivery per subscription, kept in the `tollgate_deliveries`
//! bucket (a week) and sent by [`Sender`]:
//!
//! - the body is the event's JSON (`type`, `id`, `time`, `model`, the run or version,
//!   `summary`), or Slack's `text` and `blocks` for `format: slack`;
//! - signed with HMAC-SHA256 of the body under the subscription's secret, in
//!   `X-Tollgate-Signature: sha256=<hex>`; `X-Tollgate-Event` and `X-Tollgate-Delivery`
//!   name it, and the event id in the body lets a receiver drop a repeat;
//! - at least once: a failed attempt is tried again after 2 s, 4 s, 8 s, … (at most an
//!   hour apart) for 24 h, then marked `failed`; every attempt's status and latency is
//!   recorded, and pending deliveries are picked up again after a restart;
//! - each delivery is sent on its own task with a 10 s timeout, so one slow or dead
//!   endpoint never delays another or the pipeline.

use std::time::Duration;

use futures::TryStreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Bus, now_ms, subjects::Bucket};
use tollgate_proto::{Webhook, WebhookDelivery};
use tracing::{info, warn};

use crate::error::RegistryError;

/// The event types a webhook may subscribe to.
pub const EVENTS: [&str; 5] = [
    "run.completed",
    "approval.requested",
    "alert.firing",
    "alert.resolved",
    "model.stage_changed",
];

/// How long a delivery is tried before it is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One attempt's time limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// An event, before it is rendered for a webhook.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    /// One of [`EVENTS`] (or `ping`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Stable across redeliveries: a receiver drops a repeat by it.
    pub id: String,
    /// When it happened, RFC 3339.
    pub time: String,
    /// The model it is about.
    pub model: String,
    /// The run, when it is about one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// The version, when it is about one.
    #[serde(skip_serializing_if = "is_zero")]
    pub version: u32,
    /// One line for people.
    pub summary: String,
    /// What else the event carries (a run's verdict and reason, an alert's rule, a
    /// stage).
    pub details: serde_json::Value,
    /// The console's pages about it: `run`, `model`, and `approvals` for an approval
    /// request.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub links: serde_json::Map<String, serde_json::Value>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl Event {
    /// An event of `kind` about `model`, now.
    pub fn new(kind: &str, id: String, model: &str, summary: String) -> Self {
        Event {
            kind: kind.into(),
            id,
            time: rfc3339(now_ms()),
            model: model.into(),
            run_id: String::new(),
            version: 0,
            summary,
            details: serde_json::Value::Null,
            links: serde_json::Map::new(),
        }
    }

    /// Adds the links to the console at `console` (its base URL) for what the event is
    /// about.
    fn link(&mut self, console: &str) {
        let base = console.trim_end_matches('/');
        let mut add = |name: &str, path: String| {
            self.links
                .insert(name.into(), format!("{base}{path}").into());
        };
        if !self.run_id.is_empty() {
            add("run", format!("/runs/{}", self.run_id));
        }
        if !self.model.is_empty() {
            add("model", format!("/models/{}", self.model));
        }
        if self.kind == "approval.requested" {
            add("approvals", "/approvals".into());
        }
    }
}

fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> RegistryError {
    RegistryError::Unavailable(e.into())
}

/// Every value of `bucket` that decodes as `M`.
async fn every<M: Message + Default>(bus: &Bus, bucket: Bucket) -> Result<Vec<M>, RegistryError> {
    let kv = bus.key_value(bucket);
    let keys: Vec<String> = match kv.keys().await {
        Ok(k) => k.try_collect().await.map_err(unavailable)?,
        Err(e) => return Err(unavailable(e)),
    };
    let mut out = Vec::new();
    for key in keys {
        if let Some(bytes) = kv.get(&key).await.map_err(unavailable)?
            && let Ok(m) = M::decode(bytes.as_ref())
        {
            out.push(m);
        }
    }
    Ok(out)
}

/// Every webhook.
pub async fn list(bus: &Bus) -> Result<Vec<Webhook>, RegistryError> {
    let mut hooks: Vec<Webhook> = every(bus, Bucket::Webhooks).await?;
    hooks.sort_by_key(|h| h.created_unix_ms);
    Ok(hooks)
}

/// Adds a webhook; its id is new.
pub async fn add(bus: &Bus, mut hook: Webhook) -> Result<Webhook, RegistryError> {
    let bad = |m: String| Err(RegistryError::InvalidArgument(m));
    if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
        return bad(format!("url {:?} must be http:// or https://", hook.url));
    }
    if hook.events.is_empty() {
        return bad(format!("name the events: {}", EVENTS.join(", ")));
    }
    if let Some(e) = hook.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return bad(format!("unknown event {e:?}: use {}", EVENTS.join(", ")));
    }
    if hook.format.is_empty() {
        hook.format = "json".into();
    }
    if !matches!(hook.format.as_str(), "json" | "slack" | "github") {
        return bad(format!("format {:?}: json, slack or github", hook.format));
    }
    if hook.format == "github" {
        if hook.repository.split('/').filter(|p| !p.is_empty()).count() != 2 {
            return bad("a github webhook needs --repository OWNER/REPO".into());
        }
        if hook.token.is_empty() {
            return bad(
                "a github webhook needs --token-file (a token that may write statuses)".into(),
            );
        }
        if hook.events.iter().any(|e| e != "run.completed") {
            return bad(
                "a github webhook sends commit statuses: its only event is run.completed".into(),
            );
        }
    }
    hook.id = format!("wh-{}", ulid::Ulid::new().to_string().to_lowercase());
    hook.created_unix_ms = now_ms();
    bus.key_value(Bucket::Webhooks)
        .put(&hook.id, hook.encode_to_vec().into())
        .await
        .map_err(unavailable)?;
    info!(id = %hook.id, url = %hook.url, events = ?hook.events, "webhook added");
    Ok(hidden(hook))
}

/// The webhook without its secret and token, as it is shown.
pub fn hidden(hook: Webhook) -> Webhook {
    let mask = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            "(set)".to_string()
        }
    };
    Webhook {
        secret: mask(&hook.secret),
        token: mask(&hook.token),
        ..hook
    }
}

/// The webhook `id`, if there is one.
async fn get(bus: &Bus, id: &str) -> Result<Option<Webhook>, RegistryError> {
    match bus
        .key_value(Bucket::Webhooks)
        .get(id)
        .await
        .map_err(unavailable)?
    {
        Some(bytes) => Ok(Some(Webhook::decode(bytes.as_ref()).map_err(unavailable)?)),
        None => Ok(None),
    }
}

/// Removes a webhook.
pub async fn remove(bus: &Bus, id: &str) -> Result<Webhook, RegistryError> {
    let Some(hook) = get(bus, id).await? else {
        return Err(RegistryError::NotFound(format!("no webhook {id}")));
    };
    bus.key_value(Bucket::Webhooks)
        .delete(id)
        .await
        .map_err(unavailable)?;
    Ok(hidden(hook))
}

async fn save(bus: &Bus, d: &WebhookDelivery) -> Result<(), RegistryError> {
    bus.key_value(Bucket::Deliveries)
        .put(&d.id, d.encode_to_vec().into())
        .await
        .map(|_| ())
        .map_err(unavailable)
}

/// Every delivery the log keeps (`failed` only: those given up on), newest first.
pub async fn deliveries(
    bus: &Bus,
    failed: bool,
    limit: usize,
) -> Result<Vec<WebhookDelivery>, RegistryError> {
    let mut out: Vec<WebhookDelivery> = every(bus, Bucket::Deliveries).await?;
    out.retain(|d| !failed || d.status == "failed");
    out.sort_by_key(|d| std::cmp::Reverse(d.created_unix_ms));
    out.truncate(limit.max(1));
    Ok(out)
}

/// Where a webhook's delivery of `event` goes: the webhook's URL, or for GitHub the
/// commit's statuses under the API base (`None` when the run has no commit).
fn target(hook: &Webhook, event: &serde_json::Value) -> Option<String> {
    if hook.format != "github" {
        return Some(hook.url.clone());
    }
    let sha = event["details"]["commit"]
        .as_str()
        .filter(|c| !c.is_empty())?;
    Some(format!(
        "{}/repos/{}/statuses/{sha}",
        hook.url.trim_end_matches('/'),
        hook.repository
    ))
}

/// The body a webhook receives for `event` (whose JSON is `event_json`), in its format.
fn body(format: &str, event: &serde_json::Value, event_json: &str) -> String {
    if format == "github" {
        let state = match event["details"]["verdict"].as_str() {
            Some("passed") => "success",
            Some("blocked") => "failure",
            _ => "error",
        };
        let description: String = event["summary"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(140)
            .collect();
        return serde_json::json!({
            "state": state,
            "description": description,
            "context": format!("tollgate/{}", event["model"].as_str().unwrap_or("")),
            "target_url": event["links"]["run"].as_str().or(event["details"]["run_url"].as_str()),
        })
        .to_string();
    }
    if format != "slack" {
        return event_json.to_string();
    }
    let mut text = format!(
        "*{}* {}: {}",
        event["type"].as_str().unwrap_or(""),
        event["model"].as_str().unwrap_or(""),
        event["summary"].as_str().unwrap_or("")
    );
    let page = ["approvals", "run", "model"]
        .iter()
        .find_map(|k| event["links"][k].as_str());
    if let Some(url) = page {
        text.push_str(&format!(" <{url}|open in Tollgate>"));
    }
    serde_json::json!({
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    })
    .to_string()
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// Sends deliveries: what [`Sender::emit`] queues, what [`Sender::redeliver`] asks for,
/// and, at start, what was pending when the registry stopped.
#[derive(Clone)]
pub struct Sender {
    bus: Bus,
    http: reqwest::Client,
    console: String,
}

impl Sender {
    /// A sender whose events link to the console at `console` (its base URL).
    pub fn new(bus: Bus, console: String) -> Self {
        Sender {
            bus,
            console,
            http: reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }

    /// Makes one delivery of `event` per webhook subscribed to it, and sends each.
    pub async fn emit(&self, mut event: Event) {
        event.link(&self.console);
        let hooks = match list(&self.bus).await {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, event = %event.kind, "webhooks not read; event not delivered");
                return;
            }
        };
        let json = serde_json::to_string(&event).unwrap_or_default();
        for hook in hooks.into_iter().filter(|h| {
            h.events.contains(&event.kind) && (h.model.is_empty() || h.model == event.model)
        }) {
            self.deliver(&hook, &event, &json).await;
        }
    }

    /// Sends `ping` to one webhook now.
    pub async fn test(&self, id: &str) -> Result<WebhookDelivery, RegistryError> {
        let hook = get(&self.bus, id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("no webhook {id}")))?;
        let mut event = Event::new(
            "ping",
            format!("ping-{}", ulid::Ulid::new()),
            &hook.model,
            "a test of this webhook".into(),
        );
        event.link(&self.console);
        let json = serde_json::to_string(&event).unwrap_or_default();
        Ok(self.deliver(&hook, &event, &json).await)
    }

    async fn deliver(&self, hook: &Webhook, event: &Event, json: &str) -> WebhookDelivery {
        let d = WebhookDelivery {
            id: format!("dl-{}", ulid::Ulid::new().to_string().to_lowercase()),
            webhook_id: hook.id.clone(),
            event_id: event.id.clone(),
            event_type: event.kind.clone(),
            url: hook.url.clone(),
            status: "pending".into(),
            event_json: json.into(),
            created_unix_ms: now_ms(),
            next_attempt_unix_ms: now_ms(),
            model: event.model.clone(),
            ..Default::default()
        };
        if let Err(e) = save(&self.bus, &d).await {
            warn!(error = %e, "delivery not recorded; sent anyway");
        }
        self.spawn(d.clone());
        d
    }

    /// Sends a delivery again (a new attempt of the same event).
    pub async fn redeliver(&self, id: &str) -> Result<WebhookDelivery, RegistryError> {
        let kv = self.bus.key_value(Bucket::Deliveries);
        let Some(bytes) = kv.get(id).await.map_err(unavailable)? else {
            return Err(RegistryError::NotFound(format!("no delivery {id}")));
        };
        let mut d = WebhookDelivery::decode(bytes.as_ref()).map_err(unavailable)?;
        d.status = "pending".into();
        d.created_unix_ms = now_ms();
        d.next_attempt_unix_ms = now_ms();
        save(&self.bus, &d).await?;
        self.spawn(d.clone());
        Ok(d)
    }

    /// Sends `d` on a task of its own until it is delivered or given up.
    fn spawn(&self, d: WebhookDelivery) {
        let sender = self.clone();
        tokio::spawn(async move { sender.attempts(d).await });
    }

    async fn attempts(&self, mut d: WebhookDelivery) {
        let event: serde_json::Value = serde_json::from_str(&d.event_json).unwrap_or_default();
        loop {
            let wait = d.next_attempt_unix_ms - now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            // Read at every attempt: a removed webhook gets nothing more.
            let Ok(Some(hook)) = get(&self.bus, &d.webhook_id).await else {
                d.status = "failed".into();
                d.last_error = "the webhook was removed".into();
                let _ = save(&self.bus, &d).await;
                return;
            };
            let Some(url) = target(&hook, &event) else {
                d.status = "failed".into();
                d.last_error = "the run has no commit to set a status on".into();
                let _ = save(&self.bus, &d).await;
                return;
            };
            let body = body(&hook.format, &event, &d.event_json);
            let mut request = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-tollgate-event", &d.event_type)
                .header("x-tollgate-delivery", &d.id);
            if !hook.token.is_empty() {
                request = request
                    .header("authorization", format!("Bearer {}", hook.token))
                    .header("accept", "application/vnd.github+json")
                    .header("user-agent", "tollgate");
            }
            if !hook.secret.is_empty() {
                request = request.header(
                    "x-tollgate-signature",
                    signature(&hook.secret, body.as_bytes()),
                );
            }
            let started = std::time::Instant::now();
            let sent = request.body(body).send().await;
            d.attempts += 1;
            d.last_latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            match sent {
                Ok(r) if r.status().is_success() => {
                    d.status = "delivered".into();
                    d.last_status = u32::from(r.status().as_u16());
                    d.last_error.clear();
                    d.delivered_unix_ms = now_ms();
                    let _ = save(&self.bus, &d).await;
                    return;
                }
                Ok(r) => {
                    d.last_status = u32::from(r.status().as_u16());
                    d.last_error = format!("answered {}", r.status());
                }
                Err(e) => {
                    d.last_status = 0;
                    d.last_error = e.to_string();
                }
            }
            let backoff =
                Duration::from_secs(1u64 << d.attempts.min(12)).min(Duration::from_secs(3600));
            if now_ms() - d.created_unix_ms > GIVE_UP_AFTER.as_millis() as i64 {
                d.status = "failed".into();
                warn!(delivery = %d.id, url = %d.url, error = %d.last_error, "webhook delivery given up after 24 h");
                let _ = save(&self.bus, &d).await;
                return;
            }
            d.next_attempt_unix_ms = now_ms() + backoff.as_millis() as i64;
            let _ = save(&self.bus, &d).await;
        }
    }

    /// Picks up the deliveries still pending (the registry stopped with them in hand),
    /// then waits for `shutdown`.
    pub async fn resume(self, shutdown: CancellationToken) {
        match deliveries(&self.bus, false, usize::MAX).await {
            Ok(all) => {
                for d in all.into_iter().filter(|d| d.status == "pending") {
                    self.spawn(d);
                }
            }
            Err(e) => warn!(error = %e, "pending webhook deliveries not read"),
        }
        shutdown.cancelled().await;
    }
}

/// Turns what happens into webhook events until `shutdown`: runs that end
/// (`run.completed`), alerts (`alert.firing`, `alert.resolved`, and the promoter's
/// `approval.requested`) and stage changes the registry announces
/// (`model.stage_changed`).
pub async fn follow(bus: Bus, sender: Sender, shutdown: CancellationToken) {
    use futures::StreamExt;
    use tollgate_bus::{codec::decode_delivery, subjects};
    use tollgate_proto::{Alert, AlertState, ModelChange, Trigger, TriggerKind};
    let completions = match tollgate_pipeline::events::completions(&bus).await {
        Ok(c) => c.boxed(),
        Err(e) => {
            warn!(error = %e, "runs not followed: no run.completed webhooks");
            futures::stream::pending().boxed()
        }
    };
    let mut completions = completions;
    // The runs stream replays the runs that ended before this registry started: those
    // were sent (or are pending in the log) already.
    let started = now_ms();
    let subscribe = |subject: String| {
        let client = bus.client().clone();
        async move { client.subscribe(subject).await.ok() }
    };
    let mut alerts = subscribe(subjects::ALERT_ALL.into()).await;
    let mut changes = subscribe(subjects::trigger(TriggerKind::Model)).await;
    loop {
        let alert = async {
            match alerts.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        let change = async {
            match changes.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(run) = completions.next() => {
                if run.finished_unix_ms < started {
                    continue;
                }
                let mut e = Event::new(
                    "run.completed",
                    format!("run.completed:{}", run.run_id),
                    &run.model,
                    format!("run {} {}{}", run.run_id, run.verdict().name(), if run.reason.is_empty() { String::new() } else { format!(": {}", run.reason) }),
                );
                e.run_id = run.run_id.clone();
                e.version = run.model_version;
                e.details = serde_json::json!({
                    "verdict": run.verdict().name(),
                    "reason": run.reason,
                    "trigger": run.trigger().to_string(),
                    "commit": run.code_commit,
                    "pull_request": run.ci.as_ref().map_or(0, |c| c.pull_request),
                    "run_url": run.ci.as_ref().map(|c| c.run_url.clone()).unwrap_or_default(),
                });
                e
            }
            Some(message) = alert => {
                let Ok(a) = decode_delivery::<Alert>(&message.payload, message.headers.as_ref()) else { continue };
                let kind = match a.state() {
                    _ if a.rule == subjects::Alert::Approval.name() => "approval.requested",
                    AlertState::Firing => "alert.firing",
                    AlertState::Resolved => "alert.resolved",
                    AlertState::Unspecified => continue,
                };
                let mut e = Event::new(kind, format!("{kind}:{}:{}:{}", a.rule, a.model, a.at_unix_ms), &a.model, a.summary.clone());
                e.run_id = a.run_ids.first().cloned().unwrap_or_default();
                e.details = serde_json::json!({"rule": a.rule, "runs": a.run_ids});
                e
            }
            Some(message) = change => {
                let Ok(t) = decode_delivery::<Trigger>(&message.payload, message.headers.as_ref()) else { continue };
                let stage = match t.change() {
                    ModelChange::Staged => "Staging",
                    ModelChange::Promoted => "Production",
                    ModelChange::Archived => "Archived",
                    ModelChange::RolledBack => "rolled back",
                    _ => continue,
                };
                let mut e = Event::new(
                    "model.stage_changed",
                    format!("model.stage_changed:{}", t.trigger_id),
                    &t.model,
                    format!("{} v{} {stage}", t.model, t.model_version),
                );
                e.version = t.model_version;
                e.details = serde_json::json!({"stage": stage});
                e
            }
        };
        sender.emit(event).await;
    }
}
