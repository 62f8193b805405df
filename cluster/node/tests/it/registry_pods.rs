//! Pods that run images pulled from real registries (Debian's `docker-registry` on
//! 127.0.0.1, images built with `umoci` and pushed with `skopeo`): the image's config runs
//! (Entrypoint, Cmd, Env, WorkingDir, User), by tag, by digest, through an index and with
//! zstd layers (two pods of one image pull it once); the whiteout of an upper layer hides a
//! lower file; a missing tag is ErrImagePull then ImagePullBackOff with the registry's error;
//! a private repository needs imagePullSecrets; `Never` with no image is ErrImageNeverPull; a
//! corrupted blob is refused; a mirror serves its registry. Needs root.

use crate::common;

use common::registry::{
    Registry, Scratch, build_and_push, push, push_multi_platform, push_one_file_image, tamper,
};
use common::{
    Cluster, create_pod, ended, first_container, first_waiting, wait_for, wait_for_event,
};
use k8s_labs_node::ImageSources;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{Api, LogParams, PostParams};

/// What the test image's default user sees, run through its own entrypoint `busybox sh -c`.
/// (The image has busybox but no applet links: each applet is called through it.)
const SCRIPT: &str = "busybox cat /marker; echo $GREETING; pwd; busybox id -u; busybox id -g; \
                      test -e /doomed && echo present || echo gone";
const EXPECTED: &str = "pulled from a registry\nhello\n/work\n1000\n1000\ngone\n";

fn pod(name: &str, image: &str, policy: &str, args: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": image, "imagePullPolicy": policy, "args": args}]},
    })
}

async fn log_of(pods: &Api<Pod>, name: &str) -> (Pod, String) {
    let done = wait_for(pods, name, ended).await;
    let log = pods.logs(name, &LogParams::default()).await.unwrap();
    (done, log)
}

fn message_of(event: &Event) -> String {
    event.message.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_images_pulled_from_registries() {
    let scratch = Scratch::new("registry-pods");
    let registry = Registry::start(&scratch.0.join("open"));
    let digest = build_and_push(&scratch.0, &registry);
    let layout_image = format!("{}:v1", scratch.0.join("layout").display());
    let zstd = format!("{}/test/img:zstd", registry.host());
    push(&layout_image, &zstd, &["--dest-compress-format", "zstd"]);
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");

    let by_tag = format!("{}/test/img:v1", registry.host());
    create_pod(&pods, pod("by-tag", &by_tag, "Always", &["-c", SCRIPT])).await;
    let (done, log) = log_of(&pods, "by-tag").await;
    assert_eq!(log, EXPECTED, "{done:?}");
    let status = first_container(Some(&done)).unwrap();
    assert_eq!(status.image, by_tag);
    assert_eq!(
        status.image_id,
        format!("{}/test/img@{digest}", registry.host())
    );
    let pulled = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("Pulled")
            && message_of(event).contains(&format!("\"{by_tag}\""))
    })
    .await;
    let message = message_of(&pulled);
    eprintln!("{message}");
    assert!(
        message.starts_with(&format!("Successfully pulled image \"{by_tag}\" in "))
            && message.contains("Image size: ")
            && message.ends_with(&format!("Source: registry {}.", registry.host())),
        "{message}"
    );

    // By digest, IfNotPresent: the image the tag pulled is used, nothing is pulled.
    let by_digest = format!("{}/test/img@{digest}", registry.host());
    let command = ["/bin/busybox", "cat", "/marker"];
    let mut value = pod("by-digest", &by_digest, "IfNotPresent", &[]);
    value["spec"]["containers"][0]["command"] = serde_json::json!(command);
    create_pod(&pods, value).await;
    let (_, log) = log_of(&pods, "by-digest").await;
    assert_eq!(log, "pulled from a registry\n");
    let present = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("Pulled")
            && event.involved_object.name.as_deref() == Some("by-digest")
    })
    .await;
    assert_eq!(
        message_of(&present),
        format!("Container image \"{by_digest}\" already present on machine")
    );

    two_pods_of_one_image_pull_it_once(&cluster, &pods, &zstd).await;

    // Through an image index: this machine's platform is picked, not the first listed.
    let index_digest = push_multi_platform(&scratch.0, &registry);
    let multi = format!("{}/test/multi:v1", registry.host());
    create_pod(&pods, pod("multi", &multi, "IfNotPresent", &["-c", SCRIPT])).await;
    let (done, log) = log_of(&pods, "multi").await;
    assert_eq!(log, EXPECTED);
    let status = first_container(Some(&done)).unwrap();
    // imageID names the index, as containerd's repo digest does.
    let image_id = format!("{}/test/multi@{index_digest}", registry.host());
    assert_eq!(status.image_id, image_id);

    missing_tag_backs_off(&cluster, &pods, &registry).await;
    never_pull_without_the_image(&pods).await;
    private_repository_needs_a_pull_secret(&cluster, &pods, &scratch, &layout_image).await;
    a_corrupted_blob_is_refused(&pods, &scratch, &registry).await;
    cluster.stop().await;
}

