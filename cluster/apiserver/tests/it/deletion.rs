//! DELETE as kube-apiserver answers it: DeleteOptions validation, the garbage collector's
//! deletion finalizers (no garbage collector runs here, so they stay until the test removes
//! them), the 200/202 codes and the Status or object in the answer.

use k8s_labs_apiserver::testing::TestApiServer;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A raw DELETE of `path` with `body`: status code and JSON answer.
async fn delete(api: &TestApiServer, path: &str, body: Option<Value>) -> (u16, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let request = http::Request::delete(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(bytes.into())
        .unwrap();
    let response = api.client.send(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect_bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn config_map(api: &TestApiServer, name: &str, finalizers: &[&str]) {
    let object = serde_json::from_value(json!({
        "metadata": {"name": name, "finalizers": finalizers},
        "data": {"a": "b"},
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(api.client.clone(), "default")
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

const CONFIG_MAPS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn delete_options_are_validated_as_kube_apiserver_validates_them() {
    let api = TestApiServer::start().await.unwrap();
    config_map(&api, "settings", &[]).await;
    let both = json!({"orphanDependents": true, "propagationPolicy": "Foreground"});
    let (code, status) = delete(&api, &format!("{CONFIG_MAPS}/settings"), Some(both)).await;
    assert_eq!(code, 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Foreground\": orphanDependents and deletionPropagation cannot be both set"
    );
    let (code, status) = delete(
        &api,
        &format!("{CONFIG_MAPS}/settings?propagationPolicy=Later"),
        None,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Later\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
    );
    // Nothing was deleted by the refused requests.
    let (code, _) = delete(&api, &format!("{CONFIG_MAPS}/settings"), None).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn policies_set_finalizers_that_hold_the_object_until_removed() {
    let api = TestApiServer::start().await.unwrap();
    let maps =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(api.client.clone(), "default");
    for (name, policy, finalizer) in [
        ("fg", "Foreground", "foregroundDeletion"),
        ("or", "Orphan", "orphan"),
    ] {
        config_map(&api, name, &[]).await;
        let (code, marked) = delete(
            &api,
            &format!("{CONFIG_MAPS}/{name}"),
            Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy})),
        )
        .await;
        assert_eq!(code, 200, "kube-apiserver answers 200 for a marked object");
        assert_eq!(marked["metadata"]["finalizers"], json!([finalizer]));
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        let held = maps.get(name).await.unwrap();
        assert!(held.metadata.deletion_timestamp.is_some());
        let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
        maps.patch(name, &PatchParams::default(), &release)
            .await
            .unwrap();
        assert!(
            maps.get_opt(name).await.unwrap().is_none(),
            "the last finalizer removed, the object is gone"
        );
    }
}

#[tokio::test]
async fn orphan_dependents_false_is_answered_202_while_the_object_waits() {
    let api = TestApiServer::start().await.unwrap();
    config_map(&api, "held", &["example.com/hold"]).await;
    let (code, object) = delete(
        &api,
        &format!("{CONFIG_MAPS}/held?orphanDependents=false"),
        None,
    )
    .await;
    assert_eq!(code, 202);
    assert_eq!(
        object["metadata"]["finalizers"],
        json!(["example.com/hold"])
    );
    assert!(object["metadata"]["deletionTimestamp"].is_string());
}

#[tokio::test]
async fn completed_deletes_answer_the_object_or_a_status() {
    let api = TestApiServer::start().await.unwrap();
    config_map(&api, "plain", &[]).await;
    let uid =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(api.client.clone(), "default")
            .get("plain")
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap();
    let (code, status) = delete(&api, &format!("{CONFIG_MAPS}/plain"), None).await;
    assert_eq!(code, 200);
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": "plain", "kind": "configmaps", "uid": uid}})
    );

    let pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(api.client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let (code, object) = delete(&api, "/api/v1/namespaces/default/pods/p", None).await;
    assert_eq!(code, 200);
    assert_eq!(object["kind"], "Pod", "pods return the deleted object");
}
