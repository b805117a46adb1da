//! Unit tests of the config loader.

use super::*;

#[derive(Debug, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct Sample {
    nats: NatsConfig,
    registry: RegistryConfig,
    latency_calls: usize,
}

#[test]
// figment's Jail closure returns figment's own (large) error type.
#[allow(clippy::result_large_err)]
fn the_shared_sections_come_from_the_file_and_the_documented_variables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "latency_calls = 7\n[registry]\nurl = \"http://r:1\"\n",
    )
    .unwrap();
    figment::Jail::expect_with(|jail| {
        jail.set_env("TOLLGATE_NATS_URL", "nats://n:4222");
        // Not a field of this config: ignored, not refused.
        jail.set_env("TOLLGATE_NATS_SERVER", "/usr/bin/nats-server");
        jail.set_env("TOLLGATE_GRPC_ADDR", "127.0.0.1:1");
        let c: Sample = load_config(Some(&file)).unwrap();
        assert_eq!(c.nats, NatsConfig::at("nats://n:4222"));
        assert_eq!(c.registry, RegistryConfig::at("http://r:1"));
        assert_eq!(c.latency_calls, 7);
        jail.set_env("TOLLGATE_REGISTRY__URL", "http://r:2");
        let c: Sample = load_config(None).unwrap();
        assert_eq!(c.registry, RegistryConfig::at("http://r:2"));
        Ok(())
    });
}

#[test]
fn an_unknown_field_in_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[nats]\nurll = \"x\"\n").unwrap();
    let err = load_config::<Sample>(Some(&file)).unwrap_err().to_string();
    assert!(
        err.contains("unknown field") && err.contains("urll"),
        "{err}"
    );
    let missing = load_config::<Sample>(Some(&dir.path().join("nope.toml")));
    assert!(matches!(missing, Err(ServiceError::NoConfigFile(_))));
}

#[test]
#[allow(clippy::result_large_err)]
fn a_variable_is_read_when_it_names_a_setting_as_the_loader_maps_it() {
    for var in [
        "TOLLGATE_NATS_URL",
        "TOLLGATE_NATS_REPLICAS",
        "TOLLGATE_NATS__ACK_WAIT_SECS",
        "TOLLGATE_TOKEN",
        "TOLLGATE_REGISTRY_CA",
        "TOLLGATE_DATA_ROOTS",
        "TOLLGATE_STAGING_SERVER_URL",
        "TOLLGATE_CONFIG",
    ] {
        assert!(reads_env::<StageConfig>(var), "{var}");
    }
    for var in [
        "TOLLGATE_GRPC_ADDR",
        "TOLLGATE_NATS__NOPE",
        "TOLLGATE_SERVER_MODELS",
        "NATS_URL",
        "TOLLGATE_NATS_SERVER",
    ] {
        assert!(!reads_env::<StageConfig>(var), "{var}");
    }
    figment::Jail::expect_with(|jail| {
        jail.set_env("TOLLGATE_NATS_REPLICAS", "3");
        let c: StageConfig = load_config(None).unwrap();
        assert_eq!(c.nats.replicas, 3);
        Ok(())
    });
}
