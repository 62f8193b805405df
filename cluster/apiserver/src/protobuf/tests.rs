//! Bodies encoded with k8s-pb's messages as client-go encodes them: every non-pointer field
//! written, zero or not.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::json;

use super::*;

fn envelope(api_version: &str, kind: &str, message: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(message.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
}

fn s(text: &str) -> Option<String> {
    Some(text.to_string())
}

/// Metadata as Go writes it: the non-pointer strings empty, the zero creation time.
fn metadata(name: &str, labels: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time {
            seconds: Some(0),
            nanos: Some(0),
        }),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn container(name: &str, image: &str, command: &[&str]) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        command: command.iter().map(|c| c.to_string()).collect(),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

fn pod_spec(containers: Vec<core::Container>, restart_policy: &str) -> core::PodSpec {
    core::PodSpec {
        containers,
        restart_policy: s(restart_policy),
        dns_policy: s(""),
        host_network: Some(false),
        service_account_name: s(""),
        ..Default::default()
    }
}

#[test]
fn decodes_a_deployment_as_kubectl_create_deployment_sends_it() {
    let labels = [("app", "web")];
    let deployment = apps::Deployment {
        metadata: Some(metadata("web", &labels)),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            selector: Some(meta::LabelSelector {
                match_labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(metadata("", &labels)),
                spec: Some(pod_spec(vec![container("nginx", "nginx", &[])], "")),
            }),
            strategy: Some(apps::DeploymentStrategy::default()),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            replicas: Some(0),
            ..Default::default()
        }),
    };
    let object = decode_object(&envelope("apps/v1", "Deployment", &deployment)).unwrap();
    assert_eq!(
        object,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
                },
                "strategy": {},
            },
            "status": {},
        })
    );
}

#[test]
fn decodes_a_service_with_its_json_names_and_int_or_string_ports() {
    let port = |name: &str, target: IntOrString| core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        port: Some(80),
        target_port: Some(target),
        node_port: Some(0),
        ..Default::default()
    };
    let service = core::Service {
        metadata: Some(metadata("s", &[("app", "s")])),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port(
                    "80-80",
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: s(""),
                    },
                ),
                port(
                    "named",
                    IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    },
                ),
            ],
            selector: [("app".to_string(), "s".to_string())].into(),
            cluster_ip: s("None"),
            external_ips: vec!["192.0.2.1".into()],
            r#type: s("ClusterIP"),
            session_affinity: s(""),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    let object = decode_object(&envelope("v1", "Service", &service)).unwrap();
    assert_eq!(
        object["spec"],
        json!({
            "ports": [
                {"name": "80-80", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "named", "protocol": "TCP", "port": 80, "targetPort": "http"},
            ],
            "selector": {"app": "s"},
            "clusterIP": "None",
            "externalIPs": ["192.0.2.1"],
            "type": "ClusterIP",
        })
    );
}

#[test]
fn decodes_secret_bytes_config_map_strings_and_times() {
    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: Some(0),
            }),
            ..metadata("s", &[])
        }),
        data: [
            ("key".to_string(), vec![0, 1, 2]),
            ("empty".to_string(), vec![]),
        ]
        .into(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    let object = decode_object(&envelope("v1", "Secret", &secret)).unwrap();
    assert_eq!(
        object,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "creationTimestamp": "2023-11-14T22:13:20Z"},
            "data": {"key": "AAEC", "empty": ""},
            "type": "Opaque",
        })
    );
    let config_map = core::ConfigMap {
        metadata: Some(metadata("c", &[])),
        data: [
            ("a".to_string(), "b \"quoted\"\n".to_string()),
            ("blank".to_string(), String::new()),
        ]
        .into(),
        binary_data: [("bin".to_string(), vec![255])].into(),
        ..Default::default()
    };
    let object = decode_object(&envelope("v1", "ConfigMap", &config_map)).unwrap();
    assert_eq!(object["data"], json!({"a": "b \"quoted\"\n", "blank": ""}));
    assert_eq!(object["binaryData"], json!({"bin": "/w=="}));
}

#[test]
fn decodes_a_job_as_kubectl_create_job_sends_it() {
    let job = batch::Job {
        metadata: Some(metadata("j", &[])),
        spec: Some(batch::JobSpec {
            template: Some(core::PodTemplateSpec {
                metadata: Some(metadata("", &[])),
                spec: Some(pod_spec(
                    vec![container("j", "busybox:1.28", &["true"])],
                    "Never",
                )),
            }),
            backoff_limit: Some(4),
            ..Default::default()
        }),
        status: Some(batch::JobStatus::default()),
    };
    let object = decode_object(&envelope("batch/v1", "Job", &job)).unwrap();
    assert_eq!(object["kind"], "Job");
    assert_eq!(object["spec"]["backoffLimit"], 4);
    assert_eq!(
        object["spec"]["template"]["spec"],
        json!({"restartPolicy": "Never",
               "containers": [{"name": "j", "image": "busybox:1.28", "command": ["true"], "resources": {}}]})
    );
}

