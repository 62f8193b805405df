//! Lab pvc-templates: the tutorial's section 应用2 (statefulsets.yaml). A StatefulSet `nginx`
//! of 2 pods whose `volumeClaimTemplates` give each pod its own PersistentVolumeClaim
//! (`www-nginx-0`, `www-nginx-1`) mounted at nginx's html directory: what a pod writes there
//! survives the pod, a scale down and a scale up.
//!
//! Errata, each a step named for it: `gcr.io/google_containers/nginx-slim:0.8` is no longer
//! served (the pods cannot pull it; the corrected manifest uses the upstream StatefulSet
//! tutorial's `registry.k8s.io/nginx-slim:0.21`), and the annotation
//! `volume.alpha.kubernetes.io/storage-class: anything` is ignored, so the claims get the
//! cluster's default StorageClass — discovered, never assumed.

use std::time::Duration;
use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{Result, anyhow, bail};
use k8s_labs_harness::expect::expect_text;
use k8s_labs_harness::table::pod_table;
use k8s_labs_harness::{Lab, Step, StepContext, StepOutcome};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;

/// The lab's name on the command line and in namespaces.
pub const NAME: &str = "pvc-templates";
/// The StatefulSet (and headless Service) of statefulsets.yaml.
const STATEFULSET: &str = "nginx";
/// The pods' labels.
const SELECTOR: &str = "app=nginx";
/// The volumeClaimTemplate's name.
const TEMPLATE: &str = "www";
/// The image of the one-shot pods that curl the pods (it carries curl).
const CLIENT_IMAGE: &str = "nginx";
/// The image of statefulsets.fixed-image.yaml: that of the upstream StatefulSet tutorial's
/// web.yaml (kubernetes/website content/en/examples/application/web/web.yaml, release-1.34).
const FIXED_IMAGE: &str = "registry.k8s.io/nginx-slim:0.21";

/// Timeout of steps that wait for pods to start or go.
const POD_TIMEOUT: Duration = Duration::from_secs(90);
/// Timeout of steps that run a command (with retries while DNS propagates).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(45);

/// The lab as the tutorial describes it.
pub fn lab() -> Lab {
    Lab::new(
        NAME,
        "StatefulSet nginx with volumeClaimTemplates: one PVC per pod, stable storage",
        manifests_dir(),
    )
    .step(Step::new(
        "apply statefulsets.yaml (verbatim)",
        "kubectl apply -f statefulsets.yaml",
        COMMAND_TIMEOUT,
        apply_verbatim,
    ))
    .step(Step::new(
        "erratum: image gcr.io/google_containers/nginx-slim:0.8 cannot be pulled (ErrImagePull/ImagePullBackOff)",
        "kubectl get pod -l app=nginx",
        POD_TIMEOUT,
        image_cannot_be_pulled,
    ))
    .step(Step::new(
        "apply statefulsets.fixed-image.yaml (registry.k8s.io/nginx-slim:0.21) and delete the broken pod nginx-0",
        "kubectl apply -f statefulsets.fixed-image.yaml; kubectl delete pod nginx-0",
        COMMAND_TIMEOUT,
        apply_fixed_image,
    ))
    .step(Step::new(
        "pods nginx-0, nginx-1 become Running and Ready",
        "kubectl get pod -l app=nginx",
        POD_TIMEOUT,
        |ctx| pods_ready(ctx, 2),
    ))
    .step(Step::new(
        "PVCs www-nginx-0 and www-nginx-1 are Bound, 1Gi, RWO, each to its own PV",
        "kubectl get pvc",
        COMMAND_TIMEOUT,
        claims_bound,
    ))
    .step(Step::new(
        "erratum: the annotation volume.alpha.kubernetes.io/storage-class is ignored; the PVCs use the default StorageClass",
        "kubectl get storageclass; kubectl get pvc -o custom-columns=NAME:.metadata.name,STORAGECLASS:.spec.storageClassName",
        COMMAND_TIMEOUT,
        default_storage_class_used,
    ))
    .step(Step::new(
        "before any content, curl nginx-0.nginx answers 403 (the volume hides the image's html)",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         curl -s -o /dev/null -w '%{http_code}' nginx-0.nginx",
        COMMAND_TIMEOUT,
        empty_volume_forbidden,
    ))
    .step(Step::new(
        "write each pod's hostname into its index.html",
        "for i in 0 1; do kubectl exec nginx-$i -- sh -c 'echo \"$(hostname)\" > /usr/share/nginx/html/index.html'; done",
        COMMAND_TIMEOUT,
        write_hostnames,
    ))
    .step(Step::new(
        "curl nginx-0.nginx and nginx-1.nginx from a pod answer nginx-0 and nginx-1",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         sh -c 'for i in 0 1; do curl -s nginx-$i.nginx; done'",
        COMMAND_TIMEOUT,
        |ctx| pods_serve_their_names(ctx, 2),
    ))
    .step(Step::new(
        "delete both pods: they come back with the same names and PVCs, and still serve nginx-N",
        "kubectl delete pod -l app=nginx; kubectl get pod -l app=nginx",
        POD_TIMEOUT,
        pods_come_back_with_their_storage,
    ))
    .step(Step::new(
        "scale to 1: pod nginx-1 goes, PVC www-nginx-1 stays",
        "kubectl scale statefulset nginx --replicas=1; kubectl get pvc",
        POD_TIMEOUT,
        scale_down_keeps_the_claim,
    ))
    .step(Step::new(
        "scale back to 2: nginx-1 serves its old content again",
        "kubectl scale statefulset nginx --replicas=2",
        POD_TIMEOUT,
        scale_up_finds_the_old_content,
    ))
}

