//! The StatefulSet controller against the embedded API server; the test plays the kubelet.

use crate::common;

use common::{PodWatch, Seen, is_running_ready, pod_ip, set_pod_status};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Endpoints, PersistentVolumeClaim, Pod, Service};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::{Api, ResourceExt as _};
use serde_json::json;

fn web(replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "nginx",
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                         "ports": [{"containerPort": 80, "name": "web"}],
                                         "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    })
}

fn nginx_service() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {"clusterIP": "None", "selector": {"app": "nginx"},
                 "ports": [{"port": 80, "name": "web"}]},
    })
}

async fn wait_for_set(
    api: &Api<StatefulSet>,
    what: &str,
    condition: impl Fn(&StatefulSet) -> bool,
) -> StatefulSet {
    let found = tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(api.clone(), "web", move |set: Option<&StatefulSet>| {
            set.is_some_and(&condition)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("StatefulSet never reached: {what}"))
    .unwrap();
    found.unwrap()
}

#[tokio::test]
async fn ordered_ready_creation_identity_endpoints_and_scale_down() {
    let cluster = common::start().await;
    let ns = "ordered";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    let _: Service = cluster.create(ns, nginx_service()).await;
    let _: StatefulSet = cluster.create(ns, web(3)).await;
    let sets = Api::<StatefulSet>::namespaced(cluster.client.clone(), ns);

    // web-0 comes first, with its stable identity and claim.
    pods.until("web-0 created", |p| p.contains_key("web-0"))
        .await;
    let web0 = pods.pods["web-0"].clone();
    let spec = web0.spec.clone().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let labels = web0.labels();
    assert_eq!(labels["app"], "nginx");
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "0");
    assert!(labels["controller-revision-hash"].starts_with("web-"));
    let owner = &web0.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("StatefulSet", "web")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    let claim_volume = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "www")
        .unwrap();
    assert_eq!(
        claim_volume.persistent_volume_claim.unwrap().claim_name,
        "www-web-0"
    );
    let claim = Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), ns)
        .get("www-web-0")
        .await
        .unwrap();
    assert_eq!(claim.labels()["app"], "nginx");

    // web-0 Running but not Ready: after a full reconcile (observedGeneration catches up
    // with a spec change that does not touch the pods), web-1 must still not exist.
    set_pod_status(&cluster.client, ns, "web-0", "Running", false).await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 1}}}})),
    )
    .await
    .unwrap();
    let generation = sets.get("web").await.unwrap().metadata.generation;
    wait_for_set(&sets, "observed the new generation", move |set| {
        set.status.as_ref().and_then(|s| s.observed_generation) == generation
    })
    .await;
    let names: Vec<String> = cluster
        .list::<Pod>(ns)
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(
        names,
        vec!["web-0"],
        "web-1 must wait for web-0 to be Ready"
    );

    // Readiness releases the next ordinal, one at a time.
    set_pod_status(&cluster.client, ns, "web-0", "Running", true).await;
    pods.until("web-1 created", |p| p.contains_key("web-1"))
        .await;
    set_pod_status(&cluster.client, ns, "web-1", "Running", true).await;
    pods.until("web-2 created", |p| p.contains_key("web-2"))
        .await;
    set_pod_status(&cluster.client, ns, "web-2", "Running", true).await;
    pods.until("all ready", |p| {
        p.values().filter(|p| is_running_ready(p)).count() == 3
    })
    .await;
    assert!(
        pods.created_after_predecessor_ready
            .iter()
            .all(|(_, ready)| *ready),
        "a pod was created before its predecessor was Ready: {:?}",
        pods.created_after_predecessor_ready
    );
    let set = wait_for_set(&sets, "3 ready replicas", |set| {
        set.status.as_ref().and_then(|s| s.ready_replicas) == Some(3)
    })
    .await;
    let status = set.status.unwrap();
    assert_eq!(status.replicas, 3);
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.updated_replicas, Some(3));
    assert_eq!(status.current_replicas, Some(3));
    assert_eq!(status.current_revision, status.update_revision);
    assert_eq!(status.collision_count, Some(0));

    // Endpoints and EndpointSlices list exactly the ready pods, with hostnames.
    let endpoints_api = Api::<Endpoints>::namespaced(cluster.client.clone(), ns);
    let endpoints = tokio::time::timeout(
        common::HANG_GUARD,
        await_condition(endpoints_api, "nginx", |ep: Option<&Endpoints>| {
            ep.and_then(|ep| ep.subsets.as_ref())
                .and_then(|s| s.first())
                .and_then(|s| s.addresses.as_ref())
                .is_some_and(|a| a.len() == 3)
        }),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let subset = &endpoints.subsets.unwrap()[0];
    let addresses: Vec<(String, Option<String>)> = subset
        .addresses
        .iter()
        .flatten()
        .map(|a| (a.ip.clone(), a.hostname.clone()))
        .collect();
    let expected: Vec<(String, Option<String>)> = ["web-0", "web-1", "web-2"]
        .iter()
        .map(|n| (pod_ip(n), Some(n.to_string())))
        .collect();
    assert_eq!(addresses, expected);
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 80);
    let slices = common::wait_for_slices(&cluster.client, ns, "nginx", |slices| {
        slices.len() == 1 && slices[0].endpoints.len() == 3
    })
    .await;
    let slice = &slices[0];
    assert!(slice.name_any().starts_with("nginx-"));
    assert_eq!(
        slice.labels()["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice.owner_references()[0].kind, "Service");
    let slice_endpoints: Vec<(String, Option<String>, Option<bool>)> = slice
        .endpoints
        .iter()
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.hostname.clone(),
                e.conditions.as_ref().unwrap().ready,
            )
        })
        .collect();
    assert_eq!(
        slice_endpoints,
        ["web-0", "web-1", "web-2"]
            .iter()
            .map(|n| (pod_ip(n), Some(n.to_string()), Some(true)))
            .collect::<Vec<_>>()
    );

    // Scale down to 1: web-2 goes first and is gone before web-1 starts going.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    pods.until("scaled down to web-0", |p| p.keys().eq(["web-0"]))
        .await;
    let web2_gone = pods.position(&Seen::Gone("web-2".into())).unwrap();
    let web1_removal = pods.removal_started("web-1").unwrap();
    assert!(
        pods.removal_started("web-2").unwrap() < web1_removal && web2_gone < web1_removal,
        "scale-down order: {:?}",
        pods.seen
    );
    // Claims are retained by default.
    Api::<PersistentVolumeClaim>::namespaced(cluster.client.clone(), ns)
        .get("www-web-2")
        .await
        .unwrap();

    // A deleted pod comes back with the same name (and a new uid).
    let old_uid = pods.pods["web-0"].uid();
    Api::<Pod>::namespaced(cluster.client.clone(), ns)
        .delete("web-0", &DeleteParams::default())
        .await
        .unwrap();
    pods.until("web-0 recreated", |p| {
        p.get("web-0").is_some_and(|pod| pod.uid() != old_uid)
    })
    .await;

    // A Failed pod is replaced under the same name too.
    let failed_uid = pods.pods["web-0"].uid();
    set_pod_status(&cluster.client, ns, "web-0", "Failed", false).await;
    pods.until("failed web-0 replaced", |p| {
        p.get("web-0").is_some_and(|pod| pod.uid() != failed_uid)
    })
    .await;

    cluster.stop().await;
}

