//! Lab replicaset-scale: the tutorial's section 无状态. A ReplicaSet `example-app` behind the
//! Service `example-service`, scaled up and down through the scale subresource (what
//! `kubectl scale` does), healing itself when a pod is deleted.
//!
//! The tutorial's manifests are applied verbatim first and their errata are shown as steps
//! named for them: `example-image:latest` exists on no registry (the pods cannot pull it), and
//! `targetPort: 8080` points at a port nginx does not listen on (the Service has endpoints but
//! gives no answer). The corrected manifests beside them are applied next.

mod kubectl;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use k8s_labs_harness::expect::{expect_contains, expect_text, html_title};
use k8s_labs_harness::{Lab, Step, StepContext, StepOutcome};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::ResourceExt;

use crate::kubectl::is_generated_name;
use k8s_labs_harness::table::{endpoint_addresses, endpoints_column, pod_table};

/// The lab's name on the command line and in namespaces.
pub const NAME: &str = "replicaset-scale";
/// The ReplicaSet of replicaset.yaml.
const REPLICASET: &str = "example-app";
/// The Service of service.yaml.
const SERVICE: &str = "example-service";
/// The pods' labels in replicaset.yaml.
const SELECTOR: &str = "app=example";
/// The image of the one-shot pods that curl the Service (it carries curl).
const CLIENT_IMAGE: &str = "nginx";
/// curl's exit codes for "no answer from the server": 7 connection refused, 28 timeout,
/// 52 empty reply, 56 connection reset. Not 6 (name not resolved): that is another failure.
const NO_ANSWER_EXIT_CODES: [i32; 4] = [7, 28, 52, 56];

/// Timeout of steps that wait for pods to start or go.
const POD_TIMEOUT: Duration = Duration::from_secs(90);
/// Timeout of steps that run a command (with retries while DNS/endpoints propagate).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(45);

/// The lab as the tutorial describes it.
pub fn lab() -> Lab {
    Lab::new(
        NAME,
        "ReplicaSet example-app behind Service example-service, scaled and self-healing",
        manifests_dir(),
    )
    .step(Step::new(
        "apply replicaset.yaml (verbatim)",
        "kubectl apply -f replicaset.yaml",
        COMMAND_TIMEOUT,
        |ctx| {
            apply_expecting(
                ctx,
                "replicaset.yaml",
                "replicaset.apps/example-app created\n",
            )
        },
    ))
    .step(Step::new(
        "erratum: image example-image:latest cannot be pulled (ErrImagePull/ImagePullBackOff)",
        "kubectl get pod -l app=example",
        POD_TIMEOUT,
        image_cannot_be_pulled,
    ))
    .step(Step::new(
        "apply replicaset.fixed-image.yaml (image nginx) and delete the pods of the old image",
        "kubectl apply -f replicaset.fixed-image.yaml; kubectl delete pod -l app=example",
        COMMAND_TIMEOUT,
        apply_fixed_image,
    ))
    .step(Step::new(
        "3 pods become Running and Ready",
        "kubectl get pod -l app=example",
        POD_TIMEOUT,
        |ctx| pods_ready(ctx, 3),
    ))
    .step(Step::new(
        "apply service.yaml (verbatim)",
        "kubectl apply -f service.yaml",
        COMMAND_TIMEOUT,
        |ctx| apply_expecting(ctx, "service.yaml", "service/example-service created\n"),
    ))
    .step(Step::new(
        "Service example-service has a cluster IP and 3 endpoints",
        "kubectl get svc example-service; kubectl get ep example-service",
        COMMAND_TIMEOUT,
        |ctx| service_endpoints(ctx, 8080),
    ))
    .step(Step::new(
        "erratum: targetPort 8080 — curl example-service gets no answer while its endpoints exist",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         curl -sS --max-time 3 http://example-service",
        COMMAND_TIMEOUT,
        target_port_gets_no_answer,
    ))
    .step(Step::new(
        "apply service.fixed-target-port.yaml (targetPort 80): endpoints move to port 80",
        "kubectl apply -f service.fixed-target-port.yaml; kubectl get ep example-service",
        COMMAND_TIMEOUT,
        apply_fixed_target_port,
    ))
    .step(Step::new(
        "curl example-service from a pod returns the nginx page",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         curl -s --max-time 3 http://example-service",
        COMMAND_TIMEOUT,
        curl_service_page,
    ))
    .step(Step::new(
        "scale to 5 through the scale subresource: 5 pods Ready, 5 endpoints",
        "kubectl scale replicaset example-app --replicas=5",
        POD_TIMEOUT,
        |ctx| scale_to(ctx, 5),
    ))
    .step(Step::new(
        "scale to 2: 2 pods remain, 2 endpoints",
        "kubectl scale replicaset example-app --replicas=2",
        POD_TIMEOUT,
        |ctx| scale_to(ctx, 2),
    ))
    .step(Step::new(
        "delete one pod: the ReplicaSet replaces it with a pod of a new name",
        "kubectl delete pod <first pod>; kubectl get pod -l app=example",
        POD_TIMEOUT,
        self_healing,
    ))
    .step(Step::new(
        "pods are interchangeable: random names owned by the ReplicaSet, not ordinals",
        "kubectl get pod -l app=example -o wide",
        COMMAND_TIMEOUT,
        pods_are_interchangeable,
    ))
}