/// `manifests/pvc-templates/` of the workspace this crate was built in.
pub fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/pvc-templates")
}

fn pod_name(ordinal: usize) -> String {
    format!("{STATEFULSET}-{ordinal}")
}

fn claim_name(ordinal: usize) -> String {
    format!("{TEMPLATE}-{STATEFULSET}-{ordinal}")
}

/// `kubectl apply -f statefulsets.yaml` → the Service and the StatefulSet are created.
async fn apply_verbatim(ctx: StepContext) -> Result<StepOutcome> {
    let applied = ctx.apply("statefulsets.yaml").await?;
    let actual: String = applied.iter().map(|object| format!("{object}\n")).collect();
    expect_text(
        "kubectl apply creates the Service and the StatefulSet",
        "service/nginx created\nstatefulset.apps/nginx created\n",
        &actual,
    )?;
    Ok(StepOutcome::passed(actual))
}

/// nginx-0 (OrderedReady creates only it while it is not Ready) waits on an image the
/// registry no longer serves.
async fn image_cannot_be_pulled(ctx: StepContext) -> Result<StepOutcome> {
    let pods = ctx.wait_image_pull_failures(SELECTOR, 1).await?;
    let names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
    expect_text(
        "only nginx-0 exists, stuck on its image",
        "nginx-0\n",
        &format!("{}\n", names.join("\n")),
    )?;
    Ok(StepOutcome::passed(pod_table(&pods)))
}

/// Applies the corrected image. The StatefulSet controller does not replace a pod that never
/// became Ready with the new template by itself (upstream documents this: delete the broken
/// pod after reverting the template), so nginx-0 is deleted and recreated from the new one.
async fn apply_fixed_image(ctx: StepContext) -> Result<StepOutcome> {
    let applied = ctx.apply("statefulsets.fixed-image.yaml").await?;
    let mut output: String = applied.iter().map(|object| format!("{object}\n")).collect();
    expect_text(
        "kubectl apply changes only the StatefulSet",
        "service/nginx unchanged\nstatefulset.apps/nginx configured\n",
        &output,
    )?;
    ctx.delete_pod(&pod_name(0)).await?;
    output.push_str("pod \"nginx-0\" deleted\n");
    Ok(StepOutcome::passed(output))
}

/// Exactly `count` pods nginx-0.. Running and Ready, on the corrected image.
async fn pods_ready(ctx: StepContext, count: usize) -> Result<StepOutcome> {
    let pods = ctx.wait_ready_pods(SELECTOR, count).await?;
    let actual: String = pods
        .iter()
        .map(|pod| format!("{} {}\n", pod.name_any(), image_of(pod)))
        .collect();
    let expected: String = (0..count)
        .map(|ordinal| format!("{} {FIXED_IMAGE}\n", pod_name(ordinal)))
        .collect();
    expect_text(
        "the StatefulSet's pods run the corrected image",
        &expected,
        &actual,
    )?;
    Ok(StepOutcome::passed(pod_table(&pods)))
}

