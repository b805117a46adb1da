//! Faults with real processes and a real nats-server (file store): SIGKILL one service in
//! the middle of its stage, start it again, and the run still ends with one verdict, one
//! model version, at most one promotion and an audit trail without duplicates. Then the
//! same with nats-server itself, restarted on its store while the services keep running.
//! The services' ack wait is 2 s here, so a killed worker's message comes back quickly.

use std::{collections::BTreeMap, time::Duration};

use tollgate_e2e::NatsServer;
use tollgate_proto::{ListVersionsRequest, ModelStage, ModelVersion};

use crate::processes::{Services, publish_forest, service_env, shown_passed};
use tollgate_stack::SERVICES;

/// What gets killed.
#[derive(Clone, Copy)]
enum Victim {
    /// One of the six services, by name.
    Service(&'static str),
    /// nats-server, restarted on the same store and port.
    Nats,
}

/// The registry's versions of `churn`, with their audit trails.
pub(crate) fn versions(registry_url: &str) -> Vec<ModelVersion> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        tollgate_proto::registry_client(registry_url)
            .unwrap()
            .list_versions(ListVersionsRequest {
                model: "churn".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .versions
    })
}

/// Runs the churn data plan (a forest, so training takes seconds) through the six
/// processes, SIGKILLs `victim` when `runs --watch` prints a line with `when`, starts it
/// again, and checks the run's one verdict, version, promotion and audit trail.
fn kill_mid_run(victim: Victim, when: &str) {
    let mut nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = service_env(&nats, dir.path());
    env.push(("TOLLGATE_NATS__ACK_WAIT_SECS", "2".into()));
    let registry_url = env
        .iter()
        .find(|(k, _)| *k == "TOLLGATE_REGISTRY_URL")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut services = Services::new();
    services.spawn(&env, &SERVICES);
    let (mut watch, lines, run_id) = publish_forest(&env, dir.path(), 150);

    let _ = lines.wait_for(when);
    match victim {
        Victim::Service(name) => {
            let mut child = services.take(name);
            child.kill().unwrap();
            child.wait().unwrap();
            services.spawn(&env, &[name]);
        }
        Victim::Nats => {
            nats.kill_and_restart().unwrap();
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();

    // One verdict: the run ends passed, once.
    let shown = shown_passed(&env, &run_id, Duration::from_secs(180));
    for stage in ["validate", "train", "gate", "promote"] {
        assert!(
            shown.contains(stage),
            "{stage} missing from the run:\n{shown}"
        );
    }

    // One version, promoted at most once, and no audit entry twice.
    let versions = versions(&registry_url);
    assert_eq!(versions.len(), 1, "one version for the run: {versions:?}");
    let v = &versions[0];
    assert_eq!(v.run_id, run_id);
    assert_eq!(v.stage(), ModelStage::Staging);
    let mut seen: BTreeMap<(String, Option<i32>, Option<i32>, String), usize> = BTreeMap::new();
    for a in &v.audit {
        *seen
            .entry((a.action.clone(), a.from, a.to, a.run_id.clone()))
            .or_default() += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|&(_, &n)| n > 1).collect();
    assert!(
        doubled.is_empty(),
        "audit entries twice: {doubled:?}\n{:?}",
        v.audit
    );
    let promotions = v
        .audit
        .iter()
        .filter(|a| a.to == Some(ModelStage::Staging as i32))
        .count();
    assert_eq!(promotions, 1, "{:?}", v.audit);
    services.stop_gracefully();
}

#[test]
fn the_trainer_killed_mid_training_comes_back_and_the_run_registers_one_version() {
    kill_mid_run(Victim::Service("trainer"), "random forest: ");
}

#[test]
fn the_data_validator_killed_mid_validation_comes_back_and_the_run_completes() {
    kill_mid_run(Victim::Service("data-validator"), "▸ validate");
}

#[test]
fn the_gate_killed_mid_evaluation_comes_back_and_the_run_completes() {
    kill_mid_run(Victim::Service("gate"), "▸ gate");
}

#[test]
fn the_promoter_killed_mid_promotion_comes_back_and_promotes_once() {
    kill_mid_run(Victim::Service("promoter"), "▸ promote");
}

#[test]
fn the_registry_killed_mid_run_comes_back_and_the_run_completes() {
    kill_mid_run(Victim::Service("registry"), "random forest: ");
}

#[test]
fn nats_server_killed_mid_run_restarts_on_its_store_and_the_services_reconnect() {
    kill_mid_run(Victim::Nats, "random forest: ");
}