#[tokio::test]
async fn parallel_policy_creates_all_pods_at_once() {
    let cluster = common::start().await;
    let ns = "parallel";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    let mut set = web(3);
    set["spec"]["podManagementPolicy"] = json!("Parallel");
    let _: StatefulSet = cluster.create(ns, set).await;
    pods.until("three pods without any Ready", |p| p.len() == 3)
        .await;
    assert!(pods.pods.values().all(|p| !is_running_ready(p)));
    cluster.stop().await;
}

/// As the ReplicaSet's: a reconcile holding the set from before a template change must not
/// recreate deleted pods from the old template.
#[tokio::test]
async fn pods_deleted_after_a_template_change_come_back_from_the_new_template() {
    let gate = common::gate::WatchGate::default();
    let mut cluster = common::start_gated(&gate).await;
    let ns = "sts-template-race";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    pods.auto_ready = true;
    let _: StatefulSet = cluster.create(ns, web(3)).await;
    pods.until("3 pods Ready", |p| {
        p.len() == 3 && p.values().all(is_running_ready)
    })
    .await;

    let created = common::change_template_and_delete_pods_behind_a_stale_cache::<StatefulSet>(
        &mut cluster,
        &gate,
        &mut pods,
        ns,
        "web",
        "nginx:fixed",
        3,
    )
    .await;
    let images: Vec<(String, &str)> = created
        .iter()
        .map(|pod| (pod.name_any(), common::image(pod)))
        .collect();
    assert!(
        images.iter().all(|(_, image)| *image == "nginx:fixed"),
        "pods created after the change: {images:?}"
    );
    cluster.stop().await;
}

