//! What each step of the lab does and claims: the bodies behind the steps `lab()` lists.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use k8s_labs_harness::expect::object::expect_object;
use k8s_labs_harness::expect::relations::endpoints_are_ready_pod_ips;
use k8s_labs_harness::expect::{expect_text, html_title};
use k8s_labs_harness::table::{endpoint_addresses, endpoints_column, pod_table};
use k8s_labs_harness::workload::are_ready_pods;
use k8s_labs_harness::{StepContext, StepOutcome, ValueKey};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::ResourceExt;

use crate::{CLIENT_IMAGE, NO_ANSWER_EXIT_CODES, REPLICASET, SELECTOR, SERVICE};

/// The pods of the unpullable image that the erratum's step deleted; none may come back.
const BROKEN_IMAGE_PODS: ValueKey<Vec<String>> =
    ValueKey::new("the pods of the unpullable image it deleted");

/// `kubectl apply -f <file>`, checking kubectl's one line per object against `golden`.
pub(crate) async fn apply_expecting(
    ctx: StepContext,
    file: &str,
    golden: &str,
) -> Result<StepOutcome> {
    let actual = ctx.apply_output(file).await?;
    let shown = ctx.expect_golden(golden, &format!("kubectl apply -f {file}"), &actual)?;
    Ok(StepOutcome::passed(shown))
}

/// The 3 pods of the verbatim ReplicaSet wait on an image that no registry has.
pub(crate) async fn image_cannot_be_pulled(ctx: StepContext) -> Result<StepOutcome> {
    let pods = ctx.wait_image_pull_failures(SELECTOR, 3).await?;
    let shown = ctx.expect_golden(
        "get-pod-image-pull.txt",
        "the 3 pods wait on an image that cannot be pulled",
        &pod_table(&pods),
    )?;
    Ok(StepOutcome::passed(shown))
}

