//! Without a cluster: every step explains itself in English and in Chinese (for transcripts
//! and classroom walkthroughs), and the golden files under `expected/` are exactly the ones
//! the lab's source names, each fully redacted (no IP, UID, age or namespace of one run).

use std::path::Path;

use k8s_labs_harness::testing::assert_lab_documented;
use lab_statefulset_dns::lab;

#[test]
fn steps_are_explained_and_golden_files_are_the_named_redacted_ones() {
    assert_lab_documented(&lab(), &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
}
