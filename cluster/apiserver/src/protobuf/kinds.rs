//! The kinds whose protobuf form is read: each pairs k8s-pb's generated message (which
//! decodes the bytes) with k8s-openapi's type (which knows the JSON names and forms).
//! Listed are the kinds this server serves, the ones kubectl's typed clients create, and
//! those of the groups being added (batch, networking, policy, rbac, authorization); a kind
//! the server does not serve is refused by the route, not here.

use serde_json::Value;

use super::{debug_value, rekey};
use crate::errors::{ApiError, ApiResult};

/// Decodes a kind's message (the envelope's `raw`) into its JSON form.
pub(super) type Decode = fn(&[u8]) -> ApiResult<Value>;

/// One row per kind: the same path names the kind in k8s-pb and in k8s-openapi.
macro_rules! kinds {
    ($($group:ident :: $version:ident :: { $($kind:ident),* $(,)? }),* $(,)?) => {
        &[$($((
            <k8s_openapi::api::$group::$version::$kind as k8s_openapi::Resource>::API_VERSION,
            <k8s_openapi::api::$group::$version::$kind as k8s_openapi::Resource>::KIND,
            decode_as::<k8s_pb::api::$group::$version::$kind, k8s_openapi::api::$group::$version::$kind>
                as Decode,
        ),)*)*]
    };
}

/// `apiVersion`, `kind` and the decoder of every kind read as protobuf.
pub(super) static KINDS: &[(&str, &str, Decode)] = kinds! {
    core::v1::{
        Binding, ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume,
        PersistentVolumeClaim, Pod, PodTemplate, ReplicationController, ResourceQuota, Secret,
        Service, ServiceAccount,
    },
    apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet},
    authentication::v1::{SelfSubjectReview, TokenRequest, TokenReview},
    authorization::v1::{
        LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview,
        SubjectAccessReview,
    },
    autoscaling::v1::{HorizontalPodAutoscaler, Scale},
    autoscaling::v2::{HorizontalPodAutoscaler},
    batch::v1::{CronJob, Job},
    coordination::v1::{Lease},
    discovery::v1::{EndpointSlice},
    events::v1::{Event},
    networking::v1::{Ingress, IngressClass, NetworkPolicy},
    policy::v1::{Eviction, PodDisruptionBudget},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
    scheduling::v1::{PriorityClass},
    storage::v1::{StorageClass},
};

/// Decodes `raw` as the message `M`, then reads its fields into `T` for their JSON form.
fn decode_as<M, T>(raw: &[u8]) -> ApiResult<Value>
where
    M: prost::Message + Default + std::fmt::Debug,
    T: k8s_openapi::Resource + serde::de::DeserializeOwned + serde::Serialize,
{
    let unreadable = |reason: String| {
        ApiError::bad_request(format!(
            "the protobuf body is not a valid {} ({}): {reason}",
            T::KIND,
            T::API_VERSION
        ))
    };
    let message = M::decode(raw).map_err(|e| unreadable(e.to_string()))?;
    let value = debug_value::parse(&format!("{message:?}")).map_err(unreadable)?;
    let typed: T = rekey::into_typed(value).map_err(|e| unreadable(e.to_string()))?;
    serde_json::to_value(typed).map_err(|e| unreadable(e.to_string()))
}
