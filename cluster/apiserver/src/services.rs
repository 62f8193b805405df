//! Services: defaults, cluster IP allocation on create (from the service CIDR, "None" for
//! headless Services) and the immutability of the cluster IP on update.

use serde_json::{Value, json};

use crate::defaults::{object_mut, set_default};
use crate::errors::{ApiError, ApiResult};
use crate::ipalloc::IpAllocator;

/// Service defaults and cluster IP allocation on create. Returns the IPs allocated, so the
/// caller can release them if the create does not happen.
pub fn prepare_service(object: &mut Value, allocator: &IpAllocator) -> ApiResult<Vec<String>> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(spec) = object_mut(object, "spec") else {
        return Ok(Vec::new());
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    set_default(spec, "ipFamilies", json!(["IPv4"]));
    set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                set_default(port, "targetPort", p);
            }
        }
    }
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .map(String::from)
        .or_else(|| {
            spec.get("clusterIPs")
                .and_then(|ips| ips.get(0))
                .and_then(Value::as_str)
                .map(String::from)
        });
    let mut allocated = Vec::new();
    let ip = match requested.as_deref() {
        Some("None") => "None".to_string(),
        Some(ip) => {
            allocator.allocate_specific(ip).map_err(|message| {
                ApiError::invalid(
                    "Service",
                    &name,
                    &[(
                        "spec.clusterIPs".into(),
                        format!("Invalid value: []string{{{ip:?}}}: {message}"),
                    )],
                )
            })?;
            allocated.push(ip.to_string());
            ip.to_string()
        }
        None => {
            let ip = allocator
                .allocate_any()
                .map_err(|m| ApiError::internal(format!("failed to allocate a serviceIP: {m}")))?;
            allocated.push(ip.clone());
            ip
        }
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    if let Some(status) = object_mut(object, "status") {
        set_default(status, "loadBalancer", json!({}));
    }
    Ok(allocated)
}

/// Keeps a Service's cluster IP across updates: an update that leaves `clusterIP` and
/// `clusterIPs` out keeps them (`patchAllocatedValues`); one that changes them is refused as
/// `validateUpgradeDowngradeClusterIPs` refuses it, quoting the new list
/// (`spec.clusterIPs[0]: Invalid value: []string{"10.96.0.77"}: may not change once set`).
pub fn check_service_update(old: &Value, new: &mut Value) -> ApiResult<()> {
    let name = old
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let old_ips = ip_list(old.pointer("/spec/clusterIPs"));
    let wanted = wanted_ips(old, new, &old_ips);
    let both_headless = old_ips.first().map(String::as_str) == Some("None")
        && wanted.first().map(String::as_str) == Some("None");
    if !wanted.is_empty() && !both_headless {
        let shown = crate::validation::field::string_slice(Some(wanted.iter().map(String::as_str)));
        // A list of another length changes the primary IP at least.
        let compared = if wanted.len() == old_ips.len() {
            old_ips.len()
        } else {
            1
        };
        let causes: Vec<(String, String)> = (0..compared)
            .filter(|&i| old_ips.get(i) != wanted.get(i))
            .map(|i| {
                crate::validation::field::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    &shown,
                    "may not change once set",
                )
            })
            .collect();
        if !causes.is_empty() {
            return Err(ApiError::invalid("Service", &name, &causes));
        }
    }
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert(
            "clusterIP".into(),
            old.pointer("/spec/clusterIP")
                .cloned()
                .unwrap_or(Value::Null),
        );
        if let Some(ips) = old.pointer("/spec/clusterIPs") {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    }
    Ok(())
}

fn ip_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|ips| {
            ips.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The cluster IPs an update asks for, as `normalizeClusterIPs` makes them: a changed
/// `clusterIP` with unchanged (or no) `clusterIPs` replaces the first of the old list.
/// Empty when the update leaves both out.
fn wanted_ips(old: &Value, new: &Value, old_ips: &[String]) -> Vec<String> {
    let ip = new
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty());
    let ips = ip_list(new.pointer("/spec/clusterIPs"));
    let old_ip = old.pointer("/spec/clusterIP").and_then(Value::as_str);
    match ip {
        Some(ip) if Some(ip) != old_ip && (ips.is_empty() || ips == old_ips) => {
            let mut wanted = old_ips.to_vec();
            match wanted.first_mut() {
                Some(first) => *first = ip.to_string(),
                None => wanted.push(ip.to_string()),
            }
            wanted
        }
        _ => ips,
    }
}
