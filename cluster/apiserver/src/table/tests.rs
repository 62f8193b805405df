//! The tables of the tutorial's `kubectl get` outputs, rebuilt from objects like the ones it
//! shows, at a fixed "now" so that the AGE column is exact.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{table_at, wants_table};

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

fn ago(seconds: i64) -> String {
    (now() - SignedDuration::from_secs(seconds)).to_string()
}

fn cells(table: &Value) -> Vec<Vec<Value>> {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["cells"].as_array().unwrap().clone())
        .collect()
}

/// The columns kubectl shows without `-o wide` (priority 0), and the wide ones.
fn column_names(table: &Value, priority: u64) -> Vec<String> {
    table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == priority)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn running_pod(name: &str, age: i64, ip: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": ago(age),
                     "labels": {"app": "nginx"}, "resourceVersion": "7"},
        "spec": {"nodeName": "k8snode1", "containers": [{"name": "nginx", "image": "nginx"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0,
                                   "state": {"running": {"startedAt": ago(age)}}}],
        },
    })
}

#[test]
fn kubectl_get_pod_of_the_tutorial() {
    let pods = [
        running_pod("web-0", 81, "10.244.249.4"),
        running_pod("web-1", 79, "10.244.185.197"),
        running_pod("web-2", 76, "10.244.249.5"),
    ];
    let table = table_at("pods", &pods, "42", None, now());
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(table["metadata"]["resourceVersion"], "42");
    assert_eq!(
        column_names(&table, 0),
        ["Name", "Ready", "Status", "Restarts", "Age"]
    );
    assert_eq!(
        column_names(&table, 1),
        ["IP", "Node", "Nominated Node", "Readiness Gates"]
    );
    assert_eq!(
        cells(&table),
        [
            json!([
                "web-0",
                "1/1",
                "Running",
                "0",
                "81s",
                "10.244.249.4",
                "k8snode1",
                "<none>",
                "<none>"
            ]),
            json!([
                "web-1",
                "1/1",
                "Running",
                "0",
                "79s",
                "10.244.185.197",
                "k8snode1",
                "<none>",
                "<none>"
            ]),
            json!([
                "web-2",
                "1/1",
                "Running",
                "0",
                "76s",
                "10.244.249.5",
                "k8snode1",
                "<none>",
                "<none>"
            ]),
        ]
        .map(|row| row.as_array().unwrap().clone())
    );
    // The default includeObject=Metadata: kubectl reads namespace and labels from here.
    let object = &table["rows"][0]["object"];
    assert_eq!(object["kind"], "PartialObjectMetadata");
    assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(object["metadata"]["namespace"], "default");
    assert_eq!(object["metadata"]["labels"]["app"], "nginx");
    assert!(object.get("spec").is_none());
}

#[test]
fn include_object_object_and_none() {
    let pods = [running_pod("web-0", 1, "10.244.0.2")];
    let full = table_at("pods", &pods, "1", Some("Object"), now());
    assert_eq!(full["rows"][0]["object"], pods[0]);
    let none = table_at("pods", &pods, "1", Some("None"), now());
    assert!(none["rows"][0]["object"].is_null());
}

#[test]
fn pod_status_shows_the_telling_container_state() {
    let mut pending = running_pod("web-0", 5, "");
    pending["status"] = json!({"phase": "Pending", "containerStatuses": [
        {"name": "nginx", "ready": false, "restartCount": 0,
         "state": {"waiting": {"reason": "ContainerCreating"}}}]});
    let mut pull = pending.clone();
    pull["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] =
        json!("ImagePullBackOff");
    let mut crashing = running_pod("web-0", 600, "10.244.0.2");
    crashing["status"]["containerStatuses"][0] = json!({
        "name": "nginx", "ready": false, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(5)}}});
    let mut completed = running_pod("job", 60, "10.244.0.3");
    completed["status"]["phase"] = json!("Succeeded");
    completed["status"]["containerStatuses"][0] = json!({"name": "nginx", "ready": false,
        "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let mut deleting = running_pod("web-2", 30, "10.244.0.4");
    deleting["metadata"]["deletionTimestamp"] = json!(ago(1));

    let table = table_at(
        "pods",
        &[pending, pull, crashing, completed, deleting],
        "1",
        None,
        now(),
    );
    let rows = cells(&table);
    let status: Vec<_> = rows
        .iter()
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        status,
        [
            (json!("0/1"), json!("ContainerCreating"), json!("0")),
            (json!("0/1"), json!("ImagePullBackOff"), json!("0")),
            (json!("0/1"), json!("CrashLoopBackOff"), json!("5 (5s ago)")),
            (json!("0/1"), json!("Completed"), json!("0")),
            (json!("1/1"), json!("Terminating"), json!("0")),
        ]
    );
    assert_eq!(rows[0][5], "<none>", "no IP yet");
    assert_eq!(table["rows"][3]["conditions"][0]["reason"], "Succeeded");
}

