//! What each step of the lab does and claims: the bodies behind the steps `lab()` lists.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use k8s_labs_harness::expect::expect_text;
use k8s_labs_harness::expect::object::expect_object;
use k8s_labs_harness::table::pod_table;
use k8s_labs_harness::workload::are_ready_pods;
use k8s_labs_harness::{StepContext, StepOutcome, ValueKey};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::{Api, ResourceExt};

use crate::storage::{claim_of, claims_table, volume_name, volumes_table};
use crate::{CLIENT_IMAGE, FIXED_IMAGE, SELECTOR, STATEFULSET, claim_name, pod_name};

/// Each claim's volume when the claims were first bound; a claim keeps its volume for life.
const VOLUMES_BY_CLAIM: ValueKey<BTreeMap<String, String>> =
    ValueKey::new("the volume bound to each claim");

/// `kubectl apply -f statefulsets.yaml` → the Service and the StatefulSet are created.
pub(crate) async fn apply_verbatim(ctx: StepContext) -> Result<StepOutcome> {
    let actual = ctx.apply_output("statefulsets.yaml").await?;
    let shown = ctx.expect_golden(
        "apply-statefulsets.txt",
        "kubectl apply creates the Service and the StatefulSet",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// nginx-0 (OrderedReady creates only it while it is not Ready) waits on an image the
/// registry no longer serves.
pub(crate) async fn image_cannot_be_pulled(ctx: StepContext) -> Result<StepOutcome> {
    let pods = ctx.wait_image_pull_failures(SELECTOR, 1).await?;
    let shown = ctx.expect_golden(
        "get-pod-image-pull.txt",
        "only nginx-0 exists, stuck on its image",
        &pod_table(&pods),
    )?;
    Ok(StepOutcome::passed(shown))
}

/// Applies the corrected image. The StatefulSet controller does not replace a pod that never
/// became Ready with the new template by itself (upstream documents this: delete the broken
/// pod after reverting the template), so nginx-0 is deleted and recreated from the new one.
pub(crate) async fn apply_fixed_image(ctx: StepContext) -> Result<StepOutcome> {
    let mut output = ctx.apply_output("statefulsets.fixed-image.yaml").await?;
    ctx.delete_pod(&pod_name(0)).await?;
    output.push_str(&format!("pod \"{}\" deleted\n", pod_name(0)));
    let shown = ctx.expect_golden(
        "apply-fixed-image.txt",
        "kubectl apply changes only the StatefulSet; the stuck nginx-0 is deleted",
        &output,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// Exactly `count` pods nginx-0.. Running and Ready on the corrected image, and the
/// StatefulSet's status counting them.
pub(crate) async fn pods_ready(ctx: StepContext, count: usize) -> Result<StepOutcome> {
    let pods = ctx.wait_ready_pods(SELECTOR, count).await?;
    for pod in &pods {
        expect_object(
            &format!("pod {} runs the corrected image", pod.name_any()),
            &format!("spec: {{containers: [{{name: nginx, image: {FIXED_IMAGE}}}]}}"),
            pod,
        )?;
    }
    let statefulset = ctx.wait_statefulset_ready(STATEFULSET).await?;
    expect_object(
        &format!("StatefulSet nginx has {count} replicas, all ready"),
        &format!("status: {{replicas: {count}, readyReplicas: {count}}}"),
        &statefulset,
    )?;
    let shown = ctx.expect_golden(
        "get-pod-ready.txt",
        "the StatefulSet's pods are Running and Ready",
        &pod_table(&pods),
    )?;
    Ok(StepOutcome::passed(shown))
}

/// Both claims Bound, 1Gi, RWO, each to its own PV whose claimRef points back at it.
pub(crate) async fn claims_bound(ctx: StepContext) -> Result<StepOutcome> {
    let mut claims = Vec::new();
    for ordinal in 0..2 {
        let claim = ctx.wait_pvc_bound(&claim_name(ordinal)).await?;
        expect_object(
            &format!("PVC {} is Bound, 1Gi, ReadWriteOnce", claim.name_any()),
            "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n\
             status: {phase: Bound, capacity: {storage: 1Gi}}",
            &claim,
        )?;
        claims.push(claim);
    }
    let volumes: Vec<String> = claims
        .iter()
        .map(|claim| {
            volume_name(claim).ok_or_else(|| anyhow!("{} has no volume", claim.name_any()))
        })
        .collect::<Result<_>>()?;
    if volumes[0] == volumes[1] {
        bail!("both claims are bound to the same PV {}", volumes[0]);
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client());
    let mut pvs = Vec::new();
    for (claim, volume) in claims.iter().zip(&volumes) {
        let pv = api.get(volume).await?;
        expect_object(
            &format!("PV {volume} is Bound to {}", claim.name_any()),
            &format!(
                "spec: {{claimRef: {{name: {}, namespace: {}}}}}\nstatus: {{phase: Bound}}",
                claim.name_any(),
                ctx.namespace()
            ),
            &pv,
        )?;
        pvs.push(pv);
    }
    let volumes_by_claim: BTreeMap<String, String> = claims
        .iter()
        .map(ResourceExt::name_any)
        .zip(volumes.iter().cloned())
        .collect();
    ctx.remember(&VOLUMES_BY_CLAIM, volumes_by_claim);
    let redactions = ctx.redactions();
    let actual = format!(
        "{}{}",
        claims_table(&claims, &redactions),
        volumes_table(&pvs, &redactions)
    );
    let shown = ctx.expect_golden(
        "get-pvc-pv.txt",
        "kubectl get pvc,pv: one Bound 1Gi RWO claim per pod, each with its own volume",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// The annotation asks for a class named `anything`; current Kubernetes ignores it, and the
/// claims carry the default StorageClass the cluster reports. Its name differs between
/// clusters, so this step's output is checked against the discovered name, not a golden file.
pub(crate) async fn default_storage_class_used(ctx: StepContext) -> Result<StepOutcome> {
    let Some(default) = ctx.facts().default_storage_class.clone() else {
        bail!("the cluster has no default StorageClass, so the claims cannot be provisioned");
    };
    let mut output = format!("default StorageClass: {default}\n");
    for ordinal in 0..2 {
        let claim: PersistentVolumeClaim = ctx.get(&claim_name(ordinal)).await?;
        expect_object(
            &format!(
                "PVC {} keeps the annotation but uses the default StorageClass",
                claim.name_any()
            ),
            &format!(
                "metadata: {{annotations: {{volume.alpha.kubernetes.io/storage-class: anything}}}}\n\
                 spec: {{storageClassName: {default}}}"
            ),
            &claim,
        )?;
        output.push_str(&format!("{} {default}\n", claim.name_any()));
    }
    Ok(StepOutcome::passed(output))
}

/// Runs `script` with `sh -c` in one-shot client pods until `check` accepts its log.
async fn curl_from_a_pod(
    ctx: &StepContext,
    script: &str,
    check: impl Fn(&str) -> Result<()>,
) -> Result<String> {
    ctx.run_once_until("curl", CLIENT_IMAGE, &["sh", "-c", script], |output| {
        let log = output.combined();
        check(&log)?;
        Ok(log)
    })
    .await
}

/// The volume is empty, so nginx has no index.html to serve and refuses the directory: 403.
pub(crate) async fn empty_volume_forbidden(ctx: StepContext) -> Result<StepOutcome> {
    let script = "curl -s --max-time 3 -o /dev/null -w '%{http_code}\\n' nginx-0.nginx";
    let log = curl_from_a_pod(&ctx, script, |log| {
        expect_text("nginx-0 answers 403 Forbidden", "403\n", log)?;
        Ok(())
    })
    .await?;
    let shown = ctx.expect_golden(
        "curl-empty-volume.txt",
        "nginx-0 answers 403 Forbidden",
        &log,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// `echo "$(hostname)" > /usr/share/nginx/html/index.html` in each pod.
pub(crate) async fn write_hostnames(ctx: StepContext) -> Result<StepOutcome> {
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
    let shown = ctx.expect_golden(
        "write-hostnames.txt",
        "each pod wrote its hostname",
        &output,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// `curl nginx-N.nginx` for each of `count` pods from a one-shot pod, retried until each
/// answers its own name (DNS of a new pod takes a moment); returns curl's output.
async fn curl_each_pod(ctx: &StepContext, count: usize) -> Result<String> {
    let script = format!(
        "for i in $(seq 0 {}); do curl -s --max-time 3 nginx-$i.nginx; done",
        count.saturating_sub(1)
    );
    let expected: String = (0..count).map(|i| format!("{}\n", pod_name(i))).collect();
    curl_from_a_pod(ctx, &script, |log| {
        expect_text("each pod serves its own name", &expected, log)?;
        Ok(())
    })
    .await
}

/// `curl nginx-0.nginx` and `curl nginx-1.nginx` from a one-shot pod: each answers its name.
pub(crate) async fn pods_serve_their_names(ctx: StepContext) -> Result<StepOutcome> {
    let log = curl_each_pod(&ctx, 2).await?;
    let shown = ctx.expect_golden("curl-hostnames.txt", "each pod serves its own name", &log)?;
    Ok(StepOutcome::passed(shown))
}

/// Deletes both pods; the StatefulSet recreates them (new uids) with the same names, mounting
/// the same claims, bound to the same volumes, which still hold what was written.
pub(crate) async fn pods_come_back_with_their_storage(ctx: StepContext) -> Result<StepOutcome> {
    let before: BTreeMap<String, String> = ctx
        .pods(SELECTOR)
        .await?
        .iter()
        .map(|pod| (pod.name_any(), pod.uid().unwrap_or_default()))
        .collect();
    let mut output = String::new();
    for name in before.keys() {
        ctx.delete_pod(name).await?;
        output.push_str(&format!("pod \"{name}\" deleted\n"));
    }
    let what = "nginx-0 and nginx-1 recreated (new uids) and Ready";
    let pods = ctx
        .wait_pods(SELECTOR, what, |pods| {
            are_ready_pods(pods, 2)
                && pods
                    .iter()
                    .all(|pod| before.get(&pod.name_any()) != pod.uid().as_ref())
        })
        .await?;
    for (ordinal, pod) in pods.iter().enumerate() {
        expect_object(
            &format!("the new {} mounts its old claim", pod.name_any()),
            &format!(
                "spec: {{volumes: [{{name: www, persistentVolumeClaim: {{claimName: {}}}}}]}}",
                claim_name(ordinal)
            ),
            pod,
        )?;
    }
    same_volumes(&ctx).await?;
    output.push_str(&pod_table(&pods));
    output.push_str(&mounts(&pods));
    output.push_str(&curl_each_pod(&ctx, 2).await?);
    let shown = ctx.expect_golden(
        "delete-pods.txt",
        "the pods come back with the same names and claims, and still serve their names",
        &output,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// `nginx-0 mounts www-nginx-0`, one line per pod.
fn mounts(pods: &[Pod]) -> String {
    pods.iter()
        .map(|pod| {
            format!(
                "{} mounts {}\n",
                pod.name_any(),
                claim_of(pod).unwrap_or_else(|| "(no claim)".to_string())
            )
        })
        .collect()
}

/// The claims are still bound to the volumes seen when they were first bound.
async fn same_volumes(ctx: &StepContext) -> Result<()> {
    let remembered = ctx.recall(&VOLUMES_BY_CLAIM)?;
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
pub(crate) async fn scale_down_keeps_the_claim(ctx: StepContext) -> Result<StepOutcome> {
    ctx.scale::<StatefulSet>(STATEFULSET, 1).await?;
    let pods = ctx.wait_ready_pods(SELECTOR, 1).await?;
    let statefulset = ctx.wait_statefulset_ready(STATEFULSET).await?;
    expect_object(
        "StatefulSet nginx has 1 replica, ready",
        "status: {replicas: 1, readyReplicas: 1}",
        &statefulset,
    )?;
    let claims = [
        ctx.get::<PersistentVolumeClaim>(&claim_name(0)).await?,
        ctx.get::<PersistentVolumeClaim>(&claim_name(1)).await?,
    ];
    expect_object(
        "PVC www-nginx-1 is retained and Bound",
        "status: {phase: Bound}",
        &claims[1],
    )?;
    same_volumes(&ctx).await?;
    let actual = format!(
        "statefulset.apps/nginx scaled\n{}{}",
        pod_table(&pods),
        claims_table(&claims, &ctx.redactions())
    );
    let shown = ctx.expect_golden(
        "scale-to-1.txt",
        "nginx-1 is gone, both claims stay Bound",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}

/// `kubectl scale statefulset nginx --replicas=2`: nginx-1 comes back on its old claim and
/// serves what was written before the scale down.
pub(crate) async fn scale_up_finds_the_old_content(ctx: StepContext) -> Result<StepOutcome> {
    ctx.scale::<StatefulSet>(STATEFULSET, 2).await?;
    let pods = ctx.wait_ready_pods(SELECTOR, 2).await?;
    let nginx_1 = pods
        .iter()
        .find(|pod| pod.name_any() == pod_name(1))
        .ok_or_else(|| anyhow!("nginx-1 is not among the pods"))?;
    expect_object(
        "nginx-1 mounts its old claim",
        "spec: {volumes: [{name: www, persistentVolumeClaim: {claimName: www-nginx-1}}]}",
        nginx_1,
    )?;
    same_volumes(&ctx).await?;
    let actual = format!(
        "statefulset.apps/nginx scaled\n{}{}{}",
        pod_table(&pods),
        mounts(&pods),
        curl_each_pod(&ctx, 2).await?
    );
    let shown = ctx.expect_golden(
        "scale-to-2.txt",
        "nginx-1 is back on its old claim and serves its old content",
        &actual,
    )?;
    Ok(StepOutcome::passed(shown))
}
