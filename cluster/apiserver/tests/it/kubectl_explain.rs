//! `kubectl explain` as students use it, against the API server's OpenAPI v3 documents:
//! the kinds, fields, types and descriptions it prints are those of the API types.

use crate::support::kubectl::Kubectl;
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_openapi::api::{apps::v1::StatefulSetSpec, core::v1 as core};
use k8s_openapi::schemars::{JsonSchema, schema_for};

/// The newest and oldest supported kubectl (minor versions of 1.x).
const KUBECTLS: &[u32] = &[33, 27];

/// The fields of StatefulSetSpec and their types as `kubectl explain` prints them on a
/// real v1.33 cluster.
const STATEFULSET_SPEC: &[(&str, &str)] = &[
    ("minReadySeconds", "<integer>"),
    ("ordinals", "<StatefulSetOrdinals>"),
    (
        "persistentVolumeClaimRetentionPolicy",
        "<StatefulSetPersistentVolumeClaimRetentionPolicy>",
    ),
    ("podManagementPolicy", "<string>"),
    ("replicas", "<integer>"),
    ("revisionHistoryLimit", "<integer>"),
    ("selector", "<LabelSelector> -required-"),
    ("serviceName", "<string>"),
    ("template", "<PodTemplateSpec> -required-"),
    ("updateStrategy", "<StatefulSetUpdateStrategy>"),
    ("volumeClaimTemplates", "<[]PersistentVolumeClaim>"),
];

/// The property names of `T`'s schema, in the order explain lists them (sorted).
fn fields_of<T: JsonSchema>() -> Vec<String> {
    let schema = schema_for!(T);
    let properties = schema.get("properties").and_then(|p| p.as_object());
    let mut names: Vec<String> = properties.unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// One field line of explain's output: its depth (1 for a kind's own fields), name and
/// the rest of the line (type and `-required-`).
#[derive(Debug, PartialEq)]
struct Field {
    depth: usize,
    name: String,
    kind: String,
}

/// The field lines (`<indent>name\t<type>`) of explain's FIELDS section.
fn fields(output: &str) -> Vec<Field> {
    let section = output
        .split("FIELDS:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{output}"));
    section
        .lines()
        .filter_map(|line| {
            let (name, kind) = line.split_once('\t')?;
            let trimmed = name.trim_start();
            let depth = (name.len() - trimmed.len()) / 2;
            let (name, kind) = (trimmed.to_string(), kind.to_string());
            Some(Field { depth, name, kind })
        })
        .collect()
}

/// The direct children of the field `path` (names from the top) in a recursive listing.
fn children<'a>(all: &'a [Field], path: &[&str]) -> Vec<&'a Field> {
    let mut start = 0;
    let mut depth = 1;
    for name in path {
        let at = all[start..]
            .iter()
            .position(|f| f.depth == depth && f.name == *name)
            .unwrap_or_else(|| panic!("no {name} in {path:?}"));
        start += at + 1;
        depth += 1;
    }
    all[start..]
        .iter()
        .take_while(|f| f.depth >= depth)
        .filter(|f| f.depth == depth)
        .collect()
}

/// "name <type>" of each field a non-recursive explain lists.
fn field_lines(output: &str) -> Vec<String> {
    fields(output)
        .iter()
        .map(|f| format!("{} {}", f.name, f.kind))
        .collect()
}

/// The fields explain lists for a kind with a spec and a status (metadata is optional).
fn object_fields(kind: &str) -> Vec<String> {
    let types = [
        "string",
        "string",
        "ObjectMeta",
        &format!("{kind}Spec"),
        &format!("{kind}Status"),
    ];
    let names = ["apiVersion", "kind", "metadata", "spec", "status"];
    names
        .iter()
        .zip(types)
        .map(|(name, kind)| format!("{name} <{kind}>"))
        .collect()
}

fn names(fields: &[&Field]) -> Vec<String> {
    fields.iter().map(|f| f.name.clone()).collect()
}

