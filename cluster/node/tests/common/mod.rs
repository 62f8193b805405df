//! A real API server with this node agent registered, for the agent tests; and helpers to wait
//! for what the agent reports (watch-driven, no polling).
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use k8s_labs_apiserver::{ApiServer, ApiServerConfig};
use k8s_labs_net::{NodeNetwork, NodeNetworkConfig};
use k8s_labs_node::{NodeAgent, NodeConfig, NodeHandle};
use k8s_labs_node_api::NodeConnections;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};

pub const TEST_RUN_ROOT: &str = "/run/k8s-labs-test";
pub const TOKEN: &str = "node-agent-test-token";
pub const NODE: &str = "k8s-labs-node";

pub struct Cluster {
    pub server: ApiServer,
    pub client: Client,
    pub node: NodeHandle,
    pub nodes: NodeConnections,
    pub network: Arc<NodeNetwork>,
    pub state_dir: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // What a crashed earlier run of these tests left (a panicking test skips its cleanup).
        k8s_labs_node::cleanup_leftovers(Path::new(TEST_RUN_ROOT)).unwrap();
        let nodes = NodeConnections::default();
        let server = ApiServer::start(ApiServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            token: TOKEN.to_string(),
            service_cidr: "10.96.0.0/12".to_string(),
            kubernetes_version: "v1.33.0".to_string(),
            nodes: nodes.clone(),
        })
        .await
        .unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
             users:\n- name: u\n  user:\n    token: {TOKEN}\n",
            server.url()
        );
        let kubeconfig = Kubeconfig::from_yaml(&kubeconfig).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        let client = Client::try_from(config).unwrap();
        let (instance, state_dir) =
            k8s_labs_node::claim_instance(Path::new(TEST_RUN_ROOT)).unwrap();
        let network = Arc::new(
            NodeNetwork::create(NodeNetworkConfig {
                instance,
                pod_cidr: "10.244.0.0/16".into(),
                local_addresses: vec![Ipv4Addr::new(10, 96, 0, 10)],
            })
            .unwrap(),
        );
        let node = NodeAgent::start(
            client.clone(),
            NodeConfig {
                node_name: NODE.to_string(),
                state_dir: state_dir.clone(),
                network: network.clone(),
                dns_ip: Ipv4Addr::new(10, 96, 0, 10),
                cluster_domain: "cluster.local".into(),
                kubelet_version: "v1.33.0".into(),
            },
        )
        .await
        .unwrap();
        nodes.register(NODE, node.connection());
        Cluster {
            server,
            client,
            node,
            nodes,
            network,
            state_dir,
        }
    }

    pub async fn stop(self) {
        self.nodes.unregister(NODE);
        self.node.shutdown().await.unwrap();
        self.network.destroy().unwrap();
        std::fs::remove_dir_all(&self.state_dir).unwrap();
        self.server.shutdown().await;
    }
}

pub fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }))
    .unwrap()
}

pub fn running_and_ready(pod: Option<&Pod>) -> bool {
    let Some(status) = pod.and_then(|pod| pod.status.as_ref()) else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status.pod_ip.is_some()
        && status
            .conditions
            .iter()
            .flatten()
            .any(|condition| condition.type_ == "Ready" && condition.status == "True")
}

/// The first event in `default` that matches, from a watch (events are written
/// asynchronously, after the status that they go with).
pub async fn wait_for_event(client: &Client, matches: impl Fn(&Event) -> bool) -> Event {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let stream = watcher(events, watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = stream.next().await {
            let event = event.unwrap();
            if matches(&event) {
                return event;
            }
        }
        panic!("the event watch ended");
    })
    .await;
    found.expect("the event")
}

pub async fn collect(mut receiver: tokio::sync::mpsc::Receiver<Bytes>) -> String {
    let mut out = Vec::new();
    while let Some(bytes) = receiver.recv().await {
        out.extend_from_slice(&bytes);
    }
    String::from_utf8(out).unwrap()
}
