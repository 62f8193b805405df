//! The typed spec against the `config.json` the node wrote before it used oci-spec: the files
//! in `testdata/` are that hand-built JSON, written for these inputs by the code this module
//! replaced, so an equal spec is a migration that changed nothing runc sees.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;
use crate::security_context::{DEFAULT_CAPABILITIES, process_security};

/// The security a pod with `pod_spec` gives its first container, as the node computes it.
fn security(pod_spec: Value) -> ProcessSecurity {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
        "spec": pod_spec,
    }))
    .unwrap();
    let container = pod.spec.as_ref().unwrap().containers[0].clone();
    process_security(&pod, &container, &crate::image_user::ImageUser::root()).unwrap()
}

fn nginx() -> ContainerSpec {
    ContainerSpec {
        cgroups_path: None,
        user_namespace: None,
        args: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        env: vec!["PATH=/usr/bin".into(), "HOSTNAME=web-0".into()],
        working_dir: "/".into(),
        hostname: "web-0".into(),
        netns_path: PathBuf::from("/run/netns/k8s-labs-x-pod-1"),
        mounts: vec![
            BindMount {
                source: PathBuf::from("/run/k8s-labs/x/hosts"),
                destination: "/etc/hosts".into(),
                read_only: false,
            },
            BindMount {
                source: PathBuf::from("/var/lib/k8s-labs/cm"),
                destination: "/etc/config".into(),
                read_only: true,
            },
        ],
        tmp_size_bytes: 64 << 20,
        terminal: false,
        security: ProcessSecurity::default(),
    }
}

fn privileged() -> ContainerSpec {
    let mut spec = nginx();
    spec.terminal = true;
    spec.security = security(json!({"containers": [{"name": "c",
        "securityContext": {"privileged": true}}]}));
    assert!(spec.security.privileged);
    spec
}

fn runtime_default_read_only() -> ContainerSpec {
    let mut spec = nginx();
    spec.mounts.truncate(1);
    spec.working_dir = "/work".into();
    spec.security = security(json!({
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000,
            "supplementalGroups": [2000], "fsGroup": 4000,
            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "securityContext": {
            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["NET_RAW", "MKNOD"], "add": ["SYS_TIME"]}}}]}));
    assert_eq!(spec.security.seccomp, Seccomp::RuntimeDefault);
    spec
}

fn user_namespace() -> ContainerSpec {
    let mut spec = nginx();
    spec.cgroups_path = Some("/k8s-labs/pod-1/web".into());
    spec.user_namespace = Some((
        PathBuf::from("/run/k8s-labs/userns/pod-1"),
        IdMapping {
            container_id: 0,
            host_id: 1 << 20,
            size: 65536,
        },
    ));
    spec.security = security(json!({"containers": [{"name": "c",
        "securityContext": {"capabilities": {"drop": ["ALL"]}}}]}));
    spec
}

/// `spec` as runc reads it: its JSON.
fn written(spec: &ContainerSpec) -> Value {
    let config = runtime_spec(spec, Path::new("/b/rootfs")).unwrap();
    serde_json::to_value(&config).unwrap()
}

/// `config` with its capability sets sorted: oci-spec keeps them in a `HashSet`, whose order
/// varies from run to run, and order means nothing to runc (it builds a bit mask).
fn capability_sets_sorted(mut config: Value) -> Value {
    if let Some(sets) = config["process"]["capabilities"].as_object_mut() {
        for set in sets.values_mut() {
            if let Some(names) = set.as_array_mut() {
                names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    config
}

#[test]
fn writes_the_json_the_hand_built_config_was() {
    let cases = [
        ("default", nginx(), include_str!("testdata/default.json")),
        (
            "privileged",
            privileged(),
            include_str!("testdata/privileged.json"),
        ),
        (
            "RuntimeDefault seccomp, read-only root, capabilities dropped",
            runtime_default_read_only(),
            include_str!("testdata/runtime-default-read-only.json"),
        ),
        (
            "user namespace and cgroup",
            user_namespace(),
            include_str!("testdata/user-namespace.json"),
        ),
    ];
    for (name, spec, expected) in cases {
        let expected: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(
            capability_sets_sorted(written(&spec)),
            capability_sets_sorted(expected),
            "{name}"
        );
    }
}

#[test]
fn joins_the_pod_network_and_grants_the_runtime_default_capabilities() {
    let mut spec = nginx();
    spec.mounts.truncate(1);
    let config = runtime_spec(&spec, Path::new("/b/rootfs")).unwrap();
    assert_eq!(config.hostname().as_deref(), Some("web-0"));
    let linux = config.linux().as_ref().unwrap();
    let namespaces = linux.namespaces().as_ref().unwrap();
    assert_eq!(namespaces[4].typ(), LinuxNamespaceType::Network);
    assert_eq!(
        namespaces[4].path().as_deref(),
        Some(Path::new("/run/netns/k8s-labs-x-pod-1"))
    );
    let process = config.process().as_ref().unwrap();
    let capabilities = process.capabilities().as_ref().unwrap();
    let effective = capabilities.effective().as_ref().unwrap();
    assert!(effective.contains(&Capability::Chown));
    assert_eq!(effective.len(), DEFAULT_CAPABILITIES.len());
    assert_eq!(capabilities.ambient(), &None);
    let mounts = config.mounts().as_ref().unwrap();
    let last_mount = mounts.last().unwrap();
    assert_eq!(last_mount.destination(), Path::new("/etc/hosts"));
    assert_eq!(last_mount.typ().as_deref(), Some("bind"));
    let tmp = &mounts[7];
    assert_eq!(tmp.destination(), Path::new("/tmp"));
    assert_eq!(tmp.options().as_ref().unwrap()[3], "size=67108864");
    assert_eq!(process.user().uid(), 0);
    assert_eq!(process.rlimits(), &None);
    assert!(linux.seccomp().is_none());
    assert_eq!(linux.masked_paths().as_ref().unwrap()[0], "/proc/acpi");
}

#[test]
fn every_capability_of_a_privileged_container_is_known() {
    let spec = privileged();
    let config = runtime_spec(&spec, Path::new("/b/rootfs")).unwrap();
    let process = config.process().as_ref().unwrap();
    let bounding = process.capabilities().as_ref().unwrap().bounding();
    assert_eq!(
        bounding.as_ref().map(|set| set.len()),
        Some(spec.security.capabilities.len())
    );
}

#[test]
fn leaves_out_a_capability_it_does_not_know() {
    let mut spec = nginx();
    spec.security.capabilities = vec!["CAP_NET_ADMIN".into(), "CAP_NOT_A_CAPABILITY".into()];
    let config = written(&spec);
    assert_eq!(
        config["process"]["capabilities"],
        json!({
            "bounding": ["CAP_NET_ADMIN"],
            "effective": ["CAP_NET_ADMIN"],
            "permitted": ["CAP_NET_ADMIN"],
        })
    );
}
