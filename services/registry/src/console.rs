//! The console: what the CLI shows and does, in the browser. Three pages beside the
//! dashboard, each static and filled from the JSON API below it:
//!
//! - `/runs/RUN`: stages with durations, the validation table (failing first), the gate
//!   checks against their thresholds and against Production, the trigger's commit, ref,
//!   pull request and actor, the trace id, and the failing rows' download.
//! - `/models/MODEL`: versions with stage, aliases, lineage and audit trail, each metric
//!   across versions, drift per column over the last runs, and live metrics.
//! - `/approvals`: the versions waiting for approvers, against Production, with Approve and
//!   Reject for a signed-in approver. The decision goes through the registry's own
//!   `Approve` call with the caller's token, so the console checks nothing the CLI does not.

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tollgate_bus::subjects;
use tollgate_pipeline::Stores;
use tollgate_proto::{
    ApprovalRequest, ColumnDrift, ModelStage, ModelVersion, Registry as _, RunId, RunSummary,
    Stage, ValidationReport,
};

use crate::{RegistryService, auth::Caller, store};

const RUN_PAGE: &str = include_str!("dashboard/run.html");
const MODEL_PAGE: &str = include_str!("dashboard/model.html");
const APPROVALS_PAGE: &str = include_str!("dashboard/approvals.html");
const CONSOLE_JS: &str = include_str!("dashboard/console.js");
const CONSOLE_CSS: &str = include_str!("dashboard/console.css");

/// How many of a model's recent runs its page shows drift for.
const DRIFT_RUNS: u32 = 10;

/// The console's pages and their scripts (no data: the API behind `auth` serves that).
pub fn pages() -> Router {
    let page = |body: &'static str| {
        get(move || async move { static_file("text/html; charset=utf-8", body) })
    };
    Router::new()
        .route("/runs/{run}", page(RUN_PAGE))
        .route("/models/{model}", page(MODEL_PAGE))
        .route("/approvals", page(APPROVALS_PAGE))
        .route(
            "/static/console.js",
            get(|| async { static_file("text/javascript", CONSOLE_JS) }),
        )
        .route(
            "/static/console.css",
            get(|| async { static_file("text/css", CONSOLE_CSS) }),
        )
}

/// The console's API; every handler finds the authenticated [`Caller`] in the request.
pub fn api(service: RegistryService) -> Router {
    Router::new()
        .route("/api/whoami", get(whoami))
        .route("/api/runs/{run}", get(run))
        .route("/api/runs/{run}/failures.parquet", get(failures))
        .route("/api/models/{model}", get(model))
        .route("/api/approvals", get(approvals))
        .route("/api/approvals/{model}/{version}", post(decide))
        .with_state(service)
}

