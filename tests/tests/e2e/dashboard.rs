//! The registry's dashboard in a real browser: three runs (passed, failed, blocked)
//! through the real binaries, then headless Chromium loads the page, runs its script
//! and the test reads the DOM it built. A screenshot goes to `target/dashboard.png`.

use std::io::{Read, Write};

use tollgate_e2e::{NatsServer, workspace_root};
use tollgate_stack::SERVICES;

use super::browser::chromium;
use super::processes::{Services, generate, get_healthz, publish, service_env};

#[test]
fn the_dashboard_shows_runs_with_their_verdicts_a_firing_alert_and_the_models() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = service_env(&nats, dir.path());
    let mut services = Services::new();
    let health = services.spawn(&env, &SERVICES);
    let registry = &health.iter().find(|(n, _)| *n == "registry").unwrap().1;
    // The registry's HTTP port is up once its health endpoint answers.
    assert!(get_healthz(registry).starts_with("HTTP/1.1 200"));

    let (clean, dirty) = (
        dir.path().join("clean.parquet"),
        dir.path().join("dirty.parquet"),
    );
    generate(&clean, 3000, &[]);
    generate(&dirty, 3000, &["--dirty"]);
    let spec = workspace_root().join("examples/churn/tollgate.yaml");
    let strict = dir.path().join("strict.yaml");
    std::fs::write(
        &strict,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("f1: {min: 0.70}", "f1: {min: 0.999}"),
    )
    .unwrap();
    // The page's live feed: an event for each run event, as the runs happen.
    let mut feed = std::net::TcpStream::connect(registry.as_str()).unwrap();
    feed.write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    feed.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let wait = ["--wait", "--timeout", "120"];
    // The failed validation comes last: a later run whose data passes would resolve it.
    for (spec, data, exit) in [(&spec, &clean, 0), (&strict, &clean, 1), (&spec, &dirty, 1)] {
        let out = publish(&env, "code", spec, data, &wait);
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: alert") {
        let n = feed.read(&mut buf).expect("the event stream went quiet");
        assert!(n > 0, "the event stream closed");
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.contains("text/event-stream") && seen.contains("event: run\ndata: tollgate.run."),
        "{seen}"
    );
    drop(feed);

    // `live=0`: no event stream held open, so the headless browser's clock can run out.
    let url = format!("http://{registry}/?live=0");
    let dom = String::from_utf8(chromium(&["--dump-dom", &url]).stdout).unwrap();
    assert!(
        dom.contains(r#"data-loaded="true""#),
        "the page did not load its data:\n{dom}"
    );
    for verdict in ["passed", "failed", "blocked"] {
        assert_eq!(
            dom.matches(&format!(r#"data-verdict="{verdict}""#)).count(),
            1,
            "one {verdict} run expected:\n{dom}"
        );
    }
    assert_eq!(dom.matches(r#"class="run""#).count(), 3, "{dom}");
    // Each run's stage timeline: the failed run stopped at validate.
    assert!(dom.contains(r#"class="bar failed""#) && dom.contains(r#"class="bar blocked""#));
    // The failed validation fired its rule (one failure in a row fires it).
    assert!(
        dom.contains(r#"class="alert firing" data-rule="validation_failures""#),
        "no firing alert:\n{dom}"
    );
    assert!(dom.matches(r#"class="version""#).count() >= 2, "{dom}");
    assert!(dom.contains("uplot"), "the chart did not render:\n{dom}");

    let png = workspace_root().join("target/dashboard.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&png);
    chromium(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1400,1500",
        &url,
    ]);
    assert!(
        std::fs::metadata(&png)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot at {}",
        png.display()
    );
    services.stop_gracefully();
}
