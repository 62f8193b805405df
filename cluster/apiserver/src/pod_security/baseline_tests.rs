//! The baseline checks on small JSON pods, with the reasons and details that upstream's
//! `policy/check_*_test.go` (Kubernetes 1.33) expect for the same pods.

use serde_json::{Value, json};

use super::*;

/// Runs `check` on a pod with `spec` (and no annotations); the `(reason, detail)` found.
fn run(check: fn(&Value, &Value) -> Option<Violation>, spec: Value) -> Option<(String, String)> {
    run_with(check, json!({}), spec)
}

fn run_with(
    check: fn(&Value, &Value) -> Option<Violation>,
    metadata: Value,
    spec: Value,
) -> Option<(String, String)> {
    check(&metadata, &spec).map(|v| (v.reason, v.detail))
}

fn expect(reason: &str, detail: &str) -> Option<(String, String)> {
    Some((reason.to_string(), detail.to_string()))
}

/// A container `name` with `security_context`.
fn container(name: &str, security_context: Value) -> Value {
    json!({"name": name, "image": "nginx", "securityContext": security_context})
}

#[test]
fn app_armor_profiles() {
    let spec = json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}});
    assert_eq!(
        run(app_armor_profile, spec),
        expect(
            "forbidden AppArmor profile",
            "pod must not set AppArmor profile type to \"Unconfined\""
        )
    );
    let spec = json!({
        "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "foo"}],
        "initContainers": [container("bar", json!({"appArmorProfile": {"type": "Unconfined"}}))],
    });
    assert_eq!(
        run(app_armor_profile, spec),
        expect(
            "forbidden AppArmor profile",
            "container \"bar\" must not set AppArmor profile type to \"Unconfined\""
        )
    );
    let annotations = json!({"annotations": {
        "container.apparmor.security.beta.kubernetes.io/": "bogus",
        "container.apparmor.security.beta.kubernetes.io/a": "",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
        "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/f": "unknown",
        "env": "prod",
    }});
    assert_eq!(
        run_with(app_armor_profile, annotations, json!({})),
        expect(
            "forbidden AppArmor profiles",
            "annotations must not set AppArmor profile type to \
             \"container.apparmor.security.beta.kubernetes.io/=\"bogus\"\", \
             \"container.apparmor.security.beta.kubernetes.io/e=\"unconfined\"\", \
             \"container.apparmor.security.beta.kubernetes.io/f=\"unknown\"\""
        )
    );
    let allowed = json!({"securityContext": {"appArmorProfile": {"type": "Localhost"}},
        "containers": [container("c", json!({"appArmorProfile": {"type": "RuntimeDefault"}}))]});
    assert_eq!(run(app_armor_profile, allowed), None);
}

#[test]
fn capabilities_beyond_the_default_set() {
    let spec = json!({"containers": [
        container("a", json!({"capabilities": {"add": ["FOO", "BAR"]}})),
        container("b", json!({"capabilities": {"add": ["BAR", "BAZ"]}})),
        container("c", json!({"capabilities": {"add": ["CHOWN", "NET_BIND_SERVICE"]}})),
    ]});
    assert_eq!(
        run(capabilities, spec),
        expect(
            "non-default capabilities",
            "containers \"a\", \"b\" must not include \"BAR\", \"BAZ\", \"FOO\" in securityContext.capabilities.add"
        )
    );
}

#[test]
fn host_namespaces_are_listed_in_field_order() {
    let spec = json!({"hostIPC": true, "hostPID": true, "hostNetwork": true});
    assert_eq!(
        run(host_namespaces, spec),
        expect(
            "host namespaces",
            "hostNetwork=true, hostPID=true, hostIPC=true"
        )
    );
    assert_eq!(run(host_namespaces, json!({"hostNetwork": false})), None);
}