fn image_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.containers.first())
        .and_then(|container| container.image.clone())
        .unwrap_or_default()
}

/// `kubectl get pvc`: NAME STATUS CAPACITY ACCESS MODES, one distinct VOLUME each.
fn claims_table(claims: &[PersistentVolumeClaim]) -> String {
    let mut table = String::from("NAME          STATUS   CAPACITY   ACCESS MODES\n");
    for claim in claims {
        let status = claim.status.as_ref();
        let capacity = status
            .and_then(|status| status.capacity.as_ref())
            .and_then(|capacity| capacity.get("storage"))
            .map(|quantity| quantity.0.clone())
            .unwrap_or_default();
        let modes: Vec<String> = status
            .and_then(|status| status.access_modes.clone())
            .unwrap_or_default()
            .iter()
            .map(|mode| match mode.as_str() {
                "ReadWriteOnce" => "RWO".to_string(),
                "ReadOnlyMany" => "ROX".to_string(),
                "ReadWriteMany" => "RWX".to_string(),
                "ReadWriteOncePod" => "RWOP".to_string(),
                other => other.to_string(),
            })
            .collect();
        table.push_str(&format!(
            "{:<14}{:<9}{:<11}{}\n",
            claim.name_any(),
            k8s_labs_harness::workload::pvc_phase(claim),
            capacity,
            modes.join(",")
        ));
    }
    table
}

fn volume_name(claim: &PersistentVolumeClaim) -> Option<String> {
    claim.spec.as_ref()?.volume_name.clone()
}

/// Both claims Bound, 1Gi, RWO, and to two different PVs.
async fn claims_bound(ctx: StepContext) -> Result<StepOutcome> {
    let mut claims = Vec::new();
    for ordinal in 0..2 {
        claims.push(ctx.wait_pvc_bound(&claim_name(ordinal)).await?);
    }
    let actual = claims_table(&claims);
    let expected = "NAME          STATUS   CAPACITY   ACCESS MODES\n\
                    www-nginx-0   Bound    1Gi        RWO\n\
                    www-nginx-1   Bound    1Gi        RWO\n";
    expect_text("the StatefulSet's claims are Bound", expected, &actual)?;
    let volumes: Vec<String> = claims
        .iter()
        .map(|claim| {
            volume_name(claim).ok_or_else(|| anyhow!("{} has no volume", claim.name_any()))
        })
        .collect::<Result<_>>()?;
    if volumes[0] == volumes[1] {
        bail!("both claims are bound to the same PV {}", volumes[0]);
    }
    let volumes_by_claim: BTreeMap<String, String> = claims
        .iter()
        .map(ResourceExt::name_any)
        .zip(volumes.iter().cloned())
        .collect();
    ctx.remember("volumes", serde_json::json!(volumes_by_claim));
    Ok(StepOutcome::passed(format!(
        "{actual}volumes: {}",
        volumes.join(", ")
    )))
}

/// The annotation asks for a class named `anything`; current Kubernetes ignores it, and the
/// claims carry the default StorageClass the cluster reports.
async fn default_storage_class_used(ctx: StepContext) -> Result<StepOutcome> {
    let Some(default) = ctx.facts().default_storage_class.clone() else {
        bail!("the cluster has no default StorageClass, so the claims cannot be provisioned");
    };
    let mut actual = String::new();
    let mut expected = String::new();
    for ordinal in 0..2 {
        let claim: PersistentVolumeClaim = ctx.get(&claim_name(ordinal)).await?;
        let class = claim
            .spec
            .as_ref()
            .and_then(|spec| spec.storage_class_name.clone())
            .unwrap_or_else(|| "<none>".to_string());
        actual.push_str(&format!("{} {class}\n", claim.name_any()));
        expected.push_str(&format!("{} {default}\n", claim_name(ordinal)));
    }
    expect_text(
        "the claims use the default StorageClass, not \"anything\"",
        &expected,
        &actual,
    )?;
    Ok(StepOutcome::passed(format!(
        "default StorageClass: {default}\n{actual}"
    )))
}

