//! The deployment, checked offline (no Docker engine, no cluster): the Dockerfile's
//! shape, and both Kubernetes overlays as `kubectl kustomize` renders them, against what
//! the services actually read. `make k8s-validate` checks the same objects against the
//! Kubernetes schemas; this checks that they configure Tollgate correctly.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
};

use serde_json::Value;
use tollgate_e2e::workspace_root;

use tollgate_e2e::processes::{bin, succeeded};

/// The overlays `k8s/overlays/` holds.
const OVERLAYS: [&str; 2] = ["dev", "prod"];

/// Every object of `k8s/overlays/<overlay>`, rendered by `kubectl kustomize`.
fn render(overlay: &str) -> Vec<Value> {
    let dir = workspace_root().join("k8s/overlays").join(overlay);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl is needed to render {}: {e} (https://kubernetes.io/docs/tasks/tools/)",
                dir.display()
            )
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// The objects of `kind`, by name.
fn of_kind<'a>(objects: &'a [Value], kind: &str) -> BTreeMap<String, &'a Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
        .collect()
}

/// A container of a workload: the workload's name, its pod spec and the container.
struct Container<'a> {
    workload: String,
    pod: &'a Value,
    container: &'a Value,
}

impl Container<'_> {
    /// The binary it runs: the base name of its command's first word.
    fn binary(&self) -> &str {
        let command = self.container["command"][0].as_str().unwrap_or_default();
        command.rsplit('/').next().unwrap_or_default()
    }

    /// Its environment: name -> value (`valueFrom` entries as `<secret NAME/KEY>`).
    fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for e in self.container["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match (&e["value"], &e["valueFrom"]["secretKeyRef"]) {
                (Value::String(v), _) => v.clone(),
                (_, Value::Object(r)) => format!("<secret {}/{}>", r["name"], r["key"]),
                _ => panic!("{}: {name} has neither a value nor a secret", self.workload),
            };
            assert!(
                env.insert(name.clone(), value).is_none(),
                "{}: {name} set twice",
                self.workload
            );
        }
        env
    }

    /// The path a volume is mounted at in this container, and the volume.
    fn mounts(&self) -> Vec<(String, &Value)> {
        let volumes = self.pod["volumes"].as_array().unwrap();
        self.container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let volume = volumes
                    .iter()
                    .find(|v| v["name"] == m["name"])
                    .unwrap_or_else(|| panic!("{}: no volume {}", self.workload, m["name"]));
                (m["mountPath"].as_str().unwrap().to_string(), volume)
            })
            .collect()
    }

    /// The container port named `name`.
    fn port(&self, name: &str) -> Option<u64> {
        self.container["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
    }
}

/// Every container and init container of the Deployments and StatefulSets in `objects`
/// that runs a Tollgate binary.
fn tollgate_containers(objects: &[Value]) -> Vec<Container<'_>> {
    let mut found = Vec::new();
    for o in objects {
        if o["kind"] != "Deployment" && o["kind"] != "StatefulSet" {
            continue;
        }
        let pod = &o["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for c in pod[list].as_array().into_iter().flatten() {
                if c["image"].as_str().unwrap_or_default().contains("tollgate") {
                    found.push(Container {
                        workload: o["metadata"]["name"].as_str().unwrap().to_string(),
                        pod,
                        container: c,
                    });
                }
            }
        }
    }
    found
}

/// Every environment variable a clap command (and its subcommands) reads.
fn clap_env(command: &clap::Command, into: &mut BTreeSet<String>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env() {
            into.insert(env.to_string_lossy().into_owned());
        }
    }
    for sub in command.get_subcommands() {
        clap_env(sub, into);
    }
}

/// Whether `binary` reads `var`: its config's settings (as the loader maps variables to
/// them), its command line's, the NATS connection's and telemetry's.
fn reads(binary: &str, var: &str) -> bool {
    use clap::CommandFactory;
    use tollgate_service::reads_env;
    let mut flags = BTreeSet::new();
    clap_env(&tollgate_service::ServiceArgs::command(), &mut flags);
    if tollgate_telemetry::reads_env(var) || flags.contains(var) {
        return true;
    }
    match binary {
        "tollgate-registry" => reads_env::<tollgate_stack::services::registry::Config>(var),
        "tollgate-trigger-watcher" => {
            reads_env::<tollgate_stack::services::trigger_watcher::Config>(var)
        }
        "tollgate-data-validator" => {
            reads_env::<tollgate_stack::services::data_validator::Config>(var)
        }
        "tollgate-trainer" => reads_env::<tollgate_stack::services::trainer::Config>(var),
        "tollgate-gate" => reads_env::<tollgate_stack::services::gate::Config>(var),
        "tollgate-promoter" => reads_env::<tollgate_stack::services::promoter::Config>(var),
        "tollgate-server" => reads_env::<tollgate_stack::services::server::Config>(var),
        "tollgate" => {
            let mut cli = BTreeSet::new();
            clap_env(&tollgate_cli::Cli::command(), &mut cli);
            cli.contains(var)
                || tollgate_bus::bus::Options::ENV_VARS.contains(&var)
                || var == tollgate_cli::show::TOKEN_ENV
        }
        other => panic!("a container runs {other}, which is no Tollgate binary"),
    }
}