/// The text of explain's DESCRIPTION section with its line wrapping undone.
fn description(output: &str) -> String {
    let section = output
        .split("DESCRIPTION:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{output}"));
    let text = section.split("FIELDS:").next().unwrap();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn shows_a_field_with_its_type_and_description(kubectl: &Kubectl) {
    let (out, _) = kubectl
        .ok(&["explain", "statefulset.spec.serviceName"])
        .await;
    assert!(
        out.starts_with("GROUP:      apps\nKIND:       StatefulSet\nVERSION:    v1\n\n"),
        "{out}"
    );
    assert!(out.contains("FIELD: serviceName <string>\n"), "{out}");
    assert!(
        description(&out).starts_with(
            "serviceName is the name of the service that governs this StatefulSet. This \
             service must exist before the StatefulSet"
        ),
        "{out}"
    );
    assert!(!out.contains("FIELDS:"), "{out}");

    // A field of another type: its description, then the type's, then the type's fields.
    let (out, _) = kubectl.ok(&["explain", "statefulset.spec"]).await;
    assert!(out.contains("FIELD: spec <StatefulSetSpec>\n"), "{out}");
    assert_eq!(
        description(&out),
        "Spec defines the desired identities of pods in this set. \
         A StatefulSetSpec is the specification of a StatefulSet."
    );
    let listed: Vec<(String, String)> =
        fields(&out).into_iter().map(|f| (f.name, f.kind)).collect();
    let expected: Vec<(String, String)> = STATEFULSET_SPEC
        .iter()
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect();
    assert_eq!(listed, expected);
    let names: Vec<&str> = STATEFULSET_SPEC.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, fields_of::<StatefulSetSpec>());

    let missing = kubectl.run(&["explain", "statefulset.spec.nope"]).await;
    assert!(!missing.success);
    assert!(
        missing.stderr.contains("field \"nope\" does not exist"),
        "{}",
        missing.stderr
    );
}

async fn follows_a_list_into_its_items(kubectl: &Kubectl) {
    let path = "statefulset.spec.volumeClaimTemplates";
    let (out, _) = kubectl.ok(&["explain", path]).await;
    assert!(
        out.contains("FIELD: volumeClaimTemplates <[]PersistentVolumeClaim>\n"),
        "{out}"
    );
    let text = description(&out);
    assert!(
        text.starts_with("volumeClaimTemplates is a list of claims that pods are allowed")
            && text.ends_with(
                "PersistentVolumeClaim is a user's request for and claim to a persistent \
                 volume"
            ),
        "{out}"
    );
    assert_eq!(field_lines(&out), object_fields("PersistentVolumeClaim"));
}

async fn pods_lists_its_fields_and_recursive_every_field_of_the_pod_types(kubectl: &Kubectl) {
    let (out, _) = kubectl.ok(&["explain", "pods"]).await;
    // The core group has no GROUP line.
    assert!(
        out.starts_with("KIND:       Pod\nVERSION:    v1\n\n"),
        "{out}"
    );
    assert!(
        description(&out).starts_with(
            "Pod is a collection of containers that can run on a host. This resource is \
             created by clients and scheduled onto hosts."
        ),
        "{out}"
    );
    assert_eq!(field_lines(&out), object_fields("Pod"));

    let (out, _) = kubectl.ok(&["explain", "pods", "--recursive"]).await;
    let all = fields(&out);
    assert_eq!(names(&children(&all, &[])), fields_of::<core::Pod>());
    assert_eq!(
        names(&children(&all, &["spec"])),
        fields_of::<core::PodSpec>()
    );
    let containers = ["spec", "containers"];
    assert_eq!(
        names(&children(&all, &containers)),
        fields_of::<core::Container>()
    );
    let status = ["status"];
    assert_eq!(
        names(&children(&all, &status)),
        fields_of::<core::PodStatus>()
    );
    let spec = children(&all, &["spec"]);
    let kind_of = |name: &str| &spec.iter().find(|f| f.name == name).unwrap().kind;
    assert_eq!(kind_of("containers"), "<[]Container> -required-");
    assert_eq!(kind_of("nodeSelector"), "<map[string]string>");
    assert_eq!(kind_of("restartPolicy"), "<string>");
    assert_eq!(kind_of("terminationGracePeriodSeconds"), "<integer>");
    assert_eq!(kind_of("hostNetwork"), "<boolean>");
    let resources = children(&all, &["spec", "containers", "resources"]);
    let limits = resources.iter().find(|f| f.name == "limits").unwrap();
    assert_eq!(limits.kind, "<map[string]Quantity>");
}

#[tokio::test]
async fn explain_as_students_use_it() {
    let api = TestApiServer::start().await.unwrap();
    for minor in KUBECTLS {
        let kubectl = Kubectl::new(&api, "apiserver-explain", *minor);
        shows_a_field_with_its_type_and_description(&kubectl).await;
        follows_a_list_into_its_items(&kubectl).await;
        pods_lists_its_fields_and_recursive_every_field_of_the_pod_types(&kubectl).await;
        kubectl.remove();
    }
    api.shutdown().await;
}
