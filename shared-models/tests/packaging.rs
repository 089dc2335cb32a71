//! What can be checked of the Docker packaging without a Docker engine: compose.yaml parses and has every
//! service with its health check, its commands are binaries the workspace builds, the environment it sets is
//! read by the code, and the Dockerfile copies exactly those binaries.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const BINARIES: [&str; 3] = ["producer", "consumer", "worker"];

/// Environment variables the code reads (`env = "..."` in the clap configuration), plus RUST_LOG.
fn variables_read_by_the_code() -> BTreeSet<String> {
    let mut found = BTreeSet::from(["RUST_LOG".to_owned()]);
    let mut stack: Vec<PathBuf> = ["producer", "consumer", "worker", "shared-models"]
        .iter()
        .map(|c| root().join(c).join("src"))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).expect("source directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = fs::read_to_string(&path).expect("source");
                for piece in text.split("env = \"").skip(1) {
                    if let Some((name, _)) = piece.split_once('"') {
                        found.insert(name.to_owned());
                    }
                }
            }
        }
    }
    found
}

#[test]
fn every_binary_is_a_workspace_member_with_a_main() {
    for binary in BINARIES {
        assert!(
            root().join(binary).join("src/main.rs").exists(),
            "{binary} has no main.rs"
        );
        let manifest = fs::read_to_string(root().join(binary).join("Cargo.toml")).expect("manifest");
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{binary}'s package name"
        );
    }
}

#[test]
fn compose_runs_the_stack_with_health_checks_and_real_binaries_and_variables() {
    let text = fs::read_to_string(root().join("compose.yaml")).expect("compose.yaml");
    let compose: Value = serde_norway::from_str(&text).expect("compose.yaml parses");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["postgres", "kafka", "redis", "producer", "consumer", "worker"])
    );

    for infrastructure in ["postgres", "kafka", "redis", "producer", "consumer"] {
        assert!(
            !compose["services"][infrastructure]["healthcheck"]["test"].is_null(),
            "{infrastructure} health check"
        );
    }
    let kafka_env = &compose["services"]["kafka"]["environment"];
    assert_eq!(
        kafka_env["KAFKA_PROCESS_ROLES"].as_str(),
        Some("broker,controller"),
        "Kafka in KRaft mode"
    );
    assert!(compose["services"]["kafka"]["image"]
        .as_str()
        .is_some_and(|image| image.starts_with("apache/kafka")));

    let known = variables_read_by_the_code();
    for binary in BINARIES {
        let service = &compose["services"][binary];
        let command = service["command"].as_sequence().expect("command");
        assert_eq!(
            command.first().and_then(Value::as_str),
            Some(binary),
            "{binary}'s command"
        );
        for (key, _) in service["environment"].as_mapping().expect("environment") {
            let Some(name) = key.as_str() else { continue };
            if name == "<<" {
                continue;
            }
            assert!(
                known.contains(name),
                "{binary} sets {name}, which no binary reads"
            );
        }
        let depends = service["depends_on"].as_mapping().expect("depends_on");
        for (_, condition) in depends {
            assert_eq!(
                condition["condition"].as_str(),
                Some("service_healthy"),
                "{binary} waits for health"
            );
        }
    }
    for (name, _) in compose["x-service-env"].as_mapping().expect("shared environment") {
        let name = name.as_str().expect("name");
        assert!(
            known.contains(name),
            "the shared environment sets {name}, which no binary reads"
        );
    }
    // Scaling needs a worker without a fixed container name or host port.
    let worker = &compose["services"]["worker"];
    assert!(
        worker["container_name"].is_null() && worker["ports"].is_null(),
        "worker must scale"
    );
    // No default secret: the bootstrap token must come from the environment.
    let bootstrap = compose["services"]["producer"]["environment"]["BOOTSTRAP_ADMIN_TOKEN"]
        .as_str()
        .unwrap_or_default();
    assert!(bootstrap.starts_with("${BOOTSTRAP_ADMIN_TOKEN:?"), "{bootstrap}");
}

#[test]
fn the_dockerfile_copies_exactly_the_binaries_the_workspace_builds() {
    let dockerfile = fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let copied: BTreeSet<&str> = dockerfile
        .lines()
        .filter(|line| line.starts_with("COPY --from=build"))
        .flat_map(|line| line.split_whitespace())
        .filter_map(|word| word.strip_prefix("/src/target/release/"))
        .collect();
    assert_eq!(copied, BTreeSet::from(BINARIES));
    assert!(
        dockerfile.contains("USER receipts"),
        "the runtime image runs as a non-root user"
    );
    assert!(dockerfile.matches("FROM ").count() >= 2, "multi-stage");
    let workspace = fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let members: Vec<&str> = workspace
        .lines()
        .find_map(|line| line.strip_prefix("members = ["))
        .expect("the workspace's members")
        .trim_end_matches(']')
        .split(',')
        .map(|member| member.trim().trim_matches('"'))
        .filter(|member| !member.is_empty())
        .collect();
    assert!(members.len() >= 6, "{members:?}");
    for manifest in members {
        assert!(
            dockerfile.contains(&format!("COPY {manifest}/Cargo.toml")),
            "dependency layer copies {manifest}"
        );
    }
}
