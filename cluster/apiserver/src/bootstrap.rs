//! The objects kube-apiserver creates itself at start: the four system namespaces and the
//! `kubernetes` Service on the first IP of the service range.

use serde_json::json;

use crate::context::{Shared, Target};
use crate::handlers::create_object;
use crate::registry;

fn target(plural: &str, namespace: Option<&str>) -> anyhow::Result<Target> {
    let resource = registry::find("", "v1", plural)
        .ok_or_else(|| anyhow::anyhow!("{plural} not registered"))?;
    Ok(Target {
        resource,
        namespace: namespace.map(String::from),
        name: None,
        subresource: None,
        watch_path: false,
    })
}

pub fn create_builtin_objects(state: &Shared) -> anyhow::Result<()> {
    let namespaces = target("namespaces", None)?;
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        create_object(
            state,
            &namespaces,
            json!({ "metadata": { "name": name } }),
            false,
        )
        .map_err(|e| anyhow::anyhow!("creating namespace {name}: {}", e.message))?;
    }
    let service = json!({
        "metadata": {
            "name": "kubernetes",
            "labels": { "component": "apiserver", "provider": "kubernetes" },
        },
        "spec": {
            "clusterIP": state.ips.first().to_string(),
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443 }],
            "sessionAffinity": "None",
        },
    });
    create_object(state, &target("services", Some("default"))?, service, false)
        .map_err(|e| anyhow::anyhow!("creating the kubernetes Service: {}", e.message))?;
    Ok(())
}
