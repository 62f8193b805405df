//! The restricted checks on small JSON pods, with the reasons and details that upstream's
//! `policy/check_*_test.go` (Kubernetes 1.33) expect for the same pods.

use serde_json::{Value, json};

use super::*;

fn run(check: fn(&Value, &Value) -> Option<Violation>, spec: Value) -> Option<(String, String)> {
    check(&json!({}), &spec).map(|v| (v.reason, v.detail))
}

fn expect(reason: &str, detail: &str) -> Option<(String, String)> {
    Some((reason.to_string(), detail.to_string()))
}

fn container(name: &str, security_context: Value) -> Value {
    json!({"name": name, "image": "nginx", "securityContext": security_context})
}

#[test]
fn privilege_escalation_must_be_off() {
    let spec = json!({"containers": [
        {"name": "a"},
        container("b", json!({"allowPrivilegeEscalation": null})),
        container("c", json!({"allowPrivilegeEscalation": true})),
        container("d", json!({"allowPrivilegeEscalation": false})),
    ]});
    assert_eq!(
        run(allow_privilege_escalation, spec),
        expect(
            "allowPrivilegeEscalation != false",
            "containers \"a\", \"b\", \"c\" must set securityContext.allowPrivilegeEscalation=false"
        )
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(allow_privilege_escalation, windows), None);
    let linux = json!({"os": {"name": "linux"}, "containers": [{"name": "a"}]});
    assert_eq!(
        run(allow_privilege_escalation, linux),
        expect(
            "allowPrivilegeEscalation != false",
            "container \"a\" must set securityContext.allowPrivilegeEscalation=false"
        )
    );
}