/// Two pods of an image not yet on the node, created together: one pull, and the second pod
/// finds the image the first pulled (its pull waits for the first). zstd layers.
async fn two_pods_of_one_image_pull_it_once(cluster: &Cluster, pods: &Api<Pod>, image: &str) {
    let (first, second) = tokio::join!(
        create_pod(pods, pod("zstd-a", image, "IfNotPresent", &["-c", SCRIPT])),
        create_pod(pods, pod("zstd-b", image, "IfNotPresent", &["-c", SCRIPT])),
    );
    for created in [first, second] {
        let name = created.metadata.name.unwrap();
        let (_, log) = log_of(pods, &name).await;
        assert_eq!(log, EXPECTED);
        wait_for_event(&cluster.client, |event| {
            event.reason.as_deref() == Some("Pulled")
                && event.involved_object.name.as_deref() == Some(name.as_str())
        })
        .await;
    }
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "default");
    let pulled: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|event| event.reason.as_deref() == Some("Pulled"))
        .map(message_of)
        .filter(|message| message.contains(&format!("\"{image}\"")))
        .collect();
    let downloads = pulled
        .iter()
        .filter(|message| message.starts_with("Successfully pulled"))
        .count();
    assert_eq!(downloads, 1, "{pulled:?}");
    assert_eq!(pulled.len(), 2, "{pulled:?}");
}

/// A tag the registry does not have: ErrImagePull with the registry's error, then
/// ImagePullBackOff.
async fn missing_tag_backs_off(cluster: &Cluster, pods: &Api<Pod>, registry: &Registry) {
    let missing = format!("{}/test/img:missing", registry.host());
    create_pod(pods, pod("missing", &missing, "IfNotPresent", &[])).await;
    let failed = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("Failed")
            && message_of(event).starts_with(&format!("Failed to pull image \"{missing}\": "))
    })
    .await;
    let message = message_of(&failed);
    eprintln!("{message}");
    assert!(
        message.ends_with(&format!(
            "failed to pull and unpack image \"{missing}\": failed to resolve reference \
             \"{missing}\": {missing}: not found"
        )),
        "{message}"
    );
    let waiting = wait_for(pods, "missing", |pod| {
        first_waiting(pod).is_some_and(|waiting| waiting.reason.as_deref() == Some("ErrImagePull"))
    })
    .await;
    assert!(
        first_waiting(Some(&waiting))
            .unwrap()
            .message
            .unwrap()
            .contains("not found")
    );
    wait_for(pods, "missing", |pod| {
        first_waiting(pod)
            .is_some_and(|waiting| waiting.reason.as_deref() == Some("ImagePullBackOff"))
    })
    .await;
}

async fn never_pull_without_the_image(pods: &Api<Pod>) {
    create_pod(pods, pod("never", "127.0.0.1:1/absent:v1", "Never", &[])).await;
    let waiting = wait_for(pods, "never", |pod| {
        first_waiting(pod)
            .is_some_and(|waiting| waiting.reason.as_deref() == Some("ErrImageNeverPull"))
    })
    .await;
    assert_eq!(
        first_waiting(Some(&waiting)).unwrap().message.as_deref(),
        Some("Container image \"127.0.0.1:1/absent:v1\" is not present with pull policy of Never")
    );
}

/// A registry with a login: refused without credentials, pulled with the pod's
/// `imagePullSecrets`.
async fn private_repository_needs_a_pull_secret(
    cluster: &Cluster,
    pods: &Api<Pod>,
    scratch: &Scratch,
    layout_image: &str,
) {
    let private = Registry::start_with(&scratch.0.join("private"), Some(("student", "s3cret")));
    let image = format!("{}/private/img:v1", private.host());
    push(layout_image, &image, &["--dest-creds", "student:s3cret"]);
    create_pod(
        pods,
        pod("anonymous", &image, "IfNotPresent", &["-c", "true"]),
    )
    .await;
    let refused = wait_for(pods, "anonymous", |pod| {
        first_waiting(pod).is_some_and(|waiting| waiting.reason.as_deref() == Some("ErrImagePull"))
    })
    .await;
    let message = first_waiting(Some(&refused)).unwrap().message.unwrap();
    eprintln!("{message}");
    assert!(message.contains(&image), "{message}");

    let config = serde_json::json!({"auths": {private.host(): {"username": "student", "password": "s3cret"}}});
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config.to_string()},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut value = pod("with-secret", &image, "IfNotPresent", &["-c", SCRIPT]);
    value["spec"]["imagePullSecrets"] = serde_json::json!([{"name": "regcred"}]);
    create_pod(pods, value).await;
    let (done, log) = log_of(pods, "with-secret").await;
    assert_eq!(log, EXPECTED, "{done:?}");
}