#[test]
fn kubectl_get_svc_of_the_tutorial() {
    let services = [
        json!({"metadata": {"name": "kubernetes", "creationTimestamp": ago(2 * 86400 + 22 * 3600)},
               "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}),
        json!({"metadata": {"name": "mynginx", "creationTimestamp": ago(2 * 86400 + 18 * 3600)},
               "spec": {"type": "NodePort", "clusterIP": "10.103.164.206",
                        "ports": [{"port": 80, "nodePort": 30009, "protocol": "TCP"}],
                        "selector": {"app": "mynginx"}}}),
        json!({"metadata": {"name": "nginx", "creationTimestamp": ago(94)},
               "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                        "ports": [{"name": "web", "port": 80}], "selector": {"app": "nginx"}}}),
    ];
    let table = table_at("services", &services, "5", None, now());
    assert_eq!(
        column_names(&table, 0),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age"
        ]
    );
    assert_eq!(
        cells(&table),
        [
            json!([
                "kubernetes",
                "ClusterIP",
                "10.96.0.1",
                "<none>",
                "443/TCP",
                "2d22h",
                "<none>"
            ]),
            json!([
                "mynginx",
                "NodePort",
                "10.103.164.206",
                "<none>",
                "80:30009/TCP",
                "2d18h",
                "app=mynginx"
            ]),
            json!([
                "nginx",
                "ClusterIP",
                "None",
                "<none>",
                "80/TCP",
                "94s",
                "app=nginx"
            ]),
        ]
        .map(|row| row.as_array().unwrap().clone())
    );
}

#[test]
fn kubectl_get_ep_of_the_tutorial() {
    let endpoints = [
        json!({"metadata": {"name": "kubernetes", "creationTimestamp": ago(2 * 86400 + 22 * 3600)},
               "subsets": [{"addresses": [{"ip": "192.168.2.210"}],
                            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]}),
        json!({"metadata": {"name": "mynginx", "creationTimestamp": ago(2 * 86400 + 18 * 3600)}}),
        json!({"metadata": {"name": "nginx", "creationTimestamp": ago(8 * 60 + 37)},
               "subsets": [{"addresses": [{"ip": "10.244.185.197"}, {"ip": "10.244.249.4"},
                                          {"ip": "10.244.249.5"}],
                            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}]}),
        json!({"metadata": {"name": "big", "creationTimestamp": ago(3600)},
               "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"},
                                          {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}, {"ip": "10.0.0.5"}],
                            "ports": [{"port": 80}]}]}),
    ];
    let table = table_at("endpoints", &endpoints, "5", None, now());
    assert_eq!(column_names(&table, 0), ["Name", "Endpoints", "Age"]);
    assert_eq!(
        cells(&table),
        [
            json!(["kubernetes", "192.168.2.210:6443", "2d22h"]),
            json!(["mynginx", "<none>", "2d18h"]),
            json!([
                "nginx",
                "10.244.185.197:80,10.244.249.4:80,10.244.249.5:80",
                "8m37s"
            ]),
            json!([
                "big",
                "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...",
                "60m"
            ]),
        ]
        .map(|row| row.as_array().unwrap().clone())
    );
}