/// Applies the corrected image. A ReplicaSet never updates the pods it has (only new ones get
/// the new template), so the pods stuck on the old image are deleted and the ReplicaSet
/// recreates them from the corrected template.
pub(crate) async fn apply_fixed_image(ctx: StepContext) -> Result<StepOutcome> {
    let mut output = ctx.apply_output("replicaset.fixed-image.yaml").await?;
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
    ctx.remember(&BROKEN_IMAGE_PODS, old);
    let shown = ctx.expect_golden(
        "apply-fixed-image.txt",
        "kubectl apply changes the ReplicaSet's template; the 3 stuck pods are deleted",
        &output,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// Exactly 3 pods Running and Ready, none of them one of the pods of the broken image, all
/// running the corrected image.
pub(crate) async fn pods_ready(ctx: StepContext) -> Result<StepOutcome> {
    let pods = ctx.wait_ready_pods(SELECTOR, 3).await?;
    let old = ctx.recall(&BROKEN_IMAGE_PODS)?;
    for pod in &pods {
        expect_object(
            &format!("pod {} runs the corrected image", pod.name_any()),
            "spec: {containers: [{name: app-container, image: nginx}]}",
            pod,
        )?;
        if old.contains(&pod.name_any()) {
            bail!(
                "pod {} of the unpullable image is still there",
                pod.name_any()
            );
        }
    }
    let shown = ctx.expect_golden(
        "get-pod-ready.txt",
        "3 pods of the corrected template are Running and Ready",
        &pod_table(&pods),
    )?;
    Ok(StepOutcome::passed(shown))
}

/// Waits until the Service's endpoints are exactly the Ready pods' IPs on `port`; returns
/// `kubectl get svc` and `kubectl get ep` as one line each.
async fn service_and_endpoints(ctx: &StepContext, port: i32) -> Result<String> {
    let service: Service = ctx.get(SERVICE).await?;
    let cluster_ip = service
        .spec
        .as_ref()
        .and_then(|spec| spec.cluster_ip.clone())
        .unwrap_or_else(|| "<none>".to_string());
    let endpoints = ctx
        .retry(|| async {
            let pods = ctx.pods(SELECTOR).await?;
            let endpoints: Endpoints = ctx.get(SERVICE).await?;
            endpoints_are_ready_pod_ips(&endpoints, &pods, port)?;
            Ok(endpoints_column(endpoint_addresses(&endpoints)))
        })
        .await?;
    Ok(format!(
        "service {SERVICE}: CLUSTER-IP {cluster_ip}\nendpoints {SERVICE}: {endpoints}\n"
    ))
}

/// `kubectl get svc` shows a cluster IP (an address, redacted to `[IP]`); `kubectl get ep`
/// lists the pods' IPs on targetPort 8080.
pub(crate) async fn service_endpoints(ctx: StepContext) -> Result<StepOutcome> {
    let service: Service = ctx.get(SERVICE).await?;
    expect_object(
        "Service example-service is a ClusterIP Service from port 80 to targetPort 8080",
        "spec: {type: ClusterIP, selector: {app: example}, \
         ports: [{protocol: TCP, port: 80, targetPort: 8080}]}",
        &service,
    )?;
    let actual = service_and_endpoints(&ctx, 8080).await?;
    let shown = ctx.expect_golden(
        "svc-ep-8080.txt",
        "the Service has a cluster IP and the 3 pods as endpoints on port 8080",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// With targetPort 8080 the Service forwards to a port nothing listens on: curl by the
/// Service's name resolves it but gets no answer (bounded by --max-time), while the endpoints
/// are there. How curl fails (refused, reset, timeout) depends on the cluster's proxy, so the
/// claim is the set of "no answer" exit codes, not a golden file.
pub(crate) async fn target_port_gets_no_answer(ctx: StepContext) -> Result<StepOutcome> {
    let endpoints = service_and_endpoints(&ctx, 8080).await?;
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
        Some(code) if NO_ANSWER_EXIT_CODES.contains(&code) => {
            let shown = ctx
                .redactions()
                .apply(&format!("{endpoints}curl exit code {code}: {log}"));
            Ok(StepOutcome::passed(shown))
        }
        other => bail!(
            "curl should get no answer from the Service (exit code 7, 28, 52 or 56), \
             got exit code {other:?}:\n{log}"
        ),
    }
}

/// `kubectl apply -f service.fixed-target-port.yaml` → configured; endpoints now on port 80.
pub(crate) async fn apply_fixed_target_port(ctx: StepContext) -> Result<StepOutcome> {
    let mut actual = ctx.apply_output("service.fixed-target-port.yaml").await?;
    let service: Service = ctx.get(SERVICE).await?;
    expect_object(
        "the Service now forwards port 80 to targetPort 80",
        "spec: {ports: [{port: 80, targetPort: 80}]}",
        &service,
    )?;
    actual.push_str(&service_and_endpoints(&ctx, 80).await?);
    let shown = ctx.expect_golden(
        "apply-fixed-target-port.txt",
        "kubectl apply changes the Service; its endpoints move to port 80",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// `curl example-service` from a pod: the name resolves to the cluster IP, the Service
/// forwards to a pod's port 80, nginx answers its welcome page.
pub(crate) async fn curl_service_page(ctx: StepContext) -> Result<StepOutcome> {
    let page = crate::fetch_service_page(&ctx, "curl").await?;
    let shown = ctx.expect_golden(
        "curl-example-service.txt",
        "the page's title is nginx's welcome",
        &html_title(&page),
    )?;
    Ok(StepOutcome::passed(shown))
}

/// `kubectl scale --replicas=N`; then exactly N pods Ready, the ReplicaSet's status counting
/// them, and N endpoints on port 80.
pub(crate) async fn scale_to(
    ctx: StepContext,
    replicas: usize,
    golden: &str,
) -> Result<StepOutcome> {
    let wanted = i32::try_from(replicas)?;
    ctx.scale::<ReplicaSet>(REPLICASET, wanted).await?;
    let pods = ctx.wait_ready_pods(SELECTOR, replicas).await?;
    // The controller writes its status a moment after the pods it counts are Ready.
    let status = format!(
        "status: {{replicas: {replicas}, readyReplicas: {replicas}, availableReplicas: {replicas}}}"
    );
    ctx.retry(|| async {
        let replicaset: ReplicaSet = ctx.get(REPLICASET).await?;
        expect_object(
            &format!("ReplicaSet example-app counts {replicas} ready replicas"),
            &status,
            &replicaset,
        )
    })
    .await?;
    let endpoints = service_and_endpoints(&ctx, 80).await?;
    let actual = format!(
        "replicaset.apps/{REPLICASET} scaled\n{}{endpoints}",
        pod_table(&pods)
    );
    let shown = ctx.expect_golden(
        golden,
        &format!("{replicas} pods Ready and {replicas} endpoints on port 80"),
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// Deleting one pod: the ReplicaSet creates a replacement with a new random name, and the
/// count is back to what `replicas` says.
pub(crate) async fn self_healing(ctx: StepContext) -> Result<StepOutcome> {
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
            are_ready_pods(pods, count) && pods.iter().all(|pod| pod.name_any() != victim)
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
    let actual = format!(
        "pod \"{victim}\" deleted\nreplaced by {}\n{}",
        new.first().map(|name| name.as_str()).unwrap_or_default(),
        pod_table(&pods)
    );
    let shown = ctx.expect_golden(
        "delete-pod.txt",
        "the deleted pod is replaced by one of a new name",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// The pods' names are `example-app-` plus a random suffix (generateName), each controlled by
/// the ReplicaSet: nothing tells one pod from another, unlike a StatefulSet's `web-0`.
pub(crate) async fn pods_are_interchangeable(ctx: StepContext) -> Result<StepOutcome> {
    let pods = ctx.pods(SELECTOR).await?;
    for pod in &pods {
        expect_object(
            &format!(
                "pod {} has a generated name and is controlled by the ReplicaSet",
                pod.name_any()
            ),
            "metadata: {generateName: example-app-, \
             ownerReferences: [{name: example-app, kind: ReplicaSet, controller: true}]}",
            pod,
        )?;
    }
    let shown = ctx.expect_golden(
        "get-pod-owners.txt",
        "every pod has a generated name and the ReplicaSet as its controller",
        &owners_table(&pods),
    )?;
    Ok(StepOutcome::passed(shown))
}

/// The custom columns of the step's `kubectl get pod`: name, generateName, controller.
fn owners_table(pods: &[Pod]) -> String {
    let mut table = format!(
        "{:<20}{:<15}{:<13}{}\n",
        "NAME", "GENERATENAME", "OWNER", "NAME"
    );
    for pod in pods {
        let owner = pod.owner_references().first();
        table.push_str(&format!(
            "{:<20}{:<15}{:<13}{}\n",
            pod.name_any(),
            pod.metadata.generate_name.as_deref().unwrap_or("<none>"),
            owner.map_or("<none>", |owner| owner.kind.as_str()),
            owner.map_or("<none>", |owner| owner.name.as_str()),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owners_table_has_kubectls_custom_columns() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("example-app-x7k2p".into());
        pod.metadata.generate_name = Some("example-app-".into());
        assert_eq!(
            owners_table(&[pod]),
            "NAME                GENERATENAME   OWNER        NAME\n\
             example-app-x7k2p   example-app-   <none>       <none>\n"
        );
    }
}
