//! The web dashboard on the registry's HTTP port: one page (`/`) over a small JSON API
//! (`/api/runs`, `/api/models`, `/api/alerts`, `/api/live`) and a server-sent-event stream
//! (`/api/events`) that tells the page when a run moved, so it updates live. Everything
//! it loads is served from here (the chart library is vendored), so it works offline.

use std::convert::Infallible;
use tollgate_pipeline::Stores;

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tollgate_bus::{Bus, subjects};
use tollgate_proto::{AlertState, ModelStage};

use crate::{
    RegistryService,
    auth::Authenticator,
    console::{answer, static_file},
    pipeline_metrics::PipelineMetrics,
};

const PAGE: &str = include_str!("dashboard/index.html");
const CHART_JS: &str = include_str!("dashboard/uplot-1.6.31.min.js");
const CHART_CSS: &str = include_str!("dashboard/uplot-1.6.31.min.css");

/// How many recent runs the page shows and charts.
const RUNS_SHOWN: u32 = 200;

/// The dashboard's and the console's routes over `service`; the API answers only callers
/// `auth` accepts (a bearer token, or `?access_token=` for the event stream a browser
/// opens), and leaves the [`crate::auth::Caller`] in the request for the handlers.
pub fn routes(service: RegistryService, auth: Authenticator) -> Router {
    let api = Router::new()
        .route("/api/runs", get(runs))
        .route("/api/models", get(models))
        .route("/api/alerts", get(alerts))
        .route("/api/live", get(live))
        .route("/api/events", get(events))
        .with_state(service.bus().clone())
        .merge(crate::console::api(service))
        .layer(axum::middleware::from_fn(move |request, next| {
            let auth = auth.clone();
            async move { authorized(&auth, request, next).await }
        }));
    Router::new()
        .route(
            "/",
            get(|| async { static_file("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/static/uplot.min.js",
            get(|| async { static_file("text/javascript", CHART_JS) }),
        )
        .route(
            "/static/uplot.min.css",
            get(|| async { static_file("text/css", CHART_CSS) }),
        )
        .merge(crate::console::pages())
        .merge(api)
}

/// Runs `next` for a caller `auth` accepts; 401 with the reason otherwise.
async fn authorized(
    auth: &Authenticator,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let from_query = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("access_token="))
            .map(|t| format!("Bearer {t}"))
    });
    match auth.caller_of(header.or(from_query).as_deref()) {
        Ok(caller) => {
            let mut request = request;
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(status) => {
            (StatusCode::UNAUTHORIZED, format!("{}\n", status.message())).into_response()
        }
    }
}

/// The dashboard's answers: its data, or 503 with why it could not be read.
fn json_response(value: Result<Value, String>) -> Response {
    answer(value.map_err(tonic::Status::unavailable))
}

async fn runs(State(bus): State<Bus>) -> Response {
    json_response(
        crate::store::runs::list(&bus, "", RUNS_SHOWN)
            .await
            .map_err(|e| e.to_string())
            .and_then(|runs| {
                let records: Vec<_> = runs.iter().map(PipelineMetrics::of).collect();
                serde_json::to_value(records).map_err(|e| e.to_string())
            }),
    )
}

async fn models(State(bus): State<Bus>) -> Response {
    let versions = crate::store::list_versions(&bus, "", None, "").await;
    json_response(versions.map_err(|e| e.to_string()).map(|versions| {
        Value::Array(
            versions
                .iter()
                .map(|v| {
                    json!({
                        "model": v.model,
                        "version": v.version,
                        "stage": v.stage().to_string(),
                        "algorithm": v.algorithm,
                        "metrics": v.metrics,
                        "created_unix_ms": v.created_unix_ms,
                        "run_id": v.run_id,
                        "audit": v.audit.iter().map(|a| json!({
                            "action": a.action,
                            "actor": a.actor,
                            "at_unix_ms": a.at_unix_ms,
                            "to": a.to.and_then(|s| ModelStage::try_from(s).ok()).map(|s| s.to_string()),
                            "reason": a.reason,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }))
}

/// Snapshots of live figures the page charts at most (the latest of the stream).
const LIVE_SHOWN: u64 = 5_000;

/// Each served version's live figures over time, as the model servers published them.
async fn live(State(bus): State<Bus>) -> Response {
    let read = bus
        .read_recent::<tollgate_proto::LiveMetrics>(
            subjects::LIVE_STREAM,
            subjects::LIVE_ALL,
            LIVE_SHOWN,
            "LiveMetrics",
        )
        .await;
    json_response(read.map_err(|e| e.to_string()).map(|snapshots| {
        Value::Array(
            snapshots
                .iter()
                .map(|m| {
                    json!({
                        "model": m.model,
                        "version": m.version,
                        "labels": m.labels,
                        "positive_rate": m.positive_rate,
                        "auc_roc": m.has_auc_roc.then_some(m.auc_roc),
                        "f1": m.f1,
                        "log_loss": m.log_loss,
                        "at_unix_ms": m.at_unix_ms,
                    })
                })
                .collect(),
        )
    }))
}

async fn alerts(State(bus): State<Bus>) -> Response {
    json_response(
        bus.alerts()
            .list()
            .await
            .map_err(|e| e.to_string())
            .map(|alerts| {
                Value::Array(
                    alerts
                        .iter()
                        .map(|a| {
                            json!({
                                "rule": a.rule,
                                "model": a.model,
                                "state": a.state().name(),
                                "firing": a.state() == AlertState::Firing,
                                "summary": a.summary,
                                "runs": a.run_ids,
                                "firing_since_unix_ms": a.firing_since_unix_ms,
                            })
                        })
                        .collect(),
                )
            }),
    )
}

/// One `run` event per message on the run-event subjects and the alert subjects, with
/// the subject as data: the page refetches what changed.
async fn events(State(bus): State<Bus>) -> Response {
    let client = bus.client();
    let (Ok(runs), Ok(alerts)) = (
        client.subscribe(subjects::RUN_ALL).await,
        client.subscribe(subjects::ALERT_ALL).await,
    ) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "cannot subscribe to NATS").into_response();
    };
    let stream = futures::stream::select(runs, alerts).map(|msg| {
        let kind = if subjects::is_alert(&msg.subject) {
            "alert"
        } else {
            "run"
        };
        Ok::<_, Infallible>(Event::default().event(kind).data(&msg.subject))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