/// The port of an address `host:port`.
fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The Service an in-cluster URL (`http://registry:50051`) names, and its port.
fn service_of(url: &str) -> (String, u64) {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let (host, port) = rest.split_once(':').unwrap();
    (
        host.to_string(),
        port.trim_end_matches('/').parse().unwrap(),
    )
}

/// Asserts that `url` names a Service of `objects` with that port.
fn assert_service(objects: &[Value], url: &str, who: &str) {
    let (name, port) = service_of(url);
    let services = of_kind(objects, "Service");
    let service = services
        .get(&name)
        .unwrap_or_else(|| panic!("{who}: {url} names no Service"));
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"].as_u64() == Some(port)),
        "{who}: Service {name} has no port {port}"
    );
}

#[test]
fn the_dockerfile_builds_dependencies_first_copies_every_binary_and_runs_as_non_root() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let stages: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, l)| (i, *l))
        .collect();
    let stage_of = |i: usize| stages.iter().rev().find(|(at, _)| *at <= i).unwrap().1;
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the Dockerfile"))
    };

    // The dependency layer: cooked from the recipe alone, before the sources come in.
    let cook = at("cargo chef cook --release");
    let sources = lines
        .iter()
        .enumerate()
        .position(|(i, l)| *l == "COPY . ." && stage_of(i) == stage_of(cook))
        .unwrap();
    assert!(
        cook < sources,
        "dependencies are built before the sources are copied"
    );
    assert!(lines[..cook].iter().any(|l| l.contains("recipe.json")));
    let build = at("cargo build --release --workspace --bins");
    assert!(sources < build && stage_of(build) == stage_of(cook));

    // The runtime: the last stage, not a build image, not root.
    let (last, from) = *stages.last().unwrap();
    assert!(
        from.contains("distroless") || from.contains("slim"),
        "small runtime: {from}"
    );
    let user = lines[last..]
        .iter()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "runtime user {user}");

    // Every binary: one per services/ directory, and the CLI.
    let mut binaries: Vec<String> = std::fs::read_dir(root.join("services"))
        .unwrap()
        .map(|e| format!("tollgate-{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    binaries.push("tollgate".into());
    let built = &text[text.find("cargo build --release").unwrap()..];
    for binary in &binaries {
        assert!(
            built.contains(&format!("target/release/{binary} ")),
            "{binary} is not copied into the image"
        );
    }
    assert!(
        lines[last..]
            .iter()
            .any(|l| l.starts_with("COPY --from=builder"))
    );
    // ONNX Runtime's library, from the pinned wheel, in ../lib/ of the binaries, where
    // they look for it.
    assert!(
        lines[last..]
            .iter()
            .any(|l| l.starts_with("COPY --from=onnxruntime") && l.ends_with(" /usr/local/lib/")),
        "the runtime stage carries libonnxruntime"
    );
    assert!(text.contains("ARG ONNXRUNTIME_VERSION=1.32.0"));
    assert!(text.contains("\"onnxruntime==${ONNXRUNTIME_VERSION}\""));

    let ignored = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    for dir in ["target/", ".git/", ".tools/"] {
        assert!(ignored.lines().any(|l| l == dir), "{dir} is not ignored");
    }
}

#[test]
fn every_variable_the_manifests_set_is_read_and_every_required_setting_is_set() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let nats_nodes = of_kind(&objects, "StatefulSet")["nats"]["spec"]["replicas"]
            .as_u64()
            .unwrap();
        let containers = tollgate_containers(&objects);
        let mut workloads = BTreeSet::new();
        for c in &containers {
            let who = format!("{overlay}: {} ({})", c.workload, c.binary());
            let env = c.env();
            workloads.insert(c.workload.clone());
            for var in env.keys() {
                assert!(
                    reads(c.binary(), var),
                    "{who} sets {var}, which it never reads"
                );
            }

            // Every binary: NATS with its own credentials, at the cluster's replica count.
            let need = |var: &str| -> &String {
                env.get(var).unwrap_or_else(|| panic!("{who} needs {var}"))
            };
            assert_service(&objects, need("TOLLGATE_NATS_URL"), &who);
            assert_eq!(
                need("TOLLGATE_NATS_REPLICAS").parse::<u64>().unwrap(),
                nats_nodes,
                "{who}: streams at as many replicas as NATS has nodes"
            );
            let creds = need("TOLLGATE_NATS_CREDS");
            let (dir, file) = creds.rsplit_once('/').unwrap();
            let mounted = c.mounts();
            let (_, volume) = mounted
                .iter()
                .find(|(path, _)| path == dir)
                .unwrap_or_else(|| panic!("{who}: nothing mounted at {dir}"));
            let identity = file.trim_end_matches(".creds");
            assert_eq!(
                volume["secret"]["secretName"],
                format!("tollgate-nats-{identity}"),
                "{who}"
            );
            if c.binary() == "tollgate" {
                continue;
            }
            assert!(env.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT"), "{who}");
            assert_service(&objects, &env["OTEL_EXPORTER_OTLP_ENDPOINT"], &who);

            // The health endpoint is where the probes look.
            let probe_port = |probe: &str| -> u64 {
                let port = &c.container[probe]["httpGet"]["port"];
                port.as_u64().unwrap_or_else(|| {
                    c.port(port.as_str().unwrap())
                        .unwrap_or_else(|| panic!("{who}: {probe} names no port"))
                })
            };
            let served_on = match c.binary() {
                "tollgate-server" => port_of(need("TOLLGATE_SERVER_ADDR")),
                _ => port_of(need("TOLLGATE_HEALTH_ADDR")),
            };
            for probe in ["readinessProbe", "livenessProbe"] {
                assert_eq!(probe_port(probe), served_on, "{who}: {probe}");
            }
            assert_eq!(c.container["readinessProbe"]["httpGet"]["path"], "/readyz");

            match c.binary() {
                "tollgate-registry" => {
                    let grpc = port_of(need("TOLLGATE_GRPC_ADDR"));
                    assert_eq!(c.port("grpc"), Some(grpc), "{who}");
                    let tokens = need("TOLLGATE_TOKENS_FILE");
                    assert!(
                        mounted.iter().any(|(p, v)| tokens.starts_with(p.as_str())
                            && v["secret"]["secretName"] == "tollgate-registry-tokens"),
                        "{who}: {tokens} is not the token Secret"
                    );
                }
                "tollgate-trigger-watcher" => {}
                "tollgate-server" => {
                    assert!(!need("TOLLGATE_SERVER_MODELS").is_empty());
                    let grpc = port_of(need("TOLLGATE_SERVER_GRPC_ADDR"));
                    assert_eq!(c.port("grpc"), Some(grpc), "{who}");
                }
                _ => {}
            }
            if reads(c.binary(), "TOLLGATE_TOKEN") {
                assert_service(&objects, need("TOLLGATE_REGISTRY_URL"), &who);
                assert!(need("TOLLGATE_TOKEN").starts_with("<secret \"tollgate-token-"));
            }
            if matches!(
                c.binary(),
                "tollgate-data-validator" | "tollgate-trainer" | "tollgate-gate"
            ) {
                let roots = need("TOLLGATE_DATA_ROOTS");
                assert!(
                    mounted.iter().any(|(p, _)| p == roots),
                    "{who}: data root {roots} is not mounted"
                );
                let cache = need("TOLLGATE_CACHE_DIR");
                assert!(mounted.iter().any(|(p, _)| p == cache), "{who}: {cache}");
            }
            if c.binary() == "tollgate-promoter" {
                assert_service(&objects, need("TOLLGATE_STAGING_SERVER_URL"), &who);
            }
        }
        // The six services, and the model server for Staging and for Production.
        let expected: BTreeSet<String> = tollgate_stack::SERVICES
            .iter()
            .chain(&["server-staging", "server-production"])
            .map(|s| s.to_string())
            .collect();
        assert_eq!(workloads, expected, "{overlay}");

        // The collector reads deploy/otel-collector.yaml and the variables it names.
        let collector = of_kind(&objects, "Deployment")["otel-collector"];
        let config =
            std::fs::read_to_string(workspace_root().join("deploy/otel-collector.yaml")).unwrap();
        let container = &collector["spec"]["template"]["spec"]["containers"][0];
        for var in config.split("${env:").skip(1) {
            let var = var.split('}').next().unwrap();
            assert!(
                container["env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["name"] == var),
                "{overlay}: the collector's config reads {var}, which is not set"
            );
        }
    }
}

#[test]
fn prod_runs_three_nats_nodes_two_trainers_and_two_validators_with_budgets_and_autoscalers() {
    let objects = render("prod");
    let deployments = of_kind(&objects, "Deployment");
    let nats = of_kind(&objects, "StatefulSet")["nats"];
    assert_eq!(nats["spec"]["replicas"], 3);
    let anti = &nats["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
    assert!(anti.is_object(), "NATS pods spread over nodes");
    let conf = of_kind(&objects, "ConfigMap")
        .into_iter()
        .find(|(name, _)| name.starts_with("nats-config"))
        .unwrap()
        .1["data"]["nats.conf"]
        .as_str()
        .unwrap()
        .to_string();
    // Its routes (with their TLS and user) come from the cluster Secret it includes.
    assert!(conf.contains("include ../cluster/cluster.conf"), "{conf}");
    for shared in ["trainer", "data-validator"] {
        assert_eq!(deployments[shared]["spec"]["replicas"], 2, "{shared}");
    }
    let hpas = of_kind(&objects, "HorizontalPodAutoscaler");
    for target in [
        "trainer",
        "data-validator",
        "server-staging",
        "server-production",
    ] {
        let hpa = hpas
            .values()
            .find(|h| h["spec"]["scaleTargetRef"]["name"] == target)
            .unwrap_or_else(|| panic!("no autoscaler for {target}"));
        assert!(deployments.contains_key(target));
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    }
    let budgets = of_kind(&objects, "PodDisruptionBudget");
    assert_eq!(budgets["nats"]["spec"]["minAvailable"], 2);
    for name in ["trainer", "data-validator"] {
        assert!(budgets.contains_key(name), "{name}");
    }

    // The dev overlay: one of each, one NATS.
    let dev = render("dev");
    assert_eq!(of_kind(&dev, "StatefulSet")["nats"]["spec"]["replicas"], 1);
    for (name, d) in of_kind(&dev, "Deployment") {
        assert_eq!(d["spec"]["replicas"], 1, "dev {name}");
    }
}

#[test]
fn prod_denies_by_default_and_opens_one_path_per_need_never_the_nats_monitor() {
    let objects = render("prod");
    let policies = of_kind(&objects, "NetworkPolicy");
    let deny = &policies["default-deny"];
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(
        deny["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let mut opened = Vec::new();
    for (name, p) in &policies {
        for rule in p["spec"]["ingress"].as_array().into_iter().flatten() {
            for port in rule["ports"].as_array().into_iter().flatten() {
                opened.push((name.clone(), port["port"].as_i64().unwrap()));
            }
        }
    }
    assert!(!opened.iter().any(|(_, port)| *port == 8222), "{opened:?}");
    assert!(opened.contains(&("nats".to_string(), 4222)));
    assert!(opened.contains(&("nats".to_string(), 6222)));
    // NATS' client port takes only its signed-in clients, its routes only NATS.
    let nats_ingress = &policies["nats"]["spec"]["ingress"];
    assert_eq!(
        nats_ingress[0]["from"][0]["podSelector"]["matchLabels"]["tollgate.dev/nats-client"],
        "true"
    );
    assert_eq!(
        nats_ingress[1]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "nats"
    );
    // Every Deployment's pods are reached or reach out through some policy of their own.
    for (name, d) in of_kind(&objects, "Deployment") {
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        let selected = policies.iter().any(|(policy, p)| {
            policy != "default-deny"
                && policy != "dns"
                && selects(&p["spec"]["podSelector"], labels)
        });
        assert!(selected, "no NetworkPolicy of its own selects {name}");
    }
}

/// Whether a label selector (matchLabels and `In` expressions) selects `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let by_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| &labels[k] == v);
    let by_expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            e["operator"] == "In"
                && e["values"]
                    .as_array()
                    .is_some_and(|vs| vs.contains(&labels[e["key"].as_str().unwrap_or("")]))
        });
    by_labels && by_expressions
}

#[test]
fn every_secret_the_manifests_reference_is_made_by_the_secrets_script() {
    let dir = tempfile::tempdir().unwrap();
    let out = succeeded(
        Command::new(workspace_root().join("scripts/k8s-secrets.sh"))
            .arg(dir.path().join("secrets"))
            .env("TOLLGATE_BIN", bin("tollgate")),
    );
    let text = std::fs::read_to_string(dir.path().join("secrets/secrets.yaml")).unwrap();
    let secrets: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let made: BTreeMap<String, BTreeSet<String>> = secrets
        .iter()
        .filter(|s| s["kind"] == "Secret")
        .map(|s| {
            assert_eq!(s["metadata"]["namespace"], "tollgate");
            let keys = s["data"].as_object().unwrap().keys().cloned().collect();
            (s["metadata"]["name"].as_str().unwrap().to_string(), keys)
        })
        .collect();
    // No secret value is printed on the way.
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("tg_"), "{said}");

    for overlay in OVERLAYS {
        let objects = render(overlay);
        for o in &objects {
            let pod = match o["kind"].as_str() {
                Some("Deployment" | "StatefulSet") => &o["spec"]["template"]["spec"],
                _ => continue,
            };
            let who = format!("{overlay}: {}", o["metadata"]["name"]);
            for v in pod["volumes"].as_array().into_iter().flatten() {
                if let Some(name) = v["secret"]["secretName"].as_str() {
                    assert!(made.contains_key(name), "{who} mounts Secret {name}");
                }
            }
            for list in ["initContainers", "containers"] {
                for c in pod[list].as_array().into_iter().flatten() {
                    for e in c["env"].as_array().into_iter().flatten() {
                        let r = &e["valueFrom"]["secretKeyRef"];
                        if let (Some(name), Some(key)) = (r["name"].as_str(), r["key"].as_str()) {
                            assert!(
                                made.get(name).is_some_and(|k| k.contains(key)),
                                "{who} reads {key} of Secret {name}"
                            );
                        }
                    }
                }
            }
        }
    }
    // The creds Secrets hold the file the services are told to read.
    for (name, keys) in &made {
        if let Some(identity) = name.strip_prefix("tollgate-nats-")
            && !["auth", "cluster"].contains(&identity)
        {
            assert!(
                keys.contains(&format!("{identity}.creds")),
                "{name}: {keys:?}"
            );
        }
    }
}

