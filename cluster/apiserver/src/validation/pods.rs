//! Pod specs, as kube-apiserver's `ValidatePodSpec` and `ValidatePodUpdate` check what
//! learners trip on: container names (DNS labels, unique across containers and init
//! containers), a volume mount's `subPath` staying inside its volume
//! (`validateLocalDescendingPath`: relative, without a `..` component), and the fields an
//! update may change (images, `activeDeadlineSeconds`, added tolerations,
//! `terminationGracePeriodSeconds` from negative to 1).

use serde_json::{Value, json};

use super::diff;
use super::field::{self, Cause, quote};
use super::names;

/// The problems of a pod spec at `path` (`spec`, or `spec.template.spec` for a workload's
/// template). `names` says whether container names are checked: kube-apiserver checks them
/// in pods and in the templates it validates as pod specs (ReplicaSets, Deployments, ...),
/// not in StatefulSet templates, whose pod spec it leaves to the pods.
pub fn spec_problems(spec: &Value, path: &str, names: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        for (index, container) in containers.into_iter().flatten().enumerate() {
            let at = format!("{path}.{list}[{index}]");
            let name = field::str_of(container, "name");
            if names && list != "ephemeralContainers" {
                causes.extend(name_problems(name, &at));
            }
            causes.extend(sub_path_problems(container, &at));
            if !names || list == "ephemeralContainers" {
                continue;
            }
            // Regular containers are all recorded; an init container with an empty name is
            // not (it already got its Required error), as upstream does.
            if seen.contains(&name) {
                causes.push(field::duplicate(format!("{at}.name"), &quote(name)));
            } else if list == "containers" || !name.is_empty() {
                seen.push(name);
            }
        }
    }
    causes
}

/// `validateContainerCommon`'s name rule: required, and a DNS-1123 label.
fn name_problems(name: &str, at: &str) -> Vec<Cause> {
    let path = format!("{at}.name");
    if name.is_empty() {
        return vec![field::required(path, "")];
    }
    names::dns1123_label(name)
        .into_iter()
        .map(|problem| field::invalid(path.clone(), &quote(name), &problem))
        .collect()
}

/// Every volume mount whose subPath leaves its volume.
fn sub_path_problems(container: &Value, at: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mounts = container.get("volumeMounts").and_then(Value::as_array);
    for (mount_index, mount) in mounts.into_iter().flatten().enumerate() {
        for key in ["subPath", "subPathExpr"] {
            let Some(sub_path) = mount.get(key).and_then(Value::as_str) else {
                continue;
            };
            let path = format!("{at}.volumeMounts[{mount_index}].{key}");
            for problem in descending_path_problems(sub_path) {
                causes.push(field::invalid(path.clone(), &quote(sub_path), problem));
            }
        }
    }
    causes
}

/// kube-apiserver's `validateLocalDescendingPath`: what is wrong with a path that must stay
/// below the directory it is relative to.
fn descending_path_problems(path: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if path.starts_with('/') {
        problems.push("must be a relative path");
    }
    // One error even for `../../..`, as upstream's `validatePathNoBacksteps`.
    if path.split('/').any(|part| part == "..") {
        problems.push("must not contain '..'");
    }
    problems
}

