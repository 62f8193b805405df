//! A minimal `/openapi/v2` in the protobuf form client-go reads (gnostic's OpenAPIv2
//! `Document`): the PATCH operation of each resource with its group-version-kind and the
//! `fieldValidation` query parameter. kubectl ≤ 1.29 looks there to learn that the server
//! validates fields itself (otherwise `kubectl apply` fails for want of the schema). Only
//! the few message fields used are encoded, by their field numbers in OpenAPIv2.proto.

use crate::registry::{self, GROUPS};

/// The media type of the answer (client-go asks for the gnostic protobuf type but reads the
/// body whatever the type; a type with "@" in it trips Go's mime parser).
pub const CONTENT_TYPE: &str = "application/octet-stream";

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A length-delimited field (strings and embedded messages: wire type 2).
fn field(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(((number << 3) | 2) as usize, out);
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

fn message(fields: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (number, bytes) in fields {
        field(*number, bytes, &mut out);
    }
    out
}

fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Operation{operation_id=5, consumes=7, parameters=8, vendor_extension=13}.
fn patch_operation(group: &str, version: &str, kind: &str) -> Vec<u8> {
    let query_parameter = |name: &str, kind: &str| {
        // QueryParameterSubSchema{in=2, name=4, type=6} in NonBodyParameter{query=3}
        // in Parameter{non_body=2} in ParametersItem{parameter=1}.
        let schema = message(&[(2, text("query")), (4, text(name)), (6, text(kind))]);
        message(&[(1, message(&[(2, message(&[(3, schema)]))]))])
    };
    // NamedAny{name=1, value=Any{yaml=2}}
    let gvk_yaml = format!("group: \"{group}\"\nkind: {kind}\nversion: {version}\n");
    let extension = message(&[
        (1, text("x-kubernetes-group-version-kind")),
        (2, message(&[(2, text(&gvk_yaml))])),
    ]);
    let mut fields = vec![(5, text(&format!("patch{kind}")))];
    for media in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ] {
        fields.push((7, text(media)));
    }
    for (name, kind) in [
        ("dryRun", "string"),
        ("fieldManager", "string"),
        ("fieldValidation", "string"),
        ("force", "boolean"),
    ] {
        fields.push((8, query_parameter(name, kind)));
    }
    fields.push((13, extension));
    message(&fields)
}

/// The encoded Document{swagger=1, info=2, paths=8}.
pub fn document(kubernetes_version: &str) -> Vec<u8> {
    let mut paths = Vec::new();
    let all = std::iter::once(("", "v1")).chain(GROUPS.iter().copied());
    for (group, version) in all {
        let patched = registry::in_group_version(group, version);
        for resource in patched.filter(|r| r.verbs().contains(&"patch")) {
            let item = crate::openapi::object_path(group, version, resource);
            // NamedPathItem{name=1, value=PathItem{patch=8}} in Paths{path=2}
            let path_item = message(&[(8, patch_operation(group, version, resource.kind))]);
            field(2, &message(&[(1, text(&item)), (2, path_item)]), &mut paths);
        }
    }
    let info = message(&[(1, text("Kubernetes")), (2, text(kubernetes_version))]);
    message(&[(1, text("2.0")), (2, info), (8, paths)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_encode_as_protobuf() {
        let mut out = Vec::new();
        varint(300, &mut out);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(message(&[(1, text("2.0"))]), [0x0a, 3, b'2', b'.', b'0']);
        let doc = document("v1.33.0");
        assert!(doc.windows(15).any(|w| w == b"fieldValidation"));
    }
}