/// Runs `script` with `sh -c` in a fresh one-shot client pod (a new name per try, since a
/// deleted pod's name may linger while it terminates) until `check` accepts its log.
async fn curl_from_a_pod(
    ctx: &StepContext,
    script: &str,
    check: impl Fn(&str) -> Result<()>,
) -> Result<String> {
    let mut attempt = 0;
    ctx.retry(|| {
        attempt += 1;
        let pod = format!("curl-{attempt}");
        let ctx = ctx.clone();
        let script = script.to_string();
        let check = &check;
        async move {
            let output = ctx
                .run_once(&pod, CLIENT_IMAGE, &["sh", "-c", &script])
                .await?;
            let log = output.combined();
            check(&log)?;
            Ok(log)
        }
    })
    .await
}

/// The volume is empty, so nginx has no index.html to serve and refuses the directory: 403.
async fn empty_volume_forbidden(ctx: StepContext) -> Result<StepOutcome> {
    let script = "curl -s --max-time 3 -o /dev/null -w '%{http_code}\\n' nginx-0.nginx";
    let log = curl_from_a_pod(&ctx, script, |log| {
        expect_text("nginx-0 answers 403 Forbidden", "403\n", log)?;
        Ok(())
    })
    .await?;
    Ok(StepOutcome::passed(log))
}

/// `echo "$(hostname)" > /usr/share/nginx/html/index.html` in each pod.
async fn write_hostnames(ctx: StepContext) -> Result<StepOutcome> {
    let mut output = String::new();
    for ordinal in 0..2 {
        let pod = pod_name(ordinal);
        let run = ctx
            .exec(
                &pod,
                &[
                    "sh",
                    "-c",
                    "echo \"$(hostname)\" > /usr/share/nginx/html/index.html && cat /usr/share/nginx/html/index.html",
                ],
            )
            .await?;
        if !run.success() {
            bail!(
                "writing index.html in {pod} failed (exit {:?}):\n{}",
                run.exit_code,
                run.combined()
            );
        }
        output.push_str(&run.stdout);
    }
    expect_text("each pod wrote its hostname", "nginx-0\nnginx-1\n", &output)?;
    Ok(StepOutcome::passed(output))
}

/// `curl nginx-N.nginx` for each pod, from a one-shot pod: each answers its own name.
async fn pods_serve_their_names(ctx: StepContext, count: usize) -> Result<StepOutcome> {
    let script = format!(
        "for i in $(seq 0 {}); do curl -s --max-time 3 nginx-$i.nginx; done",
        count - 1
    );
    let expected: String = (0..count).map(|i| format!("{}\n", pod_name(i))).collect();
    let log = curl_from_a_pod(&ctx, &script, |log| {
        expect_text("each pod serves its own name", &expected, log)?;
        Ok(())
    })
    .await?;
    Ok(StepOutcome::passed(log))
}

/// The claim a pod mounts as volume `www`.
fn claim_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find(|volume| volume.name == TEMPLATE)?
        .persistent_volume_claim
        .as_ref()
        .map(|claim| claim.claim_name.clone())
}

/// Deletes both pods; the StatefulSet recreates them (new uids) with the same names, mounting
/// the same claims, bound to the same volumes, which still hold what was written.
async fn pods_come_back_with_their_storage(ctx: StepContext) -> Result<StepOutcome> {
    let before: BTreeMap<String, String> = ctx
        .pods(SELECTOR)
        .await?
        .iter()
        .map(|pod| (pod.name_any(), pod.uid().unwrap_or_default()))
        .collect();
    for name in before.keys() {
        ctx.delete_pod(name).await?;
    }
    let what = "nginx-0 and nginx-1 recreated (new uids) and Ready";
    let pods = ctx
        .wait_pods(SELECTOR, what, |pods| {
            k8s_labs_harness::workload::are_ready_pods(pods, 2)
                && pods
                    .iter()
                    .all(|pod| before.get(&pod.name_any()) != pod.uid().as_ref())
        })
        .await?;
    let actual: String = pods
        .iter()
        .map(|pod| {
            format!(
                "{} mounts {}\n",
                pod.name_any(),
                claim_of(pod).unwrap_or_else(|| "(no claim)".to_string())
            )
        })
        .collect();
    let expected: String = (0..2)
        .map(|i| format!("{} mounts {}\n", pod_name(i), claim_name(i)))
        .collect();
    expect_text("the new pods mount the same claims", &expected, &actual)?;
    same_volumes(&ctx).await?;
    let served = pods_serve_their_names(ctx, 2).await?;
    let served = match served {
        StepOutcome::Passed(text) | StepOutcome::Skipped(text) => text,
    };
    Ok(StepOutcome::passed(format!(
        "{}{actual}{served}",
        pod_table(&pods)
    )))
}