/// `manifests/replicaset-scale/` of the workspace this crate was built in.
pub fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/replicaset-scale")
}

/// `kubectl apply -f <file>`, checking kubectl's one line per object.
async fn apply_expecting(ctx: StepContext, file: &str, expected: &str) -> Result<StepOutcome> {
    let applied = ctx.apply(file).await?;
    let actual: String = applied.iter().map(|object| format!("{object}\n")).collect();
    expect_text(&format!("kubectl apply -f {file}"), expected, &actual)?;
    Ok(StepOutcome::passed(actual))
}

/// The 3 pods of the verbatim ReplicaSet wait on an image that no registry has.
async fn image_cannot_be_pulled(ctx: StepContext) -> Result<StepOutcome> {
    let pods = ctx.wait_image_pull_failures(SELECTOR, 3).await?;
    Ok(StepOutcome::passed(pod_table(&pods)))
}

/// Applies the corrected image. A ReplicaSet never updates the pods it has (only new ones get
/// the new template), so the pods stuck on the old image are deleted and the ReplicaSet
/// recreates them from the corrected template.
async fn apply_fixed_image(ctx: StepContext) -> Result<StepOutcome> {
    let applied = ctx.apply("replicaset.fixed-image.yaml").await?;
    let mut output: String = applied.iter().map(|object| format!("{object}\n")).collect();
    expect_text(
        "kubectl apply changes the ReplicaSet's template",
        "replicaset.apps/example-app configured\n",
        &output,
    )?;
    let old: Vec<String> = ctx
        .pods(SELECTOR)
        .await?
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    for name in &old {
        ctx.delete_pod(name).await?;
        output.push_str(&format!("pod \"{name}\" deleted\n"));
    }
    ctx.remember("image-pull-pods", serde_json::json!(old));
    Ok(StepOutcome::passed(output))
}

/// Exactly `count` pods Running and Ready, none of them one of the pods of the broken image,
/// all running the corrected image.
async fn pods_ready(ctx: StepContext, count: usize) -> Result<StepOutcome> {
    let pods = ctx.wait_ready_pods(SELECTOR, count).await?;
    let old: Vec<String> = ctx
        .recall("image-pull-pods")
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default();
    let images: String = pods
        .iter()
        .map(|pod| format!("{} {}\n", pod.name_any(), image_of(pod)))
        .collect();
    let expected: String = pods
        .iter()
        .map(|pod| format!("{} nginx\n", pod.name_any()))
        .collect();
    expect_text("the pods run the corrected image", &expected, &images)?;
    if let Some(stale) = pods.iter().find(|pod| old.contains(&pod.name_any())) {
        bail!(
            "pod {} of the unpullable image is still there",
            stale.name_any()
        );
    }
    Ok(StepOutcome::passed(pod_table(&pods)))
}

fn image_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.containers.first())
        .and_then(|container| container.image.clone())
        .unwrap_or_default()
}

