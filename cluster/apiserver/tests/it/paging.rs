//! Paged lists as kube-apiserver serves them: `limit` and `continue`, consistent pages,
//! remainingItemCount, selectors before the limit, Tables, and upstream's errors for expired
//! and malformed tokens and for resourceVersionMatch.

use base64::Engine as _;
use futures::{StreamExt, TryStreamExt};
use k8s_labs_apiserver::testing::TestApiServer;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// GET `path` (with its query) as raw JSON, with an optional Accept header: status and body.
async fn get(api: &TestApiServer, path: &str, accept: Option<&str>) -> (u16, Value) {
    let mut request = http::Request::get(path);
    if let Some(accept) = accept {
        request = request.header(http::header::ACCEPT, accept);
    }
    let (status, body) = api
        .send_once(request.body(Vec::new()).unwrap())
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn names(list: &Value, items: &str) -> Vec<String> {
    list[items]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let object = if items == "rows" {
                &item["object"]
            } else {
                item
            };
            object["metadata"]["name"].as_str().unwrap().to_string()
        })
        .collect()
}

fn continue_of(list: &Value) -> &str {
    list["metadata"]["continue"].as_str().unwrap()
}

/// A namespace with ConfigMaps `cm-00` … (`count` of them), every third labelled keep=yes.
async fn config_maps(api: &TestApiServer, namespace: &str, count: usize) -> Api<ConfigMap> {
    let namespaces: Api<Namespace> = Api::all(api.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), namespace);
    futures::stream::iter(0..count)
        .map(|i| {
            let maps = maps.clone();
            async move {
                let labels = if i % 3 == 0 {
                    json!({"keep": "yes"})
                } else {
                    json!({})
                };
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": format!("cm-{i:02}"), "labels": labels}}),
                )
                .unwrap();
                maps.create(&PostParams::default(), &cm).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    maps
}

#[tokio::test]
async fn pages_are_read_at_the_first_pages_resource_version() {
    let api = TestApiServer::start().await.unwrap();
    let maps = config_maps(&api, "paging", 25).await;
    let base = "/api/v1/namespaces/paging/configmaps";
    let (status, first) = get(&api, &format!("{base}?limit=10"), None).await;
    assert_eq!(status, 200);
    let expected: Vec<String> = (0..10).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(names(&first, "items"), expected);
    assert_eq!(first["metadata"]["remainingItemCount"], 15);
    let revision = first["metadata"]["resourceVersion"].as_str().unwrap();
    // Opaque to clients, but upstream's shape: base64url JSON naming the list's RV.
    let token = continue_of(&first);
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap();
    let decoded: Value = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(
        decoded,
        json!({"v": "meta.k8s.io/v1", "rv": revision.parse::<u64>().unwrap(), "start": "cm-09\u{0}"})
    );

    // Changes between pages: none of them shows in this list's later pages.
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cm-10a"}})).unwrap();
    maps.create(&PostParams::default(), &cm).await.unwrap();
    maps.delete("cm-15", &DeleteParams::default())
        .await
        .unwrap();
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"changed": "yes"}}}));
    maps.patch("cm-12", &PatchParams::default(), &relabel)
        .await
        .unwrap();

    let (_, second) = get(&api, &format!("{base}?limit=10&continue={token}"), None).await;
    let expected: Vec<String> = (10..20).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(names(&second, "items"), expected);
    assert_eq!(second["metadata"]["resourceVersion"], revision);
    assert_eq!(second["metadata"]["remainingItemCount"], 5);
    assert!(second["items"][2]["metadata"]["labels"]["changed"].is_null());
    let (_, third) = get(
        &api,
        &format!("{base}?limit=10&continue={}", continue_of(&second)),
        None,
    )
    .await;
    assert_eq!(names(&third, "items").len(), 5);
    assert!(third["metadata"].get("continue").is_none());
    assert!(third["metadata"].get("remainingItemCount").is_none());

    // A new list sees the changes; kube-rs pages through it with the token.
    let mut params = ListParams::default().limit(10);
    let mut seen = Vec::new();
    loop {
        let page = maps.list(&params).await.unwrap();
        seen.extend(page.items.into_iter().filter_map(|cm| cm.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.contains(&"cm-10a".to_string()) && !seen.contains(&"cm-15".to_string()));
}

#[tokio::test]
async fn selectors_apply_before_the_limit_in_every_scope() {
    let api = TestApiServer::start().await.unwrap();
    config_maps(&api, "paging-a", 12).await;
    config_maps(&api, "paging-b", 12).await;
    let base = "/api/v1/namespaces/paging-a/configmaps";
    let (_, first) = get(
        &api,
        &format!("{base}?labelSelector=keep%3Dyes&limit=3"),
        None,
    )
    .await;
    assert_eq!(names(&first, "items"), ["cm-00", "cm-03", "cm-06"]);
    // A selector makes the count of what follows unknown: none is given.
    assert!(first["metadata"].get("remainingItemCount").is_none());
    let (_, second) = get(
        &api,
        &format!(
            "{base}?labelSelector=keep%3Dyes&limit=3&continue={}",
            continue_of(&first)
        ),
        None,
    )
    .await;
    assert_eq!(names(&second, "items"), ["cm-09"]);
    assert!(second["metadata"].get("continue").is_none());

    let (_, fields) = get(
        &api,
        &format!("{base}?fieldSelector=metadata.name%21%3Dcm-00&limit=2"),
        None,
    )
    .await;
    assert_eq!(names(&fields, "items"), ["cm-01", "cm-02"]);

    // Across namespaces the keys are namespace/name, in etcd's byte order.
    let (_, all) = get(&api, "/api/v1/configmaps?labelSelector=keep&limit=5", None).await;
    let namespaces: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(
        names(&all, "items"),
        ["cm-00", "cm-03", "cm-06", "cm-09", "cm-00"]
    );
    assert_eq!(namespaces[3..], ["paging-a", "paging-b"]);
    let (_, rest) = get(
        &api,
        &format!(
            "/api/v1/configmaps?labelSelector=keep&limit=5&continue={}",
            continue_of(&all)
        ),
        None,
    )
    .await;
    assert_eq!(names(&rest, "items"), ["cm-03", "cm-06", "cm-09"]);

    // resourceVersion=0 is served whole, as kube-apiserver 1.33's watch cache serves it.
    let (_, cached) = get(&api, &format!("{base}?limit=2&resourceVersion=0"), None).await;
    assert_eq!(names(&cached, "items").len(), 12);
    assert!(cached["metadata"].get("continue").is_none());

    // Cluster-scoped resources page too.
    let (_, namespaces) = get(&api, "/api/v1/namespaces?limit=2", None).await;
    assert_eq!(namespaces["items"].as_array().unwrap().len(), 2);
    assert!(
        namespaces["metadata"]["remainingItemCount"]
            .as_i64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn tables_page_as_kubectl_get_reads_them() {
    let api = TestApiServer::start().await.unwrap();
    config_maps(&api, "paging", 5).await;
    let accept = Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
    let base = "/api/v1/namespaces/paging/configmaps";
    let (_, first) = get(&api, &format!("{base}?limit=2"), accept).await;
    assert_eq!(first["kind"], "Table");
    assert_eq!(names(&first, "rows"), ["cm-00", "cm-01"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let (_, second) = get(
        &api,
        &format!("{base}?limit=2&continue={}", continue_of(&first)),
        accept,
    )
    .await;
    assert_eq!(names(&second, "rows"), ["cm-02", "cm-03"]);
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn malformed_tokens_and_resource_version_match_errors_are_upstreams() {
    let api = TestApiServer::start().await.unwrap();
    config_maps(&api, "paging", 3).await;
    let base = "/api/v1/namespaces/paging/configmaps";
    let (_, first) = get(&api, &format!("{base}?limit=1"), None).await;
    let token = continue_of(&first).to_string();
    let cases = [
        (
            "continue=garbage!".to_string(),
            400,
            "BadRequest",
            "invalid continue token: continue key is not valid: illegal base64 data at input byte 7",
        ),
        (
            format!("continue={token}&resourceVersion=5"),
            400,
            "BadRequest",
            "specifying resource version is not allowed when using continue",
        ),
        (
            "resourceVersionMatch=NotOlderThan".to_string(),
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            format!("continue={token}&resourceVersion=5&resourceVersionMatch=Exact"),
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
        ),
        (
            "resourceVersion=5&resourceVersionMatch=Latest".to_string(),
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Latest\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
        ),
        (
            "limit=five".to_string(),
            400,
            "BadRequest",
            "strconv.ParseInt: parsing \"five\": invalid syntax",
        ),
        (
            "resourceVersion=999999&resourceVersionMatch=NotOlderThan".to_string(),
            504,
            "Timeout",
            "Timeout: Too large resource version: 999999, current: ",
        ),
    ];
    for (query, code, reason, message) in cases {
        let (status, body) = get(&api, &format!("{base}?{query}"), None).await;
        assert_eq!(status, code, "{query}: {body}");
        assert_eq!(body["code"], code, "{query}");
        assert_eq!(body["reason"], reason, "{query}");
        let text = body["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{query}: {text}");
    }
    let (_, invalid) = get(&api, &format!("{base}?resourceVersionMatch=Exact"), None).await;
    assert_eq!(
        invalid["details"],
        json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": [{
            "reason": "FieldValueForbidden",
            "message": "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            "field": "resourceVersionMatch",
        }]})
    );
}

#[tokio::test]
async fn exact_reads_the_past_and_not_older_than_the_latest() {
    let api = TestApiServer::start().await.unwrap();
    config_maps(&api, "paging", 3).await;
    let base = "/api/v1/namespaces/paging/configmaps";
    let (_, first) = get(&api, &format!("{base}?limit=1"), None).await;
    // Exact reads the past while the history has it; NotOlderThan reads the latest.
    let then = first["metadata"]["resourceVersion"].as_str().unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(api.client.clone(), "paging");
    maps.delete("cm-00", &DeleteParams::default())
        .await
        .unwrap();
    let (_, exact) = get(
        &api,
        &format!("{base}?resourceVersion={then}&resourceVersionMatch=Exact"),
        None,
    )
    .await;
    assert_eq!(names(&exact, "items"), ["cm-00", "cm-01", "cm-02"]);
    assert_eq!(exact["metadata"]["resourceVersion"], then);
    let (_, newer) = get(
        &api,
        &format!("{base}?resourceVersion={then}&resourceVersionMatch=NotOlderThan"),
        None,
    )
    .await;
    assert_eq!(names(&newer, "items"), ["cm-01", "cm-02"]);
}

#[tokio::test]
async fn a_continue_token_past_the_history_is_expired_with_an_inconsistent_one() {
    let api = TestApiServer::start_with_history_len(crate::support::SHORT_HISTORY)
        .await
        .unwrap();
    let maps = config_maps(&api, "paging", 3).await;
    let base = "/api/v1/namespaces/paging/configmaps";
    let (_, first) = get(&api, &format!("{base}?limit=1"), None).await;
    let then = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // More changes than the history keeps push the first page's resourceVersion out of it.
    futures::stream::iter(0..=crate::support::SHORT_HISTORY)
        .map(|i| {
            let maps = maps.clone();
            async move {
                let patch = Patch::Merge(json!({"data": {"n": i.to_string()}}));
                maps.patch("cm-02", &PatchParams::default(), &patch).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();

    let (status, expired) = get(
        &api,
        &format!("{base}?limit=1&continue={}", continue_of(&first)),
        None,
    )
    .await;
    assert_eq!(status, 410);
    assert_eq!(expired["reason"], "Expired");
    assert_eq!(expired["code"], 410);
    assert_eq!(
        expired["message"],
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
    );
    // The inconsistent token goes on from the same key at the latest resourceVersion.
    let inconsistent = continue_of(&expired);
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(inconsistent)
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&decoded).unwrap(),
        json!({"v": "meta.k8s.io/v1", "rv": -1, "start": "cm-00\u{0}"})
    );
    let (status, rest) = get(&api, &format!("{base}?continue={inconsistent}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(names(&rest, "items"), ["cm-01", "cm-02"]);
    assert_ne!(rest["metadata"]["resourceVersion"], then.as_str());
    assert!(rest["items"][1]["data"]["n"].is_string());

    let (status, too_old) = get(
        &api,
        &format!("{base}?resourceVersion={then}&resourceVersionMatch=Exact"),
        None,
    )
    .await;
    assert_eq!(status, 410);
    assert_eq!(too_old["reason"], "Expired");
    assert_eq!(
        too_old["message"],
        "The resourceVersion for the provided list is too old."
    );
}

/// Parameters that do not decode are refused as kube-apiserver's ListOptions conversion and
/// field-label conversion refuse them, for lists and watches alike (found by the fuzz test,
/// where the server answered them with a 200).
#[tokio::test]
async fn selectors_and_numbers_that_do_not_parse_are_refused() {
    let api = TestApiServer::start().await.unwrap();
    let long = "v".repeat(64);
    let cases = [
        ("configmaps?labelSelector=!", "found '', expected: identifier".to_string()),
        (
            &*format!("configmaps?labelSelector=a%3D{long}"),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters"
            ),
        ),
        (
            "configmaps?fieldSelector=spec.bogus%3Dx",
            "\"spec.bogus\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".to_string(),
        ),
        ("pods?fieldSelector=spec.bogus%3Dx", "field label not supported: spec.bogus".to_string()),
        (
            "configmaps?timeoutSeconds=abc",
            "strconv.ParseInt: parsing \"abc\": invalid syntax".to_string(),
        ),
        (
            "configmaps?watch=true&limit=1.5",
            "strconv.ParseInt: parsing \"1.5\": invalid syntax".to_string(),
        ),
        (
            "pods?watch=true&timeoutSeconds=99999999999999999999",
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range".to_string(),
        ),
    ];
    for (query, expected) in cases {
        let (status, body) = get(&api, &format!("/api/v1/namespaces/default/{query}"), None).await;
        assert_eq!(
            (status, body["reason"].as_str(), body["message"].as_str()),
            (400, Some("BadRequest"), Some(expected.as_str())),
            "{query}"
        );
    }
    // The labels a kind supports are taken.
    let (status, _) = get(
        &api,
        "/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3Dn",
        None,
    )
    .await;
    assert_eq!(status, 200);
}
