//! Pods that run an image loaded from a `docker save` archive, with no registry: the archive
//! is made by `skopeo` from an `umoci` layout (busybox and its libraries from the host, a
//! marker, and a second layer that deletes a file of the first), loaded into the node's
//! store; `IfNotPresent` and `Never` run it. Pruning keeps it while a container runs it (in a
//! user namespace, so through an idmapped bind mount of its root filesystem) and removes it
//! once none does. Needs root, umoci and skopeo.

use crate::common;

use std::path::{Path, PathBuf};

use common::registry::{Scratch, install_busybox, run};
use common::{Cluster, create_pod, delete_and_wait, first_container, run_to_end, wait_for};
use k8s_labs_node::registry::{LoadOptions, PullStore, load_archive, prune_images};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

/// The image's name: its registry does not exist, so only the store can provide it.
const IMAGE: &str = "archive.invalid/test/img:v1";

/// Builds the test image and saves it as `docker save` would, tagged [`IMAGE`].
fn build_archive(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let (layout_s, bundle_s) = (layout.display().to_string(), bundle.display().to_string());
    let image = format!("{layout_s}:v1");
    let rootfs = bundle.join("rootfs");
    run("umoci", &["init", "--layout", &layout_s]);
    run("umoci", &["new", "--image", &image]);
    run("umoci", &["unpack", "--image", &image, &bundle_s]);
    install_busybox(&rootfs);
    std::fs::write(rootfs.join("marker"), "loaded from an archive\n").unwrap();
    std::fs::write(rootfs.join("doomed"), "deleted by the second layer\n").unwrap();
    run("umoci", &["repack", "--image", &image, &bundle_s]);
    std::fs::remove_dir_all(&bundle).unwrap();
    run("umoci", &["unpack", "--image", &image, &bundle_s]);
    std::fs::remove_file(rootfs.join("doomed")).unwrap();
    run("umoci", &["repack", "--image", &image, &bundle_s]);
    let archive = dir.join("img.tar");
    let destination = format!("docker-archive:{}:{IMAGE}", archive.display());
    run(
        "skopeo",
        &["copy", "--quiet", &format!("oci:{image}"), &destination],
    );
    archive
}

fn pod(name: &str, policy: &str, command: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "image": IMAGE, "imagePullPolicy": policy, "command": command}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_images_loaded_from_archives_and_prune_keeps_them_while_used() {
    let scratch = Scratch::new("archive-pods");
    let archive = build_archive(&scratch.0);
    let cluster = Cluster::start().await;
    let store = PullStore::open(&cluster.state_dir.join("pulled")).unwrap();
    let loaded = load_archive(&store, &archive, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].references, [IMAGE]);
    let digest = loaded[0].digest.clone();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");

    let script = "busybox cat /marker; test -e /doomed && echo present || echo gone";
    for (name, policy) in [("if-not-present", "IfNotPresent"), ("never", "Never")] {
        let command = ["/bin/busybox", "sh", "-c", script];
        let (done, log) = run_to_end(&cluster, &pods, pod(name, policy, &command)).await;
        assert_eq!(log, "loaded from an archive\ngone\n", "{done:?}");
        let status = first_container(Some(&done)).unwrap();
        assert_eq!(
            status.image_id,
            format!("archive.invalid/test/img@{digest}")
        );
    }

    // A running container's image is kept.
    let sleeping = ["/bin/busybox", "sleep", "3600"];
    let sleeper = create_pod(&pods, pod("sleeper", "Never", &sleeping)).await;
    wait_for(&pods, "sleeper", |pod| {
        first_container(pod)
            .and_then(|status| status.state)
            .is_some_and(|state| state.running.is_some())
    })
    .await;
    let report = prune_images(&store).unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(report.in_use.len(), 1);
    assert_eq!(report.in_use[0].digest, digest);
    assert!(store.image(&digest).unwrap().is_some());

    // Once no container runs it, it goes, with its reference and blobs.
    delete_and_wait(&cluster, &pods, &sleeper).await;
    let report = prune_images(&store).unwrap();
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert_eq!(report.removed[0].references, [IMAGE]);
    assert!(report.blobs >= 3 && report.freed > 0, "{report:?}");
    assert!(store.reference(IMAGE).unwrap().is_none());
    assert_eq!(
        std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    cluster.stop().await;
}
