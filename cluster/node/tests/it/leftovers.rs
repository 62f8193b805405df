//! Leftovers of a crashed cluster run are removed at the next start; a running cluster's
//! instance is never touched (needs root).

use std::path::Path;

use k8s_labs_net::netns;
use nix::mount::{MsFlags, mount};

use crate::common::{TEST_RUN_ROOT, run_root_alone};

#[test]
fn cleanup_removes_an_abandoned_instance_and_leaves_a_live_one_alone() {
    // No other test's node may start (and clean up) while the abandoned instance is planted.
    let _alone = run_root_alone();
    let root = Path::new(TEST_RUN_ROOT);
    // A live instance (owned by this test process) with a namespace of its own.
    let (live, live_dir) = k8s_labs_node::claim_instance(root).unwrap();
    let live_netns = format!("k8s-labs-{live}-node");
    netns::create(&live_netns).unwrap();

    // An abandoned one: its owner is a process that does not exist; it has a namespace and an
    // overlay mount, as a crashed node would leave them.
    let (dead, dead_dir) = k8s_labs_node::claim_instance(root).unwrap();
    std::fs::write(dead_dir.join("owner"), "999999999 12345").unwrap();
    let dead_netns = format!("k8s-labs-{dead}-pod-abc");
    netns::create(&dead_netns).unwrap();
    let bundle = dead_dir.join("pods/abc/containers/c");
    for sub in ["rootfs", "upper", "work"] {
        std::fs::create_dir_all(bundle.join(sub)).unwrap();
    }
    let options = format!(
        "lowerdir=/,upperdir={},workdir={}",
        bundle.join("upper").display(),
        bundle.join("work").display()
    );
    mount(
        Some("overlay"),
        &bundle.join("rootfs"),
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .unwrap();
    // Something that is not an instance directory stays too.
    let not_ours = root.join("not-an-instance.txt");
    std::fs::write(&not_ours, "keep").unwrap();

    let removed = k8s_labs_node::cleanup_leftovers(root).unwrap();
    assert!(removed.contains(&dead), "{removed:?}");
    assert!(!removed.contains(&live));
    assert!(!dead_dir.exists());
    assert!(!netns::netns_path(&dead_netns).exists());
    assert!(k8s_labs_node::mounts_under(&dead_dir).unwrap().is_empty());

    assert!(live_dir.exists());
    assert!(netns::netns_path(&live_netns).exists());
    assert!(not_ours.exists());

    netns::delete(&live_netns).unwrap();
    std::fs::remove_dir_all(live_dir).unwrap();
    std::fs::remove_file(not_ours).unwrap();
}