#[test]
fn nats_server_accepts_each_overlays_config_with_the_generated_users() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let (_, config) = of_kind(&objects, "ConfigMap")
            .into_iter()
            .find(|(name, _)| name.starts_with("nats-config"))
            .unwrap();
        // The cluster runs the nats-server version the tests run.
        let makefile = std::fs::read_to_string(workspace_root().join("Makefile")).unwrap();
        let version = makefile
            .lines()
            .find_map(|l| l.strip_prefix("NATS_SERVER_VERSION := "))
            .unwrap();
        let image = &of_kind(&objects, "StatefulSet")["nats"]["spec"]["template"]["spec"]["containers"]
            [0]["image"];
        assert_eq!(image, &format!("nats:{version}-alpine"), "{overlay}");
        // As the StatefulSet mounts them: the config and, beside it, the auth Secret and
        // (prod) the cluster routes' Secret, as the secrets script makes them.
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("config/nats.conf");
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(&conf, config["data"]["nats.conf"].as_str().unwrap()).unwrap();
        let secrets = dir.path().join("secrets");
        succeeded(
            Command::new(workspace_root().join("scripts/k8s-secrets.sh"))
                .arg(&secrets)
                .env("TOLLGATE_BIN", bin("tollgate")),
        );
        std::fs::rename(secrets.join("nats"), dir.path().join("auth")).unwrap();
        let cluster = dir.path().join("cluster");
        std::fs::rename(secrets.join("nats-cluster"), &cluster).unwrap();
        let routes = std::fs::read_to_string(cluster.join("cluster.conf")).unwrap();
        assert!(
            routes.contains("verify: true") && routes.matches("nats://route:").count() == 3,
            "{routes}"
        );
        std::fs::write(
            cluster.join("cluster.conf"),
            routes.replace("/etc/nats/cluster/", &format!("{}/", cluster.display())),
        )
        .unwrap();
        let out = Command::new(tollgate_e2e::nats_server_binary().unwrap())
            .arg("-c")
            .arg(&conf)
            .arg("-t")
            .env("POD_NAME", "nats-0")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{overlay}: {said}");
        assert!(said.contains("is valid"), "{overlay}: {said}");
    }
}
