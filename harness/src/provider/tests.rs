//! Provider selection and facts discovery, on the embedded cluster where a cluster is needed
//! (one cluster per test; the tests need root and the packages of scripts/install-deps).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};

use super::*;
use crate::testing::start_embedded_cluster;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("k8s-labs-provider-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dns_service(name: &str, cluster_ip: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(cluster_ip.to_string()),
            selector: Some([("k8s-app".to_string(), "kube-dns".to_string())].into()),
            ports: Some(vec![ServicePort {
                name: Some("dns".to_string()),
                port: 53,
                protocol: Some("UDP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn facts_name_kube_dns_or_coredns_whichever_the_cluster_has() {
    let provider = start_embedded_cluster().await;
    let facts = provider.facts().clone();
    assert_eq!(facts.dns_service_name.as_deref(), Some("kube-dns"));
    assert_eq!(
        facts.dns_service_ip,
        Some("10.96.0.10".parse::<IpAddr>().unwrap())
    );
    assert_eq!(facts.server_version, "v1.33.0");
    assert_eq!(provider.kind(), ClusterKind::Embedded);
    assert!(!provider.pulls_images());
    assert_eq!(provider.describe(), "embedded cluster v1.33.0");

    // A k3s-style cluster: the DNS Service is called coredns.
    let services: Api<Service> = Api::namespaced(provider.client(), "kube-system");
    services
        .create(
            &PostParams::default(),
            &dns_service("coredns", "10.96.0.53"),
        )
        .await
        .unwrap();
    services
        .delete("kube-dns", &DeleteParams::default())
        .await
        .unwrap();
    let rediscovered = discover_facts(&provider.client()).await.unwrap();
    assert_eq!(rediscovered.dns_service_name.as_deref(), Some("coredns"));
    assert_eq!(
        rediscovered.dns_service_ip,
        Some("10.96.0.53".parse::<IpAddr>().unwrap())
    );
    provider.stop().await.unwrap();
}

#[tokio::test]
async fn a_kubeconfig_choice_reaches_a_separately_started_cluster_and_leaves_it_running() {
    let cluster = start_embedded_cluster().await;
    let dir = temp_dir("kubeconfig-path");
    let path = dir.join("kubeconfig");
    let yaml = serde_json::to_string(cluster.embedded_kubeconfig().unwrap()).unwrap();
    std::fs::write(&path, yaml).unwrap();

    let provider = Provider::from_choice(ClusterChoice::Kubeconfig {
        path: Some(path.clone()),
        context: None,
    })
    .await
    .unwrap();
    assert_eq!(provider.kind(), ClusterKind::Kubeconfig);
    assert!(provider.pulls_images());
    assert_eq!(
        provider.facts().dns_service_ip,
        cluster.facts().dns_service_ip
    );
    assert_eq!(provider.version().await.unwrap(), "v1.33.0");
    let description = provider.describe();
    assert!(
        description.starts_with("cluster v1.33.0 at https://127.0.0.1:")
            && description.ends_with(&format!(
                "from kubeconfig {} (context {})",
                path.display(),
                k8s_labs_cluster::CONTEXT_NAME
            )),
        "{description}"
    );
    assert!(provider.embedded_kubeconfig().is_none());

    let logs = provider
        .export_logs(&dir.join("logs"), &["default"])
        .await
        .unwrap();
    assert!(
        logs.contains(&dir.join("logs/kube-system/events.txt")),
        "{logs:?}"
    );
    assert!(
        logs.contains(&dir.join("logs/default/events.txt")),
        "{logs:?}"
    );

    // Stopping a kubeconfig provider leaves the cluster as it was.
    provider.stop().await.unwrap();
    assert_eq!(
        discover_facts(&cluster.client())
            .await
            .unwrap()
            .server_version,
        "v1.33.0"
    );
    cluster.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_embedded_cluster_reports_the_requested_version() {
    let provider = Provider::from_choice(ClusterChoice::Embedded {
        kubernetes_version: Some("v1.35".parse().unwrap()),
    })
    .await
    .unwrap();
    assert_eq!(provider.facts().server_version, "v1.35.0");
    assert_eq!(provider.describe(), "embedded cluster v1.35.0");
    provider.stop().await.unwrap();
}

#[tokio::test]
async fn choices_that_cannot_work_fail_before_starting_anything() {
    let too_old = Provider::from_choice(ClusterChoice::Embedded {
        kubernetes_version: Some("v1.30".parse().unwrap()),
    })
    .await;
    match too_old {
        Err(ConnectError::Config(error)) => {
            assert!(
                error.to_string().contains("older than the labs support"),
                "{error}"
            )
        }
        other => panic!("expected a usage error, got {:?}", other.err()),
    }

    let no_engine = EngineEnv {
        docker_host: Some("unix:///nonexistent/docker.sock".to_string()),
        ..Default::default()
    };
    let k3s = Provider::from_choice_with(
        ClusterChoice::K3s {
            kubernetes_version: None,
        },
        &no_engine,
    )
    .await;
    match k3s {
        Err(ConnectError::Config(error)) => {
            let line = error.to_string();
            assert!(
                line.starts_with(
                    "--cluster k3s needs a Docker-compatible engine, and none answers at \
                     unix:///nonexistent/docker.sock"
                ),
                "{line}"
            );
            assert!(line.contains("--kubeconfig PATH"), "{line}");
            assert!(
                line.contains("leave out --cluster to use the embedded cluster"),
                "{line}"
            );
        }
        other => panic!("expected a usage error, got {:?}", other.err()),
    }

    let missing = Provider::from_choice(ClusterChoice::Kubeconfig {
        path: Some(PathBuf::from("/nonexistent/kubeconfig")),
        context: Some("kind-labs".to_string()),
    })
    .await;
    match missing {
        Err(ConnectError::Config(error)) => {
            assert_eq!(
                error.to_string(),
                "kubeconfig /nonexistent/kubeconfig does not exist"
            )
        }
        other => panic!("expected a usage error, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn a_cluster_that_does_not_answer_is_a_cluster_error_naming_its_address() {
    // A port on loopback nobody listens on: the kubeconfig is fine, the cluster is not there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = temp_dir("no-answer");
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: t
contexts:
- name: gone
  context:
    cluster: gone
    user: u
current-context: gone
"
        ),
    )
    .unwrap();
    match Provider::kubeconfig(&path, None).await {
        Err(ConnectError::Cluster(error)) => {
            let line = format!("{error:#}");
            assert!(
                line.starts_with(&format!(
                    "the cluster at https://127.0.0.1:{port} did not answer"
                )),
                "{line}"
            );
        }
        other => panic!("expected a cluster error, got {:?}", other.err()),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_node_tool_image_is_known_for_nslookup_only() {
    assert_eq!(node_tool_image("nslookup"), Some("busybox:1.28"));
    assert_eq!(node_tool_image("tcpdump"), None);
}