/// `kubectl get svc` shows a cluster IP; `kubectl get ep` lists the pods' IPs on `port`.
async fn service_endpoints(ctx: StepContext, port: i32) -> Result<StepOutcome> {
    let service: Service = ctx.get(SERVICE).await?;
    let cluster_ip = service
        .spec
        .as_ref()
        .and_then(|spec| spec.cluster_ip.clone())
        .unwrap_or_default();
    if cluster_ip.parse::<std::net::IpAddr>().is_err() {
        bail!("Service {SERVICE} has no cluster IP (CLUSTER-IP {cluster_ip:?})");
    }
    let endpoints = endpoints_of_ready_pods(&ctx, port).await?;
    Ok(StepOutcome::passed(format!(
        "service {SERVICE}: CLUSTER-IP {cluster_ip}\nendpoints {SERVICE}: {endpoints}"
    )))
}

/// Waits until the Service's endpoints are exactly the Ready pods' IPs on `port`; returns the
/// ENDPOINTS column.
async fn endpoints_of_ready_pods(ctx: &StepContext, port: i32) -> Result<String> {
    ctx.retry(|| async {
        let pods = ctx.pods(SELECTOR).await?;
        let expected = endpoints_column(
            pods.iter()
                .filter(|pod| pod.metadata.deletion_timestamp.is_none())
                .filter_map(|pod| pod.status.as_ref()?.pod_ip.clone())
                .map(|ip| (ip, port)),
        );
        let endpoints: Endpoints = ctx.get(SERVICE).await?;
        let actual = endpoints_column(endpoint_addresses(&endpoints));
        expect_text(
            &format!("endpoints {SERVICE} are the pods' IPs on port {port}"),
            &expected,
            &actual,
        )?;
        Ok(actual)
    })
    .await
}

/// With targetPort 8080 the Service forwards to a port nothing listens on: curl by the
/// Service's name resolves it but gets no answer (bounded by --max-time), while the endpoints
/// are there.
async fn target_port_gets_no_answer(ctx: StepContext) -> Result<StepOutcome> {
    let endpoints = endpoints_of_ready_pods(&ctx, 8080).await?;
    let output = ctx
        .run_once(
            "curl",
            CLIENT_IMAGE,
            &[
                "curl",
                "-sS",
                "--max-time",
                "3",
                &format!("http://{SERVICE}"),
            ],
        )
        .await?;
    let log = output.combined();
    if log.contains("<title>Welcome to nginx!</title>") {
        bail!("example-service answered with the nginx page through targetPort 8080:\n{log}");
    }
    match output.exit_code {
        Some(code) if NO_ANSWER_EXIT_CODES.contains(&code) => Ok(StepOutcome::passed(format!(
            "endpoints {SERVICE}: {endpoints}\ncurl exit code {code}: {log}"
        ))),
        other => bail!(
            "curl should get no answer from the Service (exit code 7, 28, 52 or 56), \
             got exit code {other:?}:\n{log}"
        ),
    }
}

/// `kubectl apply -f service.fixed-target-port.yaml` → configured; endpoints now on port 80.
async fn apply_fixed_target_port(ctx: StepContext) -> Result<StepOutcome> {
    let applied = ctx.apply("service.fixed-target-port.yaml").await?;
    let actual: String = applied.iter().map(|object| format!("{object}\n")).collect();
    expect_text(
        "kubectl apply changes the Service's targetPort",
        "service/example-service configured\n",
        &actual,
    )?;
    let endpoints = endpoints_of_ready_pods(&ctx, 80).await?;
    Ok(StepOutcome::passed(format!(
        "{actual}endpoints {SERVICE}: {endpoints}"
    )))
}

/// `curl example-service` from a pod: the name resolves to the cluster IP, the Service
/// forwards to a pod's port 80, nginx answers its welcome page.
async fn curl_service_page(ctx: StepContext) -> Result<StepOutcome> {
    let mut attempt = 0;
    let page = ctx
        .retry(|| {
            attempt += 1;
            let pod = format!("curl-{attempt}");
            let ctx = ctx.clone();
            async move {
                let output = ctx
                    .run_once(
                        &pod,
                        CLIENT_IMAGE,
                        &[
                            "curl",
                            "-sS",
                            "--max-time",
                            "3",
                            &format!("http://{SERVICE}"),
                        ],
                    )
                    .await?;
                expect_contains(
                    "example-service answers with the nginx welcome page",
                    "<title>Welcome to nginx!</title>",
                    &output.stdout,
                )
                .map_err(|mismatch| mismatch.with_detail(output.combined()))?;
                Ok(output.stdout)
            }
        })
        .await?;
    Ok(StepOutcome::passed(html_title(&page)))
}

