//! What every lab's end-to-end test does: start the embedded cluster (or connect to the
//! cluster of `LAB_KUBECONFIG`), run the lab, stop the cluster, and insist that every step
//! ran and passed. One copy here keeps the labs' tests to their claims.

use k8s_labs_cluster::ClusterConfig;
use tokio_util::sync::CancellationToken;

use std::collections::BTreeSet;

use crate::console::Console;
use crate::expect::redact;
use crate::lab::{Lab, Language};
use crate::provider::Provider;
use crate::report::{LabReport, StepResult};

/// Starts the embedded cluster, or panics with the reason: a skipped end-to-end test would
/// hide that nothing was checked (missing root or packages say so through preflight).
pub async fn start_embedded_cluster() -> Provider {
    if let Err(error) = k8s_labs_cluster::preflight() {
        panic!("the embedded cluster cannot run here: {error:#}");
    }
    match Provider::embedded(ClusterConfig::default()).await {
        Ok(provider) => provider,
        Err(error) => panic!("the embedded cluster did not start: {error:#}"),
    }
}

/// The environment variable that points lab tests at a real cluster's kubeconfig.
pub const LAB_KUBECONFIG: &str = "LAB_KUBECONFIG";
/// The environment variable naming the context of [`LAB_KUBECONFIG`] (default: current).
pub const LAB_CONTEXT: &str = "LAB_CONTEXT";

/// The cluster a lab test runs on: the one of `LAB_KUBECONFIG` when it is set, else a fresh
/// embedded cluster. Panics with the reason when neither can be had.
pub async fn cluster_for_tests() -> Provider {
    let Some(path) = std::env::var_os(LAB_KUBECONFIG) else {
        return start_embedded_cluster().await;
    };
    let context = std::env::var(LAB_CONTEXT).ok();
    match Provider::kubeconfig(std::path::Path::new(&path), context.as_deref()).await {
        Ok(provider) => provider,
        Err(error) => panic!(
            "cannot use {LAB_KUBECONFIG}={}: {error}",
            path.to_string_lossy()
        ),
    }
}

/// One line per step with its result, for assertion messages.
pub fn summary(report: &LabReport) -> String {
    report
        .steps
        .iter()
        .map(|step| format!("{}: {:?}\n", step.name, step.result))
        .collect()
}

/// Runs `lab` on [`cluster_for_tests`] and asserts that all of its `steps` ran and passed
/// (none skipped) and that its namespace was deleted.
pub async fn assert_lab_passes(lab: Lab, steps: usize) {
    let provider = cluster_for_tests().await;
    let console = Console::capturing();
    let report = lab
        .run(&provider, &console, &CancellationToken::new())
        .await;
    if let Err(error) = provider.stop().await {
        panic!("the embedded cluster did not stop cleanly: {error:#}");
    }
    assert!(
        report.passed(),
        "{}\n{}",
        summary(&report),
        console.captured()
    );
    assert_eq!(report.steps.len(), steps, "{}", summary(&report));
    assert!(
        report
            .steps
            .iter()
            .all(|step| matches!(step.result, StepResult::Passed { .. })),
        "every step ran and passed (none skipped):\n{}",
        summary(&report)
    );
    assert!(
        report.namespace_deleted,
        "namespace {} is left",
        report.namespace
    );
}

/// Whether `c` is a CJK ideograph or CJK punctuation.
fn is_chinese(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3000}'..='\u{303f}' | '\u{ff00}'..='\u{ffef}')
}

/// What every lab promises without a cluster: each step explains itself in English and in
/// Chinese in 1–4 sentences (for transcripts and walkthroughs), and its `expected/` directory
/// holds exactly the golden files named (as `"<name>.txt"` literals) in the lab's sources
/// under `src`, each non-empty and fully redacted (no IP, UID, age, generated suffix or
/// namespace of one run).
pub fn assert_lab_documented(lab: &Lab, src: &std::path::Path) {
    for step in lab.steps() {
        let english = step.explanation(Language::En);
        let chinese = step.explanation(Language::Zh);
        let name = step.name();
        assert!(!english.is_empty(), "step '{name}' has no explanation");
        assert!(
            !english.chars().any(is_chinese),
            "step '{name}': the English explanation has Chinese in it"
        );
        // Zh falls back to En when a step has no Chinese text; that must not happen here.
        assert_ne!(chinese, english, "step '{name}' has no Chinese explanation");
        assert!(
            chinese.chars().filter(|c| is_chinese(*c)).count() >= 10,
            "step '{name}': the Chinese explanation is not Chinese: {chinese}"
        );
        let english_sentences = english.trim_end_matches('.').matches(". ").count() + 1;
        let chinese_sentences = chinese.trim_end_matches('。').matches('。').count() + 1;
        assert!(
            english_sentences <= 4 && chinese_sentences <= 4,
            "step '{name}': explanations are 1-4 sentences ({english_sentences} en, \
             {chinese_sentences} zh)"
        );
    }
    let lab_name = lab.name();
    let expected = lab
        .expected_dir()
        .unwrap_or_else(|| panic!("lab {lab_name} has no expected/ directory"));
    let named = golden_files_named_in(src);
    assert!(
        !named.is_empty(),
        "lab {lab_name} compares no output with a golden file"
    );
    let present: BTreeSet<String> = std::fs::read_dir(expected)
        .unwrap_or_else(|error| {
            panic!(
                "no {} ({error}); create it with `cargo xtask lab {lab_name} --bless`",
                expected.display()
            )
        })
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        named, present,
        "expected/ must hold exactly the golden files src/ names \
         (create missing ones with `cargo xtask lab {lab_name} --bless`)"
    );
    let namespace_prefix = format!("lab-{lab_name}-");
    for file in &present {
        let text = std::fs::read_to_string(expected.join(file))
            .unwrap_or_else(|error| panic!("cannot read {file}: {error}"));
        assert!(!text.trim().is_empty(), "{file} is empty");
        assert_eq!(
            redact(&text),
            text,
            "{file} holds a value of one run (IP, UID, age or generated suffix)"
        );
        assert!(
            !text.contains(&namespace_prefix),
            "{file} holds the namespace of one run instead of [NS]"
        );
    }
}

/// The `"<name>.txt"` string literals in the Rust files of `src`: the golden files named.
fn golden_files_named_in(src: &std::path::Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let entries = std::fs::read_dir(src)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", src.display()));
    for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (end, _) in text.match_indices(".txt\"") {
            if let Some(start) = text[..end].rfind('"') {
                names.insert(format!("{}.txt", &text[start + 1..end]));
            }
        }
    }
    names
}
