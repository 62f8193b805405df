//! Machine-readable results: per lab and per step the status, duration, tries, output and,
//! for a failure, the message, the diff and the diagnostics. Durations are seconds as
//! floating-point numbers.

use serde_json::{Value, json};

use super::{failure_text, step_status};
use crate::report::{LabReport, StepResult};

/// The JSON document of `reports`: `{"labs": [...], "passed": bool}`.
pub fn json_report(reports: &[LabReport]) -> Value {
    let labs: Vec<Value> = reports.iter().map(lab_json).collect();
    json!({
        "passed": reports.iter().all(LabReport::passed),
        "labs": labs,
    })
}

fn lab_json(report: &LabReport) -> Value {
    let steps: Vec<Value> = report
        .step_names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let mut step = json!({
                "index": index + 1,
                "name": name,
                "status": step_status(report, index),
            });
            if let (Some(record), Some(object)) = (report.steps.get(index), step.as_object_mut()) {
                object.insert("command".into(), json!(record.command));
                object.insert(
                    "elapsed_seconds".into(),
                    json!(record.elapsed.as_secs_f64()),
                );
                object.insert(
                    "timeout_seconds".into(),
                    json!(record.timeout.as_secs_f64()),
                );
                object.insert("tries".into(), json!(record.tries));
                object.insert("first_failed_try".into(), json!(record.first_failed_try));
                let blessed: Vec<String> = record
                    .blessed
                    .iter()
                    .map(|(path, _)| path.display().to_string())
                    .collect();
                object.insert("blessed".into(), json!(blessed));
                match &record.result {
                    StepResult::Passed { output } => {
                        object.insert("output".into(), json!(output));
                    }
                    StepResult::Skipped { reason } => {
                        object.insert("reason".into(), json!(reason));
                    }
                    StepResult::Failed { message, mismatch } => {
                        object.insert("message".into(), json!(message));
                        object.insert("failure".into(), json!(failure_text(&record.result)));
                        if let Some(mismatch) = mismatch {
                            object.insert("claim".into(), json!(mismatch.claim));
                            object.insert("diff".into(), json!(mismatch.diff()));
                        }
                    }
                }
            }
            step
        })
        .collect();
    json!({
        "lab": report.lab,
        "title": report.title,
        "cluster": report.cluster,
        "namespace": report.namespace,
        "passed": report.passed(),
        "interrupted": report.interrupted,
        "error": report.error,
        "namespace_deleted": report.namespace_deleted,
        "kept": report.kept,
        "elapsed_seconds": report.elapsed.as_secs_f64(),
        "diagnostics": report.diagnostics,
        "steps": steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::failed_run;

    #[test]
    fn every_step_has_a_status_and_the_failure_keeps_its_diff() {
        let document = json_report(&[failed_run()]);
        assert_eq!(document["passed"], json!(false));
        let steps = document["labs"][0]["steps"].as_array().unwrap();
        let statuses: Vec<&str> = steps
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, vec!["passed", "failed", "not-run"]);
        assert_eq!(steps[0]["elapsed_seconds"], json!(1.5));
        assert_eq!(steps[1]["tries"], json!(3));
        assert!(steps[1]["diff"].as_str().unwrap().contains("-web-1"));
        assert!(
            document["labs"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("pod web-0")
        );
    }
}
