//! The tutorial's manifests are kept verbatim; the corrected ones differ only where they say.

use std::path::PathBuf;

fn tutorial() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tutorial/000_cb588fd6d611f161.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("the tutorial {} is needed: {error}", path.display()))
}

fn manifest(file: &str) -> String {
    std::fs::read_to_string(lab_replicaset_scale::manifests_dir().join(file)).unwrap()
}

/// The manifest without its leading comment lines (the corrected files say what changed).
fn without_header(text: &str) -> String {
    text.lines()
        .skip_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn the_verbatim_manifests_are_byte_for_byte_in_the_tutorial() {
    let tutorial = tutorial();
    for file in ["replicaset.yaml", "service.yaml"] {
        let text = manifest(file);
        assert!(tutorial.contains(&text), "{file} is not verbatim");
    }
    assert!(manifest("replicaset.yaml").contains("image: example-image:latest"));
    assert!(manifest("service.yaml").contains("targetPort: 8080"));
}

#[test]
fn the_corrected_manifests_change_one_line_and_say_why() {
    for (original, fixed, from, to) in [
        (
            "replicaset.yaml",
            "replicaset.fixed-image.yaml",
            "image: example-image:latest",
            "image: nginx",
        ),
        (
            "service.yaml",
            "service.fixed-target-port.yaml",
            "targetPort: 8080",
            "targetPort: 80",
        ),
    ] {
        let fixed_text = manifest(fixed);
        assert!(
            fixed_text.starts_with("# Corrected"),
            "{fixed} has no header"
        );
        assert!(fixed_text.contains("Why:"), "{fixed} does not say why");
        assert_eq!(
            without_header(&fixed_text),
            manifest(original).replace(from, to),
            "{fixed}"
        );
    }
}
