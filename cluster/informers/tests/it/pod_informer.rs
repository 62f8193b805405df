//! The shared pod informer against the embedded API server: every subscriber gets every
//! event, deletions included, and the store holds each pod before its event arrives.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_labs_informers::{PodEvent, PodInformer};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt as _};
use serde_json::json;

const HANG_GUARD: Duration = Duration::from_secs(30);

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap()
}

async fn next(events: &mut (impl futures::Stream<Item = PodEvent> + Unpin)) -> PodEvent {
    tokio::time::timeout(HANG_GUARD, events.next())
        .await
        .expect("no pod event")
        .expect("the subscription ended")
}

fn describe(event: &PodEvent) -> String {
    let kind = match event {
        PodEvent::Added(_) => "added",
        PodEvent::Updated(_) => "updated",
        PodEvent::Deleted(_) => "deleted",
    };
    format!("{kind} {}", event.pod().name_any())
}

#[tokio::test]
async fn every_subscriber_gets_every_event_after_the_store_has_it() {
    let api_server = TestApiServer::start().await.unwrap();
    let pods = Api::<Pod>::namespaced(api_server.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("before"))
        .await
        .unwrap();

    let informer = PodInformer::new(Api::all(api_server.client.clone()));
    let mut first = informer.subscribe().boxed();
    let mut second = informer.subscribe().boxed();
    let store = informer.store();
    let synced = informer.synced();
    let running = informer.run("the test");
    assert!(tokio::time::timeout(HANG_GUARD, synced).await.unwrap());
    for events in [&mut first, &mut second] {
        assert_eq!(describe(&next(events).await), "added before");
    }

    pods.create(&PostParams::default(), &pod("after"))
        .await
        .unwrap();
    let added = next(&mut first).await;
    assert_eq!(describe(&added), "added after");
    assert!(
        store
            .get(&ObjectRef::from_obj(added.pod().as_ref()))
            .is_some(),
        "the store holds the pod when its event arrives"
    );
    assert_eq!(describe(&next(&mut second).await), "added after");

    pods.delete("after", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    // A deletion may first show as an update (graceful deletion), then as the deletion.
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("deleted after") {
        seen.push(describe(&next(&mut first).await));
    }
    assert!(store.state().iter().all(|pod| pod.name_any() != "after"));
    drop(running);
}