#[test]
fn host_path_volumes_by_name() {
    let spec = json!({"volumes": [
        {"name": "a", "hostPath": {"path": "/"}},
        {"name": "b", "hostPath": {}},
        {"name": "c", "emptyDir": {}},
    ]});
    assert_eq!(
        run(host_path_volumes, spec),
        expect("hostPath volumes", "volumes \"a\", \"b\"")
    );
    let one = json!({"volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]});
    assert_eq!(
        run(host_path_volumes, one),
        expect("hostPath volumes", "volume \"h\"")
    );
}

#[test]
fn host_ports_sorted_as_strings() {
    let spec = json!({"containers": [
        {"name": "a", "ports": [{"hostPort": 0}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 20}]},
    ]});
    assert_eq!(
        run(host_ports, spec),
        expect("hostPort", "container \"b\" uses hostPort 20")
    );
    let spec = json!({"containers": [
        {"name": "a", "ports": [{"containerPort": 80}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
        {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]},
    ]});
    assert_eq!(
        run(host_ports, spec),
        expect(
            "hostPort",
            "containers \"b\", \"c\" use hostPorts 10, 20, 30"
        )
    );
}

#[test]
fn privileged_containers_of_every_kind() {
    let spec = json!({
        "initContainers": [container("i", json!({"privileged": true}))],
        "containers": [
            {"name": "a"},
            container("b", json!({})),
            container("c", json!({"privileged": false})),
            container("d", json!({"privileged": true})),
        ],
        "ephemeralContainers": [container("e", json!({"privileged": true}))],
    });
    assert_eq!(
        run(privileged, spec),
        expect(
            "privileged",
            "containers \"i\", \"d\", \"e\" must not set securityContext.privileged=true"
        )
    );
}

#[test]
fn proc_mount_other_than_default() {
    let spec = json!({"hostUsers": false, "containers": [
        {"name": "a"},
        container("b", json!({})),
        container("c", json!({"procMount": "Default"})),
        container("d", json!({"procMount": "Unmasked"})),
        container("e", json!({"procMount": "other"})),
    ]});
    assert_eq!(
        run(proc_mount, spec),
        expect(
            "procMount",
            "containers \"d\", \"e\" must not set securityContext.procMount to \"Unmasked\", \"other\""
        )
    );
}

#[test]
fn se_linux_types_users_and_roles() {
    let allowed_types = [
        "container_t",
        "container_init_t",
        "container_kvm_t",
        "container_engine_t",
    ];
    let mut containers: Vec<Value> = allowed_types
        .iter()
        .zip(["a", "b", "c", "d"])
        .map(|(t, name)| container(name, json!({"seLinuxOptions": {"type": t}})))
        .collect();
    containers.push(container("e", json!({"seLinuxOptions": {"type": "bar"}})));
    containers.push(container("f", json!({"seLinuxOptions": {"user": "bar"}})));
    containers.push(container("g", json!({"seLinuxOptions": {"role": "baz"}})));
    let spec = json!({
        "securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
        "containers": containers,
    });
    assert_eq!(
        run(se_linux_options, spec),
        expect(
            "seLinuxOptions",
            "pod and containers \"e\", \"f\", \"g\" set forbidden securityContext.seLinuxOptions: \
             types \"bar\", \"foo\"; user may not be set; role may not be set"
        )
    );
    let spec = json!({"securityContext": {"seLinuxOptions": {"type": "bad"}}});
    assert_eq!(
        run(se_linux_options, spec),
        expect(
            "seLinuxOptions",
            "pod set forbidden securityContext.seLinuxOptions: type \"bad\""
        )
    );
    let spec = json!({"securityContext": {"seLinuxOptions": {"role": "bad"}}});
    assert_eq!(
        run(se_linux_options, spec),
        expect(
            "seLinuxOptions",
            "pod set forbidden securityContext.seLinuxOptions: role may not be set"
        )
    );
    let spec = json!({"securityContext": {"seLinuxOptions": {}}});
    assert_eq!(run(se_linux_options, spec), None);
}

#[test]
fn seccomp_unconfined_is_forbidden_where_set() {
    let unconfined = json!({"seccompProfile": {"type": "Unconfined"}});
    let runtime_default = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    let containers = json!([
        {"name": "a"},
        container("b", json!({})),
        container("c", unconfined.clone()),
        container("d", unconfined.clone()),
        container("e", runtime_default.clone()),
    ]);
    let spec = json!({"securityContext": runtime_default, "containers": containers});
    assert_eq!(
        run(seccomp_profile, spec),
        expect(
            "seccompProfile",
            "containers \"c\", \"d\" must not set securityContext.seccompProfile.type to \"Unconfined\""
        )
    );
    let spec = json!({"securityContext": unconfined, "containers": containers});
    assert_eq!(
        run(seccomp_profile, spec),
        expect(
            "seccompProfile",
            "pod and containers \"c\", \"d\" must not set securityContext.seccompProfile.type to \"Unconfined\""
        )
    );
    assert_eq!(
        run(seccomp_profile, json!({"containers": [{"name": "a"}]})),
        None,
        "baseline does not require a profile"
    );
}

#[test]
fn sysctls_outside_the_safe_set_in_pod_order() {
    let spec = json!({"securityContext": {"sysctls": [
        {"name": "b"}, {"name": "net.ipv4.tcp_rmem", "value": "4096"}, {"name": "a"},
    ]}});
    assert_eq!(run(sysctls, spec), expect("forbidden sysctls", "b, a"));
    let spec = json!({"securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_port_range"}]}});
    assert_eq!(run(sysctls, spec), None);
}

#[test]
fn windows_host_process_is_forbidden() {
    let host_process = json!({"windowsOptions": {"hostProcess": true}});
    let spec = json!({
        "securityContext": host_process,
        "containers": [
            {"name": "a"},
            container("b", json!({"windowsOptions": {"hostProcess": false}})),
            container("e", host_process.clone()),
            container("f", host_process.clone()),
        ],
    });
    assert_eq!(
        run(windows_host_process, spec),
        expect(
            "hostProcess",
            "pod and containers \"e\", \"f\" must not set securityContext.windowsOptions.hostProcess=true"
        )
    );
}
