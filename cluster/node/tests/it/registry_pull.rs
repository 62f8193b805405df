//! Pulls from a real registry: Debian's `docker-registry` on a free port of 127.0.0.1, an
//! image built here with `umoci` (busybox from the host and a marker file in one layer; a
//! second layer that deletes a file of the first, so it carries a whiteout) and pushed with
//! `skopeo`; then pulled by tag and by digest with the node's registry module.

use crate::common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::registry::{Registry, Scratch, build_and_push, largest_blob, size_of, tamper};
use k8s_labs_node::registry::{PullStore, Puller, StoredImage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_by_tag_and_digest_from_a_real_registry() {
    let scratch = Scratch::new("registry-pull");
    let dir = scratch.0.clone();
    let registry = Registry::start(&scratch.0);
    let digest = build_and_push(&scratch.0, &registry);
    let store_dir = dir.join("store");
    let puller = Puller::new(PullStore::open(&store_dir).unwrap());

    let started = Instant::now();
    let image = puller
        .pull(&format!("{}/test/img:v1", registry.host()))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let size = |dir: &str| size_of(&store_dir.join(dir));
    eprintln!(
        "pulled {} in {elapsed:?}; store: blobs {} B, layers {} B, images {} B",
        image.digest,
        size("blobs"),
        size("layers"),
        size("images")
    );
    assert_eq!(image.digest, digest);
    check_image(&image);

    shares_layers(&puller, &registry, &store_dir).await;

    // By digest, into a second store: fetched again, the same image.
    let by_digest = format!("{}/test/img@{digest}", registry.host());
    let second = Puller::new(PullStore::open(&dir.join("store2")).unwrap());
    let pinned = second.pull(&by_digest).await.unwrap();
    assert_eq!(pinned.digest, digest);
    assert_eq!(pinned.config, image.config);
    assert!(visible(&pinned, "marker").is_some() && visible(&pinned, "doomed").is_none());
    // Again by tag, in the first store: served from it.
    let cached = Puller::new(PullStore::open(&store_dir).unwrap())
        .pull(&format!("{}/test/img:v1", registry.host()))
        .await
        .unwrap();
    assert_eq!(cached, image);

    let missing = format!("{}/test/img:missing", registry.host());
    let error = puller.pull(&missing).await.unwrap_err();
    let message = format!("{error:#}");
    eprintln!("{message}");
    assert!(message.contains(&missing), "{message}");

    refuses_a_tampered_blob(&dir, &by_digest).await;
    drop(registry);
}

fn visible(image: &StoredImage, path: &str) -> Option<PathBuf> {
    k8s_labs_node::registry::visible(&image.layers, path)
}

/// The image's layers and config are what `build_and_push` made.
fn check_image(image: &StoredImage) {
    assert_eq!(image.layers.len(), 2, "{image:?}");
    let marker = visible(image, "marker").expect("the marker");
    assert_eq!(
        std::fs::read_to_string(marker).unwrap(),
        "pulled from a registry\n"
    );
    let busybox = std::fs::read(visible(image, "bin/busybox").unwrap()).unwrap();
    assert_eq!(busybox, std::fs::read("/bin/busybox").unwrap());
    assert!(
        visible(image, "doomed").is_none(),
        "the whiteout hides doomed"
    );
    let config = &image.config;
    assert_eq!(
        config.entrypoint,
        Some(vec!["/bin/busybox".to_string(), "sh".to_string()])
    );
    assert_eq!(config.cmd, Some(vec!["-c".to_string()]));
    assert!(
        config.env.contains(&"GREETING=hello".to_string()),
        "{config:?}"
    );
    assert_eq!(
        (config.working_dir.as_str(), config.user.as_str()),
        ("/work", "1000:1000")
    );
}

/// `base` is `v1`'s first layer: pulled into the same store, that layer is not unpacked
/// again; `v1`'s second layer marks `doomed` deleted as overlayfs does.
async fn shares_layers(puller: &Puller, registry: &Registry, store_dir: &Path) {
    let base = puller
        .pull(&format!("{}/test/img:base", registry.host()))
        .await
        .unwrap();
    assert!(visible(&base, "doomed").is_some() && visible(&base, "bin/busybox").is_some());
    assert_eq!(base.layers.len(), 1);
    let layers: Vec<PathBuf> = std::fs::read_dir(store_dir.join("layers/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(layers.len(), 2, "{layers:?}");
    let marked = layers.iter().any(|layer| {
        std::fs::symlink_metadata(layer.join("doomed"))
            .is_ok_and(|metadata| metadata.file_type().is_char_device() && metadata.rdev() == 0)
    });
    assert!(marked, "a layer directory marks doomed deleted");
}

async fn refuses_a_tampered_blob(dir: &Path, by_digest: &str) {
    // A blob altered in the registry's storage (same size, one byte flipped) is refused.
    tamper(&largest_blob(&dir.join("storage")));
    let tampered = Puller::new(PullStore::open(&dir.join("store3")).unwrap());
    let error = tampered.pull(by_digest).await.unwrap_err();
    let message = format!("{error:#}");
    eprintln!("{message}");
    assert!(message.to_lowercase().contains("digest"), "{message}");
    assert!(
        tampered.pull(by_digest).await.is_err(),
        "nothing unverified was kept"
    );
}