#[test]
fn capabilities_drop_all_and_add_only_net_bind_service() {
    let spec = json!({"containers": [
        container("a", json!({"capabilities": {"add": ["FOO", "BAR"]}})),
        container("b", json!({"capabilities": {"add": ["BAR", "BAZ"]}})),
        container("c", json!({"capabilities": {
            "add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}})),
    ]});
    assert_eq!(
        run(capabilities, spec),
        expect(
            "unrestricted capabilities",
            "containers \"a\", \"b\" must set securityContext.capabilities.drop=[\"ALL\"]; \
             containers \"a\", \"b\", \"c\" must not include \"BAR\", \"BAZ\", \"CHOWN\", \"FOO\" \
             in securityContext.capabilities.add"
        )
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(capabilities, windows), None);
    let ok = json!({"containers": [container("a", json!({"capabilities": {
        "drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}))]});
    assert_eq!(run(capabilities, ok), None);
}

#[test]
fn only_inline_volume_types_that_are_safe() {
    let mut volumes: Vec<Value> = [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
        "image",
    ]
    .iter()
    .enumerate()
    .map(|(i, key)| json!({"name": format!("a{}", i + 1), *key: {}}))
    .collect();
    let restricted = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ];
    volumes.extend(
        restricted
            .iter()
            .enumerate()
            .map(|(i, key)| json!({"name": format!("b{}", i + 1), *key: {}})),
    );
    volumes.push(json!({"name": "c1"}));
    assert_eq!(
        run(super::volumes, json!({ "volumes": volumes })),
        expect(
            "restricted volume types",
            "volumes \"b1\", \"b2\", \"b3\", \"b4\", \"b5\", \"b6\", \"b7\", \"b8\", \"b9\", \
             \"b10\", \"b11\", \"b12\", \"b13\", \"b14\", \"b15\", \"b16\", \"b17\", \"b18\", \
             \"b19\", \"b20\", \"b21\", \"c1\" use restricted volume types \
             \"awsElasticBlockStore\", \"azureDisk\", \"azureFile\", \"cephfs\", \"cinder\", \
             \"fc\", \"flexVolume\", \"flocker\", \"gcePersistentDisk\", \"gitRepo\", \
             \"glusterfs\", \"hostPath\", \"iscsi\", \"nfs\", \"photonPersistentDisk\", \
             \"portworxVolume\", \"quobyte\", \"rbd\", \"scaleIO\", \"storageos\", \"unknown\", \
             \"vsphereVolume\""
        )
    );
    let one = json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]});
    assert_eq!(
        run(super::volumes, one),
        expect(
            "restricted volume types",
            "volume \"h\" uses restricted volume type \"hostPath\""
        )
    );
}

#[test]
fn run_as_non_root() {
    let implicit = json!({"containers": [{"name": "a"}]});
    assert_eq!(
        run(super::run_as_non_root, implicit),
        expect(
            "runAsNonRoot != true",
            "pod or container \"a\" must set securityContext.runAsNonRoot=true"
        )
    );
    let pod_false = json!({"securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "a"}]});
    assert_eq!(
        run(super::run_as_non_root, pod_false),
        expect(
            "runAsNonRoot != true",
            "pod must not set securityContext.runAsNonRoot=false"
        )
    );
    let containers_false = json!({"securityContext": {"runAsNonRoot": true}, "containers": [
        {"name": "a"},
        container("b", json!({})),
        container("c", json!({"runAsNonRoot": false})),
        container("d", json!({"runAsNonRoot": false})),
    ]});
    assert_eq!(
        run(super::run_as_non_root, containers_false),
        expect(
            "runAsNonRoot != true",
            "containers \"c\", \"d\" must not set securityContext.runAsNonRoot=false"
        )
    );
    let fallthrough = json!({"containers": [
        {"name": "a"},
        container("b", json!({})),
        container("c", json!({"runAsNonRoot": true})),
    ]});
    assert_eq!(
        run(super::run_as_non_root, fallthrough),
        expect(
            "runAsNonRoot != true",
            "pod or containers \"a\", \"b\" must set securityContext.runAsNonRoot=true"
        )
    );
}

#[test]
fn run_as_user_zero() {
    let pod = json!({"securityContext": {"runAsUser": 0}, "containers": [{"name": "a"}]});
    assert_eq!(
        run(run_as_user, pod),
        expect("runAsUser=0", "pod must not set runAsUser=0")
    );
    let containers = json!({"securityContext": {"runAsUser": 1000}, "containers": [
        {"name": "a"},
        container("b", json!({})),
        container("c", json!({"runAsUser": 0})),
        container("d", json!({"runAsUser": 0})),
        container("e", json!({"runAsUser": 1})),
    ]});
    assert_eq!(
        run(run_as_user, containers),
        expect(
            "runAsUser=0",
            "containers \"c\", \"d\" must not set runAsUser=0"
        )
    );
    let fine = json!({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a"}]});
    assert_eq!(run(run_as_user, fine), None);
}

#[test]
fn seccomp_must_be_set_and_confined() {
    let none = json!({"containers": [{"name": "a"}]});
    assert_eq!(
        run(seccomp_profile, none),
        expect(
            "seccompProfile",
            "pod or container \"a\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
        )
    );
    let windows = json!({"os": {"name": "windows"}, "containers": [{"name": "a"}]});
    assert_eq!(run(seccomp_profile, windows), None);
    let pod_unconfined = json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "a"}]});
    assert_eq!(
        run(seccomp_profile, pod_unconfined),
        expect(
            "seccompProfile",
            "pod must not set securityContext.seccompProfile.type to \"Unconfined\""
        )
    );
    let runtime_default = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    let fallthrough = json!({"containers": [
        {"name": "a"},
        container("b", json!({})),
        container("d", runtime_default.clone()),
        container("e", runtime_default.clone()),
    ]});
    assert_eq!(
        run(seccomp_profile, fallthrough),
        expect(
            "seccompProfile",
            "pod or containers \"a\", \"b\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
        )
    );
    let inherited = json!({"securityContext": runtime_default, "containers": [{"name": "a"}]});
    assert_eq!(run(seccomp_profile, inherited), None);
}
