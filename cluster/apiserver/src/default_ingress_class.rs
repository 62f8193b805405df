//! The DefaultIngressClass admission plugin of kube-apiserver
//! (plugin/pkg/admission/network/defaultingressclass): a new Ingress that names no class,
//! neither in `spec.ingressClassName` nor in the legacy `kubernetes.io/ingress.class`
//! annotation, gets the default IngressClass, the one annotated
//! `ingressclass.kubernetes.io/is-default-class: "true"` (the newest if several are).

use serde_json::{Value, json};

use crate::context::str_at;
use crate::store::Store;

const IS_DEFAULT: &str = "ingressclass.kubernetes.io/is-default-class";
const LEGACY_CLASS: &str = "kubernetes.io/ingress.class";

/// Sets the default class on `ingress` (a new one) where it names none.
pub fn admit(store: &Store, ingress: &mut Value) {
    let annotated = ingress
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|annotations| annotations.contains_key(LEGACY_CLASS));
    let named = ingress
        .pointer("/spec/ingressClassName")
        .is_some_and(|class| !class.is_null());
    if annotated || named {
        return;
    }
    let (classes, _) = store.list("networking.k8s.io/ingressclasses", None);
    if let Some(class) = default_class(&classes)
        && let Some(spec) = crate::defaults::object_mut(ingress, "spec")
    {
        spec.insert("ingressClassName".into(), json!(class));
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    str_at(object, pointer).unwrap_or_default()
}

fn is_default(class: &Value) -> bool {
    class["metadata"]["annotations"][IS_DEFAULT].as_str() == Some("true")
}

/// `getDefaultClass`: of the classes marked default, the newest (then the first by name).
fn default_class(classes: &[Value]) -> Option<&str> {
    let created = |class: &Value| text(class, "/metadata/creationTimestamp").to_string();
    classes
        .iter()
        .filter(|class| is_default(class))
        .max_by(|a, b| {
            created(a)
                .cmp(&created(b))
                .then_with(|| text(b, "/metadata/name").cmp(text(a, "/metadata/name")))
        })
        .map(|class| text(class, "/metadata/name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, created: &str, default: bool) -> Value {
        let annotations = if default {
            json!({ IS_DEFAULT: "true" })
        } else {
            json!({})
        };
        json!({ "metadata": { "name": name, "creationTimestamp": created, "annotations": annotations } })
    }

    #[test]
    fn the_newest_default_class_wins_then_the_first_name() {
        let classes = [
            class("old", "2024-01-01T00:00:00Z", true),
            class("plain", "2024-06-01T00:00:00Z", false),
            class("b", "2024-03-01T00:00:00Z", true),
            class("a", "2024-03-01T00:00:00Z", true),
        ];
        assert_eq!(default_class(&classes), Some("a"));
        assert_eq!(default_class(&classes[..2]), Some("old"));
        assert_eq!(default_class(&classes[1..2]), None);
    }
}
