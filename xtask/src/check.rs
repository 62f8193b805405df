//! `cargo xtask check <lab>`: like an online tutorial's "Check" button. A student applied the
//! manifests and typed the commands by hand; this verifies the lab's claims against their
//! namespace (default: `default`) on the cluster of their kubeconfig, creating and deleting
//! nothing of theirs, and prints which claims hold and, for those that do not, a hint from
//! the tutorial's troubleshooting advice. Exit 0 when every claim holds, 1 otherwise.

use std::path::PathBuf;

use k8s_labs_harness::provider::ClusterChoice;
use k8s_labs_harness::wait::wait_for;
use k8s_labs_harness::{Console, Lab, LabReport, Provider, RunOptions};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

use xtask::registry;

use crate::{Exit, Stop, cancel_on_signal, report_connect_error};

/// Pods a check starts are named with this prefix (e.g. `k8s-labs-dns-check`), so that a
/// check stopped midway can remove its own pod and never a student's.
pub const CHECK_POD_PREFIX: &str = "k8s-labs-";
/// How long removing those pods may take.
const POD_REMOVAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The flags of `cargo xtask check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The lab whose claims to check (see `cargo xtask labs`).
    pub lab: String,
    /// The namespace where the student applied the lab's manifests.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// The kubeconfig of the student's cluster [default: $KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context [default: its current context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Multiply how long a failing claim is retried by this factor (below 1 for a quicker
    /// answer, above 1 for a slow cluster that is still starting the pods).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = crate::parse_timeout_scale)]
    pub timeout_scale: f64,
}

/// Runs the check of `args.lab` and says which claims hold.
pub async fn check(args: CheckArgs) -> Exit {
    let Some(lab) = registry::find(&args.lab).map(|entry| (entry.check)()) else {
        eprintln!(
            "error: no check for a lab named {:?}; checks exist for: {}",
            args.lab,
            registry::lab_names().join(", ")
        );
        return Exit::Usage;
    };
    // The student's own cluster, as kubectl finds it: a check never creates a cluster.
    let choice = ClusterChoice::Kubeconfig {
        path: args.kubeconfig.clone(),
        context: args.context.clone(),
    };
    let provider = match Provider::from_choice(choice).await {
        Ok(provider) => provider,
        Err(error) => return report_connect_error(error),
    };
    let exit = check_on(&lab, &provider, &args.namespace, args.timeout_scale).await;
    let _ = provider.stop().await;
    exit
}

/// Runs `lab` in the student's `namespace`, each step's timeout scaled by `timeout_scale`.
async fn check_on(lab: &Lab, provider: &Provider, namespace: &str, timeout_scale: f64) -> Exit {
    let client = provider.client();
    match Api::<Namespace>::all(client.clone())
        .get_opt(namespace)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            eprintln!(
                "error: namespace {namespace:?} does not exist on this cluster; apply the \
                 lab's manifests there first, or name yours with --namespace"
            );
            return Exit::ClaimFailed;
        }
        Err(error) => {
            eprintln!("error: cannot read namespace {namespace:?}: {error}; check the cluster");
            return Exit::Cluster;
        }
    }
    let (cancel, signals) = cancel_on_signal();
    let options = RunOptions {
        existing_namespace: Some(namespace.to_string()),
        timeout_scale,
        ..RunOptions::default()
    };
    let report = lab
        .run_with(provider, &Console::stdout(), &cancel, &options)
        .await;
    // A try cut off by a step's deadline or a signal may leave its pod behind.
    remove_check_pods(provider, namespace).await;
    if report.interrupted {
        return Exit::Signal(signals.await.unwrap_or(Stop::Interrupt));
    }
    signals.abort();
    print!("{}", summary(&report));
    crate::run_labs::exit_of(&[report])
}

/// Which claims hold and which do not (with their hints), after the step-by-step output.
fn summary(report: &LabReport) -> String {
    let mut text = String::new();
    let holding = report.steps.iter().filter(|step| step.ok()).count();
    text.push_str(&format!(
        "{holding} of {} claims hold in namespace {}\n",
        report.total_steps, report.namespace
    ));
    for step in &report.steps {
        let mark = if step.ok() { "✓" } else { "✗" };
        text.push_str(&format!("  {mark} {}\n", step.name));
        if !step.ok() && !step.hint.is_empty() {
            for line in step.hint.lines() {
                text.push_str(&format!("      {line}\n"));
            }
        }
    }
    text
}

/// Deletes the pods a check started (by their name prefix) that a try cut off midway left
/// behind, and waits until they are gone, so the student's namespace is left as it was.
async fn remove_check_pods(provider: &Provider, namespace: &str) {
    let pods: Api<Pod> = Api::namespaced(provider.client(), namespace);
    let Ok(list) = pods.list(&ListParams::default().labels("run")).await else {
        return;
    };
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let deadline = tokio::time::Instant::now() + POD_REMOVAL_TIMEOUT;
    for pod in list.items {
        let name = pod.name_any();
        if !name.starts_with(CHECK_POD_PREFIX) {
            continue;
        }
        if let Err(error) = pods.delete(&name, &params).await {
            eprintln!("warning: cannot delete the check's pod {name}: {error}; delete it by hand");
            continue;
        }
        let what = format!("pod {name} to be gone");
        if let Err(error) =
            wait_for(pods.clone(), &name, &what, deadline, |pod| pod.is_none()).await
        {
            eprintln!("warning: {error:#}; delete pod {name} by hand");
        }
    }
}