/// The claims are still bound to the volumes seen when they were first bound.
async fn same_volumes(ctx: &StepContext) -> Result<()> {
    let remembered: BTreeMap<String, String> = ctx
        .recall("volumes")
        .and_then(|value| serde_json::from_value(value).ok())
        .ok_or_else(|| anyhow!("no earlier step recorded the claims' volumes"))?;
    let mut now = BTreeMap::new();
    for claim in remembered.keys() {
        let claim: PersistentVolumeClaim = ctx.get(claim).await?;
        now.insert(claim.name_any(), volume_name(&claim).unwrap_or_default());
    }
    expect_text(
        "each claim is still bound to its volume",
        &format!("{remembered:?}"),
        &format!("{now:?}"),
    )?;
    Ok(())
}

/// `kubectl scale statefulset nginx --replicas=1`: nginx-1 goes; its claim is retained
/// (persistentVolumeClaimRetentionPolicy whenScaled: Retain, the default) and stays Bound.
async fn scale_down_keeps_the_claim(ctx: StepContext) -> Result<StepOutcome> {
    ctx.scale::<StatefulSet>(STATEFULSET, 1).await?;
    let pods = ctx.wait_ready_pods(SELECTOR, 1).await?;
    let names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
    expect_text("only nginx-0 remains", "nginx-0", &names.join(","))?;
    let claim: PersistentVolumeClaim = ctx.get(&claim_name(1)).await?;
    expect_text(
        "PVC www-nginx-1 is retained and Bound",
        "www-nginx-1 Bound",
        &format!(
            "{} {}",
            claim.name_any(),
            k8s_labs_harness::workload::pvc_phase(&claim)
        ),
    )?;
    same_volumes(&ctx).await?;
    Ok(StepOutcome::passed(format!(
        "statefulset.apps/nginx scaled\n{}{}",
        pod_table(&pods),
        claims_table(&[claim])
    )))
}

/// `kubectl scale statefulset nginx --replicas=2`: nginx-1 comes back on its old claim and
/// serves what was written before the scale down.
async fn scale_up_finds_the_old_content(ctx: StepContext) -> Result<StepOutcome> {
    ctx.scale::<StatefulSet>(STATEFULSET, 2).await?;
    let pods = ctx.wait_ready_pods(SELECTOR, 2).await?;
    let nginx_1 = pods
        .iter()
        .find(|pod| pod.name_any() == pod_name(1))
        .ok_or_else(|| anyhow!("nginx-1 is not among the pods"))?;
    expect_text(
        "nginx-1 mounts its old claim",
        &claim_name(1),
        &claim_of(nginx_1).unwrap_or_default(),
    )?;
    same_volumes(&ctx).await?;
    let served = match pods_serve_their_names(ctx, 2).await? {
        StepOutcome::Passed(text) | StepOutcome::Skipped(text) => text,
    };
    Ok(StepOutcome::passed(format!(
        "statefulset.apps/nginx scaled\n{}{served}",
        pod_table(&pods)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_has_the_issues_steps_with_errata_named() {
        let lab = lab();
        assert_eq!(lab.name(), "pvc-templates");
        assert_eq!(lab.steps().len(), 12);
        let errata: Vec<&str> = lab
            .steps()
            .iter()
            .map(|step| step.name())
            .filter(|name| name.starts_with("erratum:"))
            .collect();
        assert_eq!(errata.len(), 2, "{errata:?}");
        assert!(errata[0].contains("gcr.io/google_containers/nginx-slim:0.8"));
        assert!(errata[1].contains("volume.alpha.kubernetes.io/storage-class"));
        for file in ["statefulsets.yaml", "statefulsets.fixed-image.yaml"] {
            assert!(lab.manifests().join(file).is_file(), "{file}");
        }
    }

    #[test]
    fn claims_are_named_template_statefulset_ordinal() {
        assert_eq!(claim_name(1), "www-nginx-1");
        assert_eq!(pod_name(0), "nginx-0");
    }

    #[test]
    fn the_claims_table_reads_like_kubectl_get_pvc() {
        assert_eq!(
            claims_table(&[]),
            "NAME          STATUS   CAPACITY   ACCESS MODES\n"
        );
    }
}
