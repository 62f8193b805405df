//! The tutorial's statefulsets.yaml is kept verbatim; the corrected one differs only in the
//! image, and says why.

use std::path::PathBuf;

fn tutorial() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tutorial/000_cb588fd6d611f161.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("the tutorial {} is needed: {error}", path.display()))
}

fn manifest(file: &str) -> String {
    std::fs::read_to_string(lab_pvc_templates::manifests_dir().join(file)).unwrap()
}

#[test]
fn statefulsets_yaml_is_byte_for_byte_in_the_tutorial() {
    let text = manifest("statefulsets.yaml");
    assert!(
        tutorial().contains(&text),
        "statefulsets.yaml is not verbatim"
    );
    assert!(text.contains("# 将StatefulSet的名称改为\"nginx\""));
    assert!(text.contains("volume.alpha.kubernetes.io/storage-class: anything"));
}

#[test]
fn the_corrected_manifest_changes_only_the_image_and_says_why() {
    let fixed = manifest("statefulsets.fixed-image.yaml");
    assert!(fixed.starts_with("# Corrected"));
    assert!(fixed.contains("Why:"));
    let body: String = fixed
        .lines()
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        body,
        manifest("statefulsets.yaml").replace(
            "image: gcr.io/google_containers/nginx-slim:0.8",
            "image: registry.k8s.io/nginx-slim:0.21"
        )
    );
}
