//! A message's JSON value (snake_case keys, from [`super::debug_value`]) read into the
//! k8s-openapi type of its kind, which knows the Kubernetes JSON names.
//!
//! prost names fields in snake_case, which loses the JSON names' capitals (`clusterIP`,
//! `podCIDRs`, `nonResourceURLs` all become `cluster_ip`, …). k8s-openapi's types name every
//! field they read when they ask for a struct, so this deserializer renames each key to the
//! field it spells once case and underscores are ignored. It also reads Go's wire habits as
//! Go's JSON would show them: Go writes every non-pointer field, so an optional field that
//! holds its zero value ("", 0, false, an empty list or map, the zero time) is unset
//! (`omitempty`). A pointer set to its zero value (`replicas: 0`) reads as unset too: the
//! protobuf form cannot tell the two apart. Bytes become base64 where a string is wanted.

use base64::Engine as _;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::{Map, Value};

/// Go's zero `time.Time`.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `value` read as `T`, with its keys renamed to `T`'s JSON names.
pub(super) fn into_typed<T: de::DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(Guide(value))
}

/// Go's zero values, which an optional field does not show in JSON.
fn is_go_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

/// Whether a snake_case key names the JSON field `json` (`cluster_ip` and `clusterIP`).
fn same_name(json: &str, snake: &str) -> bool {
    let letters = |s: &str| {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    letters(json) == letters(snake)
}

/// The bytes of a list of numbers each 0–255, as prost's `Debug` shows a bytes field.
fn bytes(items: &[Value]) -> Option<Vec<u8>> {
    items
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect()
}

struct Guide(Value);

impl<'de> Deserializer<'de> for Guide {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Entries::new(map, &[])),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if is_go_zero(&self.0) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Entries::new(map, fields)),
            other => Guide(other).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // A required time (TokenRequest's status.expirationTimestamp) that Go left zero:
        // its zero value, since k8s-openapi has no "unset" for it.
        if matches!(name, "Time" | "MicroTime") && self.0.is_null() {
            return visitor.visit_newtype_struct(Guide(Value::from(GO_ZERO_TIME)));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match &self.0 {
            Value::Array(items) => match bytes(items) {
                Some(b) => {
                    visitor.visit_string(base64::engine::general_purpose::STANDARD.encode(b))
                }
                None => self.deserialize_any(visitor),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Guide(item)))
            .transpose()
    }
}

/// A map's or a struct's entries; a struct's keys are renamed to its `fields`, and a
/// message field that is none of them is an embedded Go struct (`json:",inline"`, as
/// `IngressRule.ingressRuleValue` or `Volume.volumeSource`), whose fields are the struct's.
struct Entries {
    entries: Vec<(String, Value)>,
    fields: &'static [&'static str],
    value: Option<Value>,
}

impl Entries {
    fn new(map: Map<String, Value>, fields: &'static [&'static str]) -> Self {
        Entries {
            entries: map.into_iter().collect(),
            fields,
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        loop {
            let Some((key, value)) = self.entries.pop() else {
                return Ok(None);
            };
            let key = match self.fields.iter().find(|json| same_name(json, &key)) {
                Some(json) => json.to_string(),
                None if !self.fields.is_empty() && value.is_object() => {
                    if let Value::Object(inline) = value {
                        self.entries.extend(inline);
                    }
                    continue;
                }
                None => key,
            };
            self.value = Some(value);
            let key: de::value::StringDeserializer<serde_json::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self.value.take().unwrap_or(Value::Null);
        seed.deserialize(Guide(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Secret, ServiceSpec};
    use serde_json::json;

    #[test]
    fn keys_take_the_json_names_and_zero_optionals_are_unset() {
        let spec: ServiceSpec = into_typed(json!({
            "cluster_ip": "", "cluster_ips": ["10.0.0.1"], "external_ips": [],
            "type": "ClusterIP", "session_affinity": "", "publish_not_ready_addresses": false,
            "ports": [{"name": "", "port": 80, "target_port": 8080, "node_port": 0, "protocol": "TCP"}],
            "selector": {"app": ""},
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(spec).unwrap(),
            json!({"clusterIPs": ["10.0.0.1"], "type": "ClusterIP", "selector": {"app": ""},
                   "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]})
        );
    }

    #[test]
    fn a_required_zero_time_is_go_s_zero_time() {
        let status: k8s_openapi::api::authentication::v1::TokenRequestStatus =
            into_typed(json!({"token": "", "expiration_timestamp": null})).unwrap();
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!({"token": "", "expirationTimestamp": GO_ZERO_TIME})
        );
    }

    #[test]
    fn embedded_structs_are_inlined() {
        let volume: k8s_openapi::api::core::v1::Volume = into_typed(json!({
            "name": "data",
            "volume_source": {"empty_dir": {"medium": "Memory"}, "host_path": null},
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(volume).unwrap(),
            json!({"name": "data", "emptyDir": {"medium": "Memory"}})
        );
    }

    #[test]
    fn bytes_become_base64_where_a_string_is_wanted() {
        let secret: Secret = into_typed(json!({
            "metadata": {"name": "s"}, "data": {"k": [0, 1], "empty": []}, "type": "Opaque",
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(secret).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"k": "AAE=", "empty": ""}, "type": "Opaque"})
        );
    }
}