/// A page or asset compiled into the binary, as `kind` (the dashboard's too).
pub(crate) fn static_file(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A JSON answer, or the error with the HTTP status its gRPC code means.
pub(crate) fn answer(result: Result<Value, tonic::Status>) -> Response {
    match result {
        Ok(v) => ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response(),
        Err(status) => {
            use tonic::Code;
            let code = match status.code() {
                Code::NotFound => StatusCode::NOT_FOUND,
                Code::InvalidArgument => StatusCode::BAD_REQUEST,
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                Code::AlreadyExists | Code::FailedPrecondition => StatusCode::CONFLICT,
                Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body = json!({ "error": status.message() }).to_string();
            (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}

/// Who the signed-in token is and whether it may decide approvals (`open`: the registry
/// checks no tokens, so anyone may).
async fn whoami(Extension(caller): Extension<Caller>) -> Response {
    let role = caller.role.map(|r| r.name());
    answer(Ok(json!({
        "identity": caller.identity,
        "role": role,
        "open": caller.role.is_none(),
        "may_approve": caller.may(&[tollgate_service::tokens::Role::Approver]),
    })))
}

async fn run(State(service): State<RegistryService>, Path(run): Path<String>) -> Response {
    let bus = service.bus();
    let summary = match store::runs::get(bus, &run).await {
        Ok(s) => s,
        Err(e) => return answer(Err(e.into())),
    };
    let candidate = match summary.model_version {
        0 => None,
        n => store::version(bus, &summary.model, n)
            .await
            .ok()
            .map(|v| v.0),
    };
    let production = store::latest_by_stage(bus, &summary.model, ModelStage::Production)
        .await
        .ok();
    answer(Ok(run_json(
        &summary,
        candidate.as_ref(),
        production.as_ref(),
    )))
}

/// A run as the run page shows it: its facts, stages in plan order, the validation
/// table with the failing expectations first (each keeps its position in the suite,
/// which `tollgate runs failures --expectation N` takes), the gate checks, and the
/// candidate's and Production's metrics.
pub fn run_json(
    run: &RunSummary,
    candidate: Option<&ModelVersion>,
    production: Option<&ModelVersion>,
) -> Value {
    let stages: Vec<Value> = run
        .plan
        .iter()
        .map(|&code| {
            let name = Stage::try_from(code).unwrap_or_default().name();
            match run.stages.iter().find(|s| s.stage == code) {
                Some(s) => json!({
                    "stage": name,
                    "status": s.status().name(),
                    "started_unix_ms": s.started_unix_ms,
                    "duration_ms": s.duration_ms,
                    "message": s.message,
                    "worker": s.worker,
                }),
                None => json!({ "stage": name, "status": "not run" }),
            }
        })
        .collect();
    let ci = run.ci.clone().unwrap_or_default();
    let gate = run.gate.as_ref().map(|g| {
        json!({
            "blessed": g.blessed,
            "summary": g.summary,
            "checks": g.checks.iter().map(|c| json!({
                "name": c.name,
                "observed": c.observed,
                "threshold": c.threshold,
                "comparison": c.comparison().name(),
                "verdict": c.verdict().name().to_lowercase(),
                "note": c.note,
                "test": c.test,
            })).collect::<Vec<_>>(),
        })
    });
    let version = |v: Option<&ModelVersion>| {
        v.map(|v| json!({ "version": v.version, "stage": v.stage().name(), "metrics": v.metrics }))
    };
    json!({
        "run_id": run.run_id,
        "model": run.model,
        "trigger": run.trigger().name(),
        "status": run.status(),
        "verdict": run.verdict().name(),
        "reason": run.reason,
        "model_version": run.model_version,
        "created_unix_ms": run.created_unix_ms,
        "finished_unix_ms": run.finished_unix_ms,
        "dataset_uri": run.dataset_uri,
        "code_commit": run.code_commit,
        "spec_digest": run.spec_digest,
        "requested_by": run.requested_by,
        "requested_reason": run.requested_reason,
        "git_ref": ci.git_ref,
        "pull_request": ci.pull_request,
        "actor": ci.actor,
        "ci_run_url": ci.run_url,
        "trace_id": run.trace_id,
        "policy_changes": run.policy_changes,
        "stages": stages,
        "validation": run.validation.as_ref().map(validation_json),
        "gate": gate,
        "candidate": version(candidate),
        "production": version(production.filter(|p| candidate.is_none_or(|c| c.version != p.version))),
    })
}

fn validation_json(v: &ValidationReport) -> Value {
    let mut results: Vec<(usize, &tollgate_proto::ExpectationResult)> = v
        .results
        .iter()
        .enumerate()
        .map(|(i, r)| (i + 1, r))
        .collect();
    // Failing first, each group in suite order.
    results.sort_by_key(|(i, r)| (r.success, *i));
    json!({
        "success": v.success,
        "row_count": v.row_count,
        "duration_ms": v.duration_ms,
        "failing_rows": v.failing_rows,
        "failures_kept": !v.failures_object.is_empty(),
        "drifted": v.drifted,
        "drift_note": v.drift_note,
        "drift": v.drift.iter().map(drift_json).collect::<Vec<_>>(),
        "results": results.iter().map(|(i, r)| json!({
            "expectation": i,
            "type": r.expectation_type,
            "column": r.column,
            "success": r.success,
            "observed": r.observed_value,
            "element_count": r.element_count,
            "unexpected_count": r.unexpected_count,
            "unexpected_percent": r.unexpected_percent,
            "missing_count": r.missing_count,
            "error": r.error,
            "kwargs": r.kwargs_json,
            "sample": r.partial_unexpected_list,
        })).collect::<Vec<_>>(),
    })
}

fn drift_json(d: &ColumnDrift) -> Value {
    json!({
        "column": d.column,
        "psi": d.psi,
        "ks": d.ks,
        "wasserstein": d.wasserstein,
        "jensen_shannon": d.jensen_shannon,
        "drifted": d.drifted,
    })
}

/// The run's failing rows as the data-validator kept them (Parquet: expectation, type,
/// column, row and the spec's id columns), uncapped.
async fn failures(State(service): State<RegistryService>, Path(run): Path<String>) -> Response {
    let id: RunId = match run.parse() {
        Ok(id) => id,
        Err(e) => return answer(Err(tonic::Status::invalid_argument(format!("{run}: {e}")))),
    };
    match service.bus().failures().get(&id).await {
        Ok(Some(bytes)) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.apache.parquet".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{run}-failures.parquet\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => answer(Err(tonic::Status::not_found(format!(
            "run {run} kept no failing rows: its validation passed, or they are no longer kept"
        )))),
        Err(e) => answer(Err(tonic::Status::unavailable(e.to_string()))),
    }
}

async fn model(State(service): State<RegistryService>, Path(model): Path<String>) -> Response {
    let bus = service.bus();
    let versions = match store::list_versions(bus, &model, None, "").await {
        Ok(v) => v,
        Err(e) => return answer(Err(e.into())),
    };
    let runs = match store::runs::list(bus, &model, DRIFT_RUNS).await {
        Ok(r) => r,
        Err(e) => return answer(Err(e.into())),
    };
    let live = bus
        .read_recent::<tollgate_proto::LiveMetrics>(
            subjects::LIVE_STREAM,
            &subjects::live(&model),
            1_000,
            "LiveMetrics",
        )
        .await
        .unwrap_or_default();
    if versions.is_empty() && runs.is_empty() {
        return answer(Err(tonic::Status::not_found(format!(
            "no model {model}: no version registered and no run"
        ))));
    }
    answer(Ok(json!({
        "model": model,
        "versions": versions.iter().map(version_json).collect::<Vec<_>>(),
        "runs": runs.iter().map(|r| json!({
            "run_id": r.run_id,
            "verdict": r.verdict().name(),
            "status": r.status(),
            "created_unix_ms": r.created_unix_ms,
            "drifted": r.validation.as_ref().is_some_and(|v| v.drifted),
            "drift": r.validation.as_ref().map(|v| v.drift.iter().map(drift_json).collect::<Vec<_>>()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "live": live.iter().map(|m| json!({
            "version": m.version,
            "labels": m.labels,
            "auc_roc": m.has_auc_roc.then_some(m.auc_roc),
            "f1": m.f1,
            "log_loss": m.log_loss,
            "positive_rate": m.positive_rate,
            "at_unix_ms": m.at_unix_ms,
        })).collect::<Vec<_>>(),
    })))
}

/// A version for the model and approvals pages: stage, aliases, lineage, metrics, the
/// gate's last word and the audit trail.
fn version_json(v: &ModelVersion) -> Value {
    json!({
        "version": v.version,
        "stage": v.stage().name(),
        "aliases": v.aliases,
        "tags": v.tags,
        "algorithm": v.algorithm,
        "origin": v.origin,
        "model_format": v.model_format,
        "metrics": v.metrics,
        "created_unix_ms": v.created_unix_ms,
        "run_id": v.run_id,
        "code_commit": v.code_commit,
        "code_digest": v.code_digest,
        "dataset_uri": v.dataset_uri,
        "spec_digest": v.spec_digest,
        "artifact_digest": v.artifact_digest,
        "artifact_size": v.artifact_size,
        "training_seconds": v.training_seconds,
        "gate": v.last_gate.as_ref().map(|g| json!({ "blessed": g.blessed, "summary": g.summary })),
        "audit": v.audit.iter().map(|a| json!({
            "action": a.action,
            "actor": a.actor,
            "at_unix_ms": a.at_unix_ms,
            "from": a.from.and_then(|s| ModelStage::try_from(s).ok()).map(ModelStage::name),
            "to": a.to.and_then(|s| ModelStage::try_from(s).ok()).map(ModelStage::name),
            "reason": a.reason,
            "run_id": a.run_id,
        })).collect::<Vec<_>>(),
    })
}

async fn approvals(State(service): State<RegistryService>) -> Response {
    answer(
        store::pending(service.bus())
            .await
            .map_err(tonic::Status::from)
            .map(|pending| {
                Value::Array(
                    pending
                        .iter()
                        .map(|p| {
                            json!({
                                "model": p.version.model,
                                "version": version_json(&p.version),
                                "needed": p.standing.needed,
                                "approved_by": p.standing.valid,
                                "approvers": p.approvers,
                                "decisions": p.decisions.iter().map(|d| json!({
                                    "approver": d.approver,
                                    "approved": d.approved,
                                    "reason": d.reason,
                                    "at_unix_ms": d.at_unix_ms,
                                })).collect::<Vec<_>>(),
                                "production": p.production.as_ref().map(version_json),
                            })
                        })
                        .collect(),
                )
            }),
    )
}

/// Approves or rejects a version as the signed-in caller: the registry's own `Approve`
/// call, with its checks (role, approvers list, four eyes, one decision each). The body
/// is `{"approve": true|false, "reason": "..."}`.
async fn decide(
    State(service): State<RegistryService>,
    Extension(caller): Extension<Caller>,
    Path((model, version)): Path<(String, u32)>,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    struct Decision {
        approve: bool,
        #[serde(default)]
        reason: String,
        /// Who decides, on an open registry only: with tokens it is the token's identity.
        #[serde(default)]
        approver: String,
    }
    let decision: Decision = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => {
            return answer(Err(tonic::Status::invalid_argument(format!(
                "the body must be {{\"approve\": true|false, \"reason\": \"...\"}}: {e}"
            ))));
        }
    };
    let mut request = tonic::Request::new(ApprovalRequest {
        model,
        version,
        approver: if caller.role.is_some() {
            caller.identity.clone()
        } else {
            decision.approver
        },
        reason: decision.reason,
        approve: decision.approve,
    });
    request.extensions_mut().insert(caller);
    answer(service.approve(request).await.map(|r| {
        let a = r.into_inner();
        json!({
            "model": a.model,
            "version": a.version,
            "approver": a.approver,
            "approved": a.approved,
            "reason": a.reason,
        })
    }))
}

#[cfg(test)]
mod tests;
