//! JUnit XML (quick-junit): a test suite per lab and a test case per step, so CI dashboards
//! show which claim of which lab failed. A failure carries the message with the diff as its
//! description and the diagnostics as the case's output; steps after the failure are skipped
//! with the reason.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::failure_text;
use crate::report::{LabReport, StepResult};

/// The JUnit XML of `reports`.
pub fn junit_xml(reports: &[LabReport]) -> anyhow::Result<String> {
    let mut junit = Report::new("k8s-labs");
    for report in reports {
        let mut suite = TestSuite::new(report.lab.as_str());
        suite.set_time(report.elapsed);
        for (index, name) in report.step_names.iter().enumerate() {
            let case_name = format!("{:02} {name}", index + 1);
            let (status, elapsed) = match report.steps.get(index) {
                Some(step) => {
                    let status = match &step.result {
                        StepResult::Passed { .. } => TestCaseStatus::success(),
                        StepResult::Skipped { reason } => {
                            let mut status = TestCaseStatus::skipped();
                            status.set_message(reason.as_str());
                            status
                        }
                        StepResult::Failed { message, .. } => {
                            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                            status.set_message(first_line(message));
                            if let Some(text) = failure_text(&step.result) {
                                status.set_description(text);
                            }
                            status
                        }
                    };
                    (status, Some(step.elapsed))
                }
                None => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(if report.interrupted {
                        "not run: the run was interrupted"
                    } else {
                        "not run: an earlier step failed"
                    });
                    (status, None)
                }
            };
            let mut case = TestCase::new(case_name, status);
            case.set_classname(format!("k8s-labs.{}", report.lab));
            if let Some(elapsed) = elapsed {
                case.set_time(elapsed);
            }
            if let Some(step) = report.steps.get(index) {
                let mut output = format!("$ {}\n", step.command);
                if let StepResult::Passed { output: text } = &step.result {
                    output.push_str(text);
                }
                if !step.ok()
                    && let Some(diagnostics) = &report.diagnostics
                {
                    output.push('\n');
                    output.push_str(diagnostics);
                }
                case.set_system_out(output);
            }
            suite.add_test_case(case);
        }
        if let Some(error) = &report.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(first_line(error));
            status.set_description(error.as_str());
            suite.add_test_case(TestCase::new("run and cleanup", status));
        }
        junit.add_test_suite(suite);
    }
    Ok(junit.to_string()?)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::failed_run;

    #[test]
    fn a_suite_per_lab_and_a_case_per_step_with_the_diff_kept() {
        let xml = junit_xml(&[failed_run()]).unwrap();
        assert!(
            xml.contains("<testsuite name=\"statefulset-dns\" tests=\"3\""),
            "{xml}"
        );
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("disabled=\"1\""), "{xml}");
        assert!(xml.contains("name=\"01 apply web.yaml\""), "{xml}");
        assert!(
            xml.contains("message=\"claim failed: pods &lt;ready&gt;\""),
            "{xml}"
        );
        assert!(xml.contains("-web-1"), "the diff is in the failure: {xml}");
        assert!(
            xml.contains("pod web-0: Running"),
            "the diagnostics too: {xml}"
        );
        assert!(xml.contains("not run: an earlier step failed"), "{xml}");
    }
}