/// The message of `ValidatePodUpdate` for a change to a field a pod may not change.
const IMMUTABLE_SPEC: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`'s rules for the spec of a pod, old and new after defaulting.
pub fn update_problems(old: &Value, new: &Value) -> Vec<Cause> {
    let null = Value::Null;
    let old = old.get("spec").unwrap_or(&null);
    let new = new.get("spec").unwrap_or(&null);
    let mut causes = Vec::new();
    for list in ["containers", "initContainers"] {
        let (found, stop) = container_updates(list, old, new);
        causes.extend(found);
        if stop {
            return causes;
        }
    }
    match deadline_problem(old, new) {
        Some((cause, true)) => {
            causes.push(cause);
            return causes;
        }
        Some((cause, false)) => causes.push(cause),
        None => {}
    }
    causes.extend(toleration_problems(old, new));
    if diff::semantically_equal(old, new) {
        return causes;
    }
    let munged = munged(old, new);
    if !diff::semantically_equal(old, &munged) {
        let report = diff::spec_diff("core.PodSpec", old, &munged);
        causes.push(field::forbidden(
            "spec",
            &format!("{IMMUTABLE_SPEC}\n{report}"),
        ));
    }
    causes
}

/// `ValidateContainerUpdates`: no container added or removed (which ends the checks), and
/// every image set, without surrounding whitespace.
fn container_updates(list: &str, old: &Value, new: &Value) -> (Vec<Cause>, bool) {
    let count = |spec: &Value| spec.get(list).and_then(Value::as_array).map_or(0, Vec::len);
    if count(old) != count(new) {
        let cause = field::forbidden(
            format!("spec.{list}"),
            "pod updates may not add or remove containers",
        );
        return (vec![cause], true);
    }
    let mut causes = Vec::new();
    let containers = new.get(list).and_then(Value::as_array);
    for (index, container) in containers.into_iter().flatten().enumerate() {
        let path = format!("spec.{list}[{index}].image");
        let image = field::str_of(container, "image");
        if image.is_empty() {
            causes.push(field::required(path.clone(), ""));
        }
        if image.trim() != image {
            causes.push(field::invalid(
                path,
                &quote(image),
                "must not have leading or trailing whitespace",
            ));
        }
    }
    (causes, false)
}

/// `activeDeadlineSeconds` may be set, or lowered; the bool says whether the checks end.
fn deadline_problem(old: &Value, new: &Value) -> Option<(Cause, bool)> {
    const PATH: &str = "spec.activeDeadlineSeconds";
    let old = old.get("activeDeadlineSeconds").and_then(Value::as_i64);
    match (
        old,
        new.get("activeDeadlineSeconds").and_then(Value::as_i64),
    ) {
        (_, Some(new)) if !(0..=i64::from(i32::MAX)).contains(&new) => Some((
            field::invalid(
                PATH,
                &new.to_string(),
                "must be between 0 and 2147483647, inclusive",
            ),
            true,
        )),
        (Some(old), Some(new)) if old < new => Some((
            field::invalid(
                PATH,
                &new.to_string(),
                "must be less than or equal to previous value",
            ),
            true,
        )),
        // Go prints the nil pointer as the string "null", quoted.
        (Some(_), None) => Some((
            field::invalid(
                PATH,
                &quote("null"),
                "must not update from a positive integer to nil value",
            ),
            false,
        )),
        _ => None,
    }
}

/// `validateOnlyAddedTolerations`: every old toleration is still there (its
/// `tolerationSeconds` may change).
fn toleration_problems(old: &Value, new: &Value) -> Vec<Cause> {
    let list = |spec: &Value| -> Vec<Value> {
        spec.get("tolerations")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(without_seconds).collect())
            .unwrap_or_default()
    };
    let (old, new) = (list(old), list(new));
    if old.iter().all(|toleration| new.contains(toleration)) {
        return Vec::new();
    }
    vec![field::forbidden(
        "spec.tolerations",
        "existing toleration can not be modified except its tolerationSeconds",
    )]
}

fn without_seconds(toleration: &Value) -> Value {
    let mut copy = toleration.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("tolerationSeconds");
        map.retain(|_, v| !v.is_null());
    }
    copy
}

/// The new spec with what an update may change put back to the old values, so that what
/// remains different is what may not change.
fn munged(old: &Value, new: &Value) -> Value {
    let mut munged = new.clone();
    let Some(map) = munged.as_object_mut() else {
        return munged;
    };
    for list in ["containers", "initContainers"] {
        let old_images: Vec<Value> = old
            .get(list)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|c| c.get("image").cloned().unwrap_or(json!(null)))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(items) = map.get_mut(list).and_then(Value::as_array_mut) {
            for (container, image) in items.iter_mut().zip(old_images) {
                container["image"] = image;
            }
        }
    }
    for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        match old.get(key) {
            Some(value) => map.insert(key.to_string(), value.clone()),
            None => map.remove(key),
        };
    }
    let grace = |spec: &Value| {
        spec.get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
    };
    if grace(old).is_some_and(|g| g < 0)
        && map
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(1)
    {
        map.insert(
            "terminationGracePeriodSeconds".into(),
            old["terminationGracePeriodSeconds"].clone(),
        );
    }
    munged
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