/// A mirror answers for its registry (here `docker.io`, which this test never reaches: the
/// mirror has the image); with registries off, the catalog serves what it lists and nothing
/// else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_then_the_catalog_serve_images() {
    let scratch = Scratch::new("registry-mirror");
    let mirror = Registry::start(&scratch.0.join("mirror"));
    build_and_push(&scratch.0, &mirror);
    let image = format!("{}:v1", scratch.0.join("layout").display());
    push(
        &image,
        &format!("{}/library/mirrored:v1", mirror.host()),
        &[],
    );
    let sources =
        ImageSources::parse(&format!("mirrors:\n  docker.io: [\"{}\"]\n", mirror.host())).unwrap();
    let cluster = Cluster::start_with(sources).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    create_pod(
        &pods,
        pod("mirrored", "mirrored:v1", "IfNotPresent", &["-c", SCRIPT]),
    )
    .await;
    let (done, log) = log_of(&pods, "mirrored").await;
    assert_eq!(log, EXPECTED);
    let status = first_container(Some(&done)).unwrap();
    assert_eq!(status.image, "docker.io/library/mirrored:v1");
    assert!(
        status
            .image_id
            .starts_with("docker.io/library/mirrored@sha256:")
    );
    let pulled = wait_for_event(&cluster.client, |event| {
        event.reason.as_deref() == Some("Pulled")
            && event.involved_object.name.as_deref() == Some("mirrored")
    })
    .await;
    assert!(
        message_of(&pulled).ends_with(&format!("Source: mirror {}.", mirror.host())),
        "{}",
        message_of(&pulled)
    );
    cluster.stop().await;

    let offline = ImageSources::parse("registries: false\n").unwrap();
    let cluster = Cluster::start_with(offline).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let mut value = pod("catalog", "busybox:1.28", "Always", &[]);
    value["spec"]["containers"][0]["command"] = serde_json::json!(["echo", "from the catalog"]);
    create_pod(&pods, value).await;
    let (done, log) = log_of(&pods, "catalog").await;
    assert_eq!(log, "from the catalog\n");
    assert_eq!(
        first_container(Some(&done)).unwrap().image_id,
        "k8s-labs-catalog://busybox-1.28"
    );
    create_pod(&pods, pod("unlisted", "mirrored:v1", "Always", &[])).await;
    let waiting = wait_for(&pods, "unlisted", |pod| {
        first_waiting(pod).is_some_and(|waiting| waiting.reason.as_deref() == Some("ErrImagePull"))
    })
    .await;
    let message = first_waiting(Some(&waiting)).unwrap().message.unwrap();
    assert!(
        message.contains("registries are off") && message.contains("offline catalog"),
        "{message}"
    );
    cluster.stop().await;
}

/// A layer blob whose content the registry serves altered (one byte flipped): ErrImagePull
/// naming the digest mismatch, and nothing of it kept, so a retry fails the same way.
async fn a_corrupted_blob_is_refused(pods: &Api<Pod>, scratch: &Scratch, registry: &Registry) {
    let unique = format!("only in the tampered image {}\n", std::process::id());
    let blob = push_one_file_image(&scratch.0, registry, "test/tampered", &unique);
    tamper(&blob);
    let image = format!("{}/test/tampered:v1", registry.host());
    create_pod(pods, pod("tampered", &image, "Always", &[])).await;
    let refused = wait_for(pods, "tampered", |pod| {
        first_waiting(pod).is_some_and(|waiting| waiting.reason.as_deref() == Some("ErrImagePull"))
    })
    .await;
    let message = first_waiting(Some(&refused)).unwrap().message.unwrap();
    eprintln!("{message}");
    assert!(
        message.contains(&format!("failed to pull and unpack image \"{image}\""))
            && message.to_lowercase().contains("digest"),
        "{message}"
    );
}