#[test]
fn statefulsets_namespaces_and_nodes() {
    let set = json!({"metadata": {"name": "web", "creationTimestamp": ago(100)},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        "status": {"readyReplicas": 2}});
    assert_eq!(
        cells(&table_at("statefulsets", &[set], "1", None, now()))[0],
        json!(["web", "2/3", "100s", "nginx", "nginx"])
            .as_array()
            .unwrap()
            .clone()
    );
    let namespace = json!({"metadata": {"name": "default", "creationTimestamp": ago(3 * 86400)},
        "status": {"phase": "Active"}});
    assert_eq!(
        cells(&table_at("namespaces", &[namespace], "1", None, now()))[0],
        json!(["default", "Active", "3d"])
            .as_array()
            .unwrap()
            .clone()
    );
    let node = json!({"metadata": {"name": "k8smaster", "creationTimestamp": ago(86400),
            "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                  {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.2.210"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "kernelVersion": "6.1.0", "containerRuntimeVersion": "runc://1.1.5"}}});
    assert_eq!(
        cells(&table_at("nodes", &[node], "1", None, now()))[0],
        json!([
            "k8smaster",
            "Ready",
            "control-plane",
            "24h",
            "v1.33.0",
            "192.168.2.210",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0",
            "runc://1.1.5"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
}

#[test]
fn events_replicasets_and_storage() {
    let event = json!({"metadata": {"name": "web-0.17c", "creationTimestamp": ago(10)},
        "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled", "message": "Container image \"nginx\" already present on machine\n",
        "type": "Normal", "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(10), "lastTimestamp": ago(10), "count": 1});
    assert_eq!(
        cells(&table_at("events", &[event], "1", None, now()))[0],
        json!([
            "10s",
            "Normal",
            "Pulled",
            "pod/web-0",
            "spec.containers{nginx}",
            "kubelet, node-1",
            "Container image \"nginx\" already present on machine",
            "10s",
            1,
            "web-0.17c"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    let replica_set = json!({"metadata": {"name": "app-7d9", "creationTimestamp": ago(5)},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x", "pod-template-hash": "7d9"},
                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
                 "template": {"spec": {"containers": [{"name": "a", "image": "nginx"},
                                                      {"name": "b", "image": "busybox:1.28"}]}}},
        "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        cells(&table_at("replicasets", &[replica_set], "1", None, now()))[0],
        json!([
            "app-7d9",
            2,
            2,
            1,
            "5s",
            "a,b",
            "nginx,busybox:1.28",
            "app=x,pod-template-hash=7d9,tier in (api,web)"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    let class = json!({"metadata": {"name": "standard", "creationTimestamp": ago(60),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        cells(&table_at("storageclasses", &[class], "1", None, now()))[0],
        json!([
            "standard (default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            false,
            "60s"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    let claim = json!({"metadata": {"name": "www-web-0", "creationTimestamp": ago(30)},
        "spec": {"volumeName": "pvc-1", "storageClassName": "standard", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
    assert_eq!(
        cells(&table_at(
            "persistentvolumeclaims",
            &[claim],
            "1",
            None,
            now()
        ))[0],
        json!([
            "www-web-0",
            "Bound",
            "pvc-1",
            "1Gi",
            "RWO",
            "standard",
            "<unset>",
            "30s",
            "Filesystem"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
}

#[test]
fn controller_revisions_name_their_controller_as_kubectl_does() {
    let owned = json!({"metadata": {"name": "web-6d8f9c7b5", "creationTimestamp": ago(30),
            "ownerReferences": [
                {"apiVersion": "example.com/v1", "kind": "Watcher", "name": "w", "uid": "1"},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "2",
                 "controller": true}]},
        "revision": 2, "data": {}});
    let orphan =
        json!({"metadata": {"name": "old-1", "creationTimestamp": ago(90)}, "revision": 1});
    let table = table_at("controllerrevisions", &[owned, orphan], "1", None, now());
    assert_eq!(
        column_names(&table, 0),
        ["Name", "Controller", "Revision", "Age"]
    );
    assert_eq!(
        cells(&table),
        [
            vec![
                json!("web-6d8f9c7b5"),
                json!("statefulset.apps/web"),
                json!(2),
                json!("30s")
            ],
            vec![json!("old-1"), json!("<none>"), json!(1), json!("90s")],
        ]
    );
}

#[test]
fn other_resources_get_the_default_columns() {
    let lease =
        json!({"metadata": {"name": "node-1", "creationTimestamp": "2024-05-01T11:00:00Z"}});
    let table = table_at("leases", &[lease], "1", None, now());
    assert_eq!(column_names(&table, 0), ["Name", "Created At"]);
    assert_eq!(table["columnDefinitions"][1]["type"], "date");
    assert_eq!(
        cells(&table)[0],
        [json!("node-1"), json!("2024-05-01T11:00:00Z")]
    );
}

#[test]
fn kubectl_get_accept_header_asks_for_a_table() {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::ACCEPT,
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            .parse()
            .unwrap(),
    );
    assert!(wants_table(&headers));
    headers.insert(http::header::ACCEPT, "application/json".parse().unwrap());
    assert!(!wants_table(&headers));
    headers.insert(
        http::header::ACCEPT,
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            .parse()
            .unwrap(),
    );
    assert!(!wants_table(&headers));
    assert!(!wants_table(&http::HeaderMap::new()));
}