/// `kubectl scale --replicas=N`; then exactly N pods Ready and N endpoints on port 80.
async fn scale_to(ctx: StepContext, replicas: usize) -> Result<StepOutcome> {
    let wanted = i32::try_from(replicas)?;
    ctx.scale::<ReplicaSet>(REPLICASET, wanted).await?;
    let pods = ctx.wait_ready_pods(SELECTOR, replicas).await?;
    let endpoints = endpoints_of_ready_pods(&ctx, 80).await?;
    let count = endpoints.split(',').count();
    if count != replicas {
        bail!("endpoints {SERVICE} has {count} addresses, not {replicas}: {endpoints}");
    }
    Ok(StepOutcome::passed(format!(
        "replicaset.apps/{REPLICASET} scaled\n{}endpoints {SERVICE}: {endpoints}",
        pod_table(&pods)
    )))
}

/// Deleting one pod: the ReplicaSet creates a replacement with a new random name, and the
/// count is back to what `replicas` says.
async fn self_healing(ctx: StepContext) -> Result<StepOutcome> {
    let before: BTreeSet<String> = ctx
        .pods(SELECTOR)
        .await?
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    let count = before.len();
    let Some(victim) = before.iter().next().cloned() else {
        bail!("no pods {SELECTOR} to delete");
    };
    ctx.delete_pod(&victim).await?;
    let what = format!("{count} Ready pods {SELECTOR} without {victim}");
    let pods = ctx
        .wait_pods(SELECTOR, &what, |pods| {
            k8s_labs_harness::workload::are_ready_pods(pods, count)
                && pods.iter().all(|pod| pod.name_any() != victim)
        })
        .await?;
    let after: BTreeSet<String> = pods.iter().map(ResourceExt::name_any).collect();
    let new: Vec<&String> = after.difference(&before).collect();
    let kept: Vec<&String> = after.intersection(&before).collect();
    expect_text(
        "one new pod replaces the deleted one; the others stay",
        &format!("new pods: 1\nkept pods: {}\n", count - 1),
        &format!("new pods: {}\nkept pods: {}\n", new.len(), kept.len()),
    )?;
    Ok(StepOutcome::passed(format!(
        "pod \"{victim}\" deleted\nreplaced by {}\n{}",
        new.first().map(|name| name.as_str()).unwrap_or_default(),
        pod_table(&pods)
    )))
}

/// The pods' names are `example-app-` plus a random suffix (generateName), each owned by
/// the ReplicaSet: nothing tells one pod from another, unlike a StatefulSet's `web-0`.
async fn pods_are_interchangeable(ctx: StepContext) -> Result<StepOutcome> {
    let pods = ctx.pods(SELECTOR).await?;
    let actual: String = pods
        .iter()
        .map(|pod| {
            let owner = pod
                .owner_references()
                .iter()
                .find(|owner| owner.controller == Some(true))
                .map(|owner| format!("{}/{}", owner.kind, owner.name))
                .unwrap_or_else(|| "(no controller)".to_string());
            let name = if is_generated_name(&pod.name_any(), REPLICASET) {
                "example-app-<random>"
            } else {
                "(not a generated name)"
            };
            format!("{name} owned by {owner}\n")
        })
        .collect();
    let expected = "example-app-<random> owned by ReplicaSet/example-app\n".repeat(pods.len());
    expect_text(
        "every pod has a random name and is controlled by the ReplicaSet",
        &expected,
        &actual,
    )
    .map_err(|mismatch| mismatch.with_detail(pod_table(&pods)))?;
    Ok(StepOutcome::passed(pod_table(&pods)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_has_the_issues_steps_with_errata_named() {
        let lab = lab();
        assert_eq!(lab.name(), "replicaset-scale");
        assert_eq!(lab.steps().len(), 13);
        let errata: Vec<&str> = lab
            .steps()
            .iter()
            .map(|step| step.name())
            .filter(|name| name.starts_with("erratum:"))
            .collect();
        assert_eq!(errata.len(), 2, "{errata:?}");
        assert!(errata[0].contains("example-image:latest"));
        assert!(errata[1].contains("targetPort 8080"));
        for file in [
            "replicaset.yaml",
            "replicaset.fixed-image.yaml",
            "service.yaml",
            "service.fixed-target-port.yaml",
        ] {
            assert!(lab.manifests().join(file).is_file(), "{file}");
        }
    }
}