#[test]
fn every_kind_in_the_table_decodes_as_itself() {
    for (api_version, kind, decode) in kinds::KINDS {
        // Every row's two types agree: the empty message comes back as its own kind.
        let object = decode(&[]).unwrap_or_else(|e| panic!("{kind}: {}", e.message));
        assert_eq!(
            (object["apiVersion"].as_str(), object["kind"].as_str()),
            (Some(*api_version), Some(*kind))
        );
    }
    let names: BTreeMap<_, _> = kinds::KINDS
        .iter()
        .map(|(v, k, _)| ((*v, *k), ()))
        .collect();
    assert_eq!(names.len(), kinds::KINDS.len(), "a kind is listed twice");
}

#[test]
fn refuses_unknown_kinds_and_broken_bodies() {
    let error = decode_object(&envelope(
        "example.com/v1",
        "Widget",
        &meta::ObjectMeta::default(),
    ))
    .unwrap_err();
    assert_eq!(error.code, 415);
    assert!(
        error.message.contains("Widget (example.com/v1)"),
        "{}",
        error.message
    );
    let error = decode_object(b"{}").unwrap_err();
    assert_eq!(error.code, 400);
    let mut truncated = envelope(
        "v1",
        "Namespace",
        &core::Namespace {
            metadata: Some(metadata("n", &[])),
            ..Default::default()
        },
    );
    truncated.truncate(truncated.len() - 3);
    let error = decode_object(&truncated).unwrap_err();
    assert_eq!(error.code, 400, "{}", error.message);
}

#[test]
fn any_string_survives_the_debug_text() {
    let ascii: String = (0u8..128).map(char::from).collect();
    let strings = [
        ascii.as_str(),
        "\u{301}starts with a combining mark",
        "zero\u{200b}width\u{feff}and\u{10ffff}",
        "emoji 👩‍👩‍👧 and 中文, Some(\"x\"), None }",
        "",
    ];
    let data: BTreeMap<String, String> = strings
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("{i}{s}"), s.to_string()))
        .collect();
    let config_map = core::ConfigMap {
        metadata: Some(metadata("c", &[("a", "\"quoted\" \\ 'single'")])),
        data: data.clone().into_iter().collect(),
        ..Default::default()
    };
    let object = decode_object(&envelope("v1", "ConfigMap", &config_map)).unwrap();
    assert_eq!(object["data"], json!(data));
    assert_eq!(object["metadata"]["labels"]["a"], "\"quoted\" \\ 'single'");
}

#[test]
fn decodes_delete_options_as_kubectl_drain_sends_them() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("1234"),
            resource_version: None,
        }),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let body = envelope("v1", "DeleteOptions", &options);
    assert!(is_protobuf(&body));
    assert_eq!(
        decode_delete_options(&body).unwrap(),
        json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "1234"},
               "propagationPolicy": "Foreground", "dryRun": ["All"]})
    );
    // Registered in every group version, so an apps/v1 DeleteOptions is one too.
    assert!(decode_delete_options(&envelope("apps/v1", "DeleteOptions", &options)).is_ok());
    let error = decode_delete_options(&envelope("v1", "Namespace", &options)).unwrap_err();
    assert_eq!(error.code, 400, "{}", error.message);
    assert!(!is_protobuf(br#"{"kind":"DeleteOptions"}"#));
}

#[test]
fn decodes_an_eviction_with_its_delete_options_as_kubectl_drain_sends_it() {
    let eviction = k8s_pb::api::policy::v1::Eviction {
        metadata: Some(metadata("web-0", &[])),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        }),
    };
    let decoded = decode_eviction(&envelope("policy/v1", "Eviction", &eviction)).unwrap();
    assert_eq!(decoded["metadata"]["name"], "web-0");
    assert_eq!(decoded["deleteOptions"], json!({"gracePeriodSeconds": 0}));
    let error = decode_eviction(&envelope(
        "v1",
        "DeleteOptions",
        &meta::DeleteOptions::default(),
    ))
    .unwrap_err();
    assert_eq!(error.code, 400, "{}", error.message);
}