/// Waits until the names of the namespace's ControllerRevisions, by revision number, are
/// `wanted` (a watch of them, no polling).
async fn wait_for_revisions(
    client: &kube::Client,
    ns: &str,
    wanted: &[i64],
) -> Vec<ControllerRevision> {
    use futures::StreamExt as _;
    let api = Api::<ControllerRevision>::namespaced(client.clone(), ns);
    let (store, writer) = kube::runtime::reflector::store();
    let mut stream = kube::runtime::reflector(
        writer,
        kube::runtime::watcher(api, kube::runtime::watcher::Config::default()),
    )
    .boxed();
    let numbers = |store: &kube::runtime::reflector::Store<ControllerRevision>| {
        let mut numbers: Vec<i64> = store.state().iter().map(|r| r.revision).collect();
        numbers.sort_unstable();
        numbers
    };
    loop {
        // The store is filled once the watch's initial list is done: empty before.
        if numbers(&store) == wanted {
            return store.state().iter().map(|r| (**r).clone()).collect();
        }
        let event = tokio::time::timeout(common::HANG_GUARD, stream.next())
            .await
            .unwrap_or_else(|_| {
                let held: Vec<(i64, String, serde_json::Value)> = store
                    .state()
                    .iter()
                    .map(|r| {
                        let image = r.data.as_ref().map(|d| {
                            d.0["spec"]["template"]["spec"]["containers"][0]["image"].clone()
                        });
                        (r.revision, r.name_any(), image.unwrap_or_default())
                    })
                    .collect();
                panic!("revisions never became {wanted:?}: {held:?}")
            });
        event
            .expect("the watch of ControllerRevisions ends")
            .unwrap();
    }
}

/// Each template gets a ControllerRevision numbered after the last; beyond
/// `revisionHistoryLimit`, the oldest revisions no pod uses are deleted.
#[tokio::test]
async fn revisions_record_templates_and_history_is_pruned() {
    let cluster = common::start().await;
    let ns = "sts-history";
    cluster.namespace(ns).await;
    let mut pods = PodWatch::new(&cluster.client, ns);
    pods.auto_ready = true;
    let mut set = web(1);
    set["spec"]["revisionHistoryLimit"] = json!(1);
    let _: StatefulSet = cluster.create(ns, set).await;
    let sets = Api::<StatefulSet>::namespaced(cluster.client.clone(), ns);
    pods.until("web-0 Ready", |p| {
        p.get("web-0").is_some_and(is_running_ready)
    })
    .await;
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": image}]}}}});
        sets.patch("web", &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap();
        pods.until(image, |p| {
            p.get("web-0")
                .is_some_and(|pod| common::image(pod) == image && is_running_ready(pod))
        })
        .await;
    }
    let done = wait_for_set(&sets, "rolled out to revision 4", |set| {
        let status = set.status.clone().unwrap_or_default();
        status.current_revision.is_some()
            && status.current_revision == status.update_revision
            && status.updated_replicas == Some(1)
    })
    .await;
    let revisions = wait_for_revisions(&cluster.client, ns, &[3, 4]).await;
    let update = done.status.unwrap().update_revision.unwrap();
    let newest = revisions.iter().find(|r| r.revision == 4).unwrap();
    assert_eq!(newest.name_any(), update);
    assert_eq!(
        pods.pods["web-0"].labels()["controller-revision-hash"],
        update
    );
    let data = &newest.data.as_ref().unwrap().0;
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:4"
    );
    cluster.stop().await;
}
