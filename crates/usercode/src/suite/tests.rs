//! Unit tests of the parent module: real `sh` commands, one writing JUnit XML.

use super::*;

fn test(name: &str, run: &str) -> TestCommand {
    TestCommand {
        name: name.into(),
        run: run.into(),
        timeout_minutes: 1,
    }
}

fn target() -> Target {
    Target {
        server_url: "http://127.0.0.1:9".into(),
        model: "churn".into(),
        version: 3,
        test_data: Some("/tmp/test.parquet".into()),
    }
}

const JUNIT: &str = r#"<testsuite><testcase classname="t" name="test_auc"/><testcase classname="t" name="test_recall"><failure message="recall 0.4 &lt; 0.6"/></testcase></testsuite>"#;

#[tokio::test]
async fn each_command_reports_its_cases_and_its_exit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junit.xml"), JUNIT).unwrap();
    let tests = [
        test(
            "quality",
            "cp junit.xml \"$TOLLGATE_JUNIT_XML\"; echo 1 failed >&2; exit 1",
        ),
        test(
            "env",
            "test \"$TOLLGATE_MODEL/$TOLLGATE_VERSION\" = churn/3 && test -n \"$TOLLGATE_TEST_DATA\" && echo \"$PYTEST_ADDOPTS\" | grep -q junitxml",
        ),
        test("plain", "echo boom; exit 2"),
    ];
    let (tx, mut rx) = mpsc::unbounded_channel();
    let runs = run(
        &tests,
        dir.path(),
        &target(),
        &tx,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(runs.len(), 3);
    assert!(!runs[0].passed());
    assert_eq!(runs[0].cases.len(), 2);
    assert_eq!(runs[0].failed_cases(), ["t::test_recall"]);
    let failure = runs[0].failure();
    assert!(
        failure.contains("failing tests: t::test_recall"),
        "{failure}"
    );
    assert!(failure.contains("exit status 1"), "{failure}");
    assert!(failure.contains("1 failed"), "{failure}");
    assert!(runs[1].passed(), "{}", runs[1].failure());
    assert!(!runs[2].passed());
    assert!(runs[2].failure().contains("exit status 2"));
    assert!(runs[2].failure().contains("boom"));
    drop(tx);
    let mut lines = Vec::new();
    while let Some(l) = rx.recv().await {
        lines.push(l);
    }
    assert!(lines.iter().any(|l| l == "test env passed"), "{lines:?}");
}
