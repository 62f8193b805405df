//! Check mode (`cargo xtask check pvc-templates`): the lab's claims verified against a
//! student's own namespace, where they applied statefulsets.fixed-image.yaml by hand. Every
//! step only reads; each claim carries a hint from the tutorial's troubleshooting advice.

use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::expect::expect_text;
use k8s_labs_harness::expect::object::expect_object;
use k8s_labs_harness::table::pod_table;
use k8s_labs_harness::table::statefulset_pod_states;
use k8s_labs_harness::workload::pvc_phase;
use k8s_labs_harness::{Lab, Step, StepContext, StepOutcome};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};

use crate::{NAME, SELECTOR, SERVICE, STATEFULSET, TEMPLATE, manifests_dir};

/// How many pods statefulsets.yaml asks for.
const REPLICAS: usize = 2;

/// Reading state: a little patience for pods and claims still starting, not a long wait.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

const HINT_PODS: &str = "the StatefulSet asks for replicas: 2 with an image that can be \
    pulled (gcr.io/google_containers/nginx-slim:0.8 cannot: use statefulsets.fixed-image.yaml \
    and delete the stuck nginx-0); check `kubectl describe pod nginx-0` and the cluster's \
    state.\n\
    检查Kubernetes集群的状态,确保所有组件都在正常运行。";
const HINT_PVCS: &str = "each pod gets its own claim www-nginx-N from volumeClaimTemplates; a \
    claim stays Pending without a default StorageClass (`kubectl get storageclass`) — the \
    annotation volume.alpha.kubernetes.io/storage-class is ignored.\n\
    有状态应用程序通常需要使用持久卷(Persistent Volumes)来存储和保护其状态。";
const HINT_SERVICE: &str = "make sure the Service is named \"nginx\", exactly as the \
    StatefulSet's serviceName, with clusterIP: None and selector app: nginx; look for typos \
    or case differences.\n\
    确保Service的名称 “nginx” 和命令中的名称匹配。检查是否有任何拼写错误或大小写问题。";

/// The checks of a student's pvc-templates setup.
pub fn check() -> Lab {
    Lab::new(
        NAME,
        "check your StatefulSet nginx, its PVCs and headless Service nginx",
        manifests_dir(),
    )
    .step(
        Step::new(
            "pods nginx-0, nginx-1 exist and are Running and Ready",
            "kubectl get pod -l app=nginx",
            READ_TIMEOUT,
            pods_running_and_ready,
        )
        .hint(HINT_PODS),
    )
    .step(
        Step::new(
            "PVCs www-nginx-0, www-nginx-1 are Bound, each mounted by its own pod",
            "kubectl get pvc",
            READ_TIMEOUT,
            claims_bound_per_pod,
        )
        .hint(HINT_PVCS),
    )
    .step(
        Step::new(
            "Service nginx is headless and its endpoints are the Ready pods' IPs",
            "kubectl get svc nginx; kubectl get ep nginx",
            READ_TIMEOUT,
            headless_service_endpoints,
        )
        .hint(HINT_SERVICE),
    )
}

fn pod_name(ordinal: usize) -> String {
    format!("{STATEFULSET}-{ordinal}")
}

async fn pods_running_and_ready(ctx: StepContext) -> Result<StepOutcome> {
    let expected: String = (0..REPLICAS)
        .map(|i| format!("{} Running and Ready\n", pod_name(i)))
        .collect();
    let pods = ctx
        .retry(|| async {
            let pods = ctx.pods(SELECTOR).await?;
            expect_text(
                "pods nginx-0, nginx-1 are Running and Ready",
                &expected,
                &statefulset_pod_states(STATEFULSET, &pods),
            )?;
            Ok(pods)
        })
        .await?;
    Ok(StepOutcome::passed(pod_table(&pods)))
}

/// The claim a pod mounts as volume `www`, or `(none)`.
fn mounted_claim(pod: &Pod) -> String {
    pod.spec
        .iter()
        .flat_map(|spec| spec.volumes.iter().flatten())
        .find(|volume| volume.name == TEMPLATE)
        .and_then(|volume| volume.persistent_volume_claim.as_ref())
        .map_or_else(|| "(none)".to_string(), |claim| claim.claim_name.clone())
}

async fn claims_bound_per_pod(ctx: StepContext) -> Result<StepOutcome> {
    let expected: String = (0..REPLICAS)
        .map(|i| format!("{} mounts {TEMPLATE}-{} Bound\n", pod_name(i), pod_name(i)))
        .collect();
    let shown = ctx
        .retry(|| async {
            let mut actual = String::new();
            for ordinal in 0..REPLICAS {
                let pod_name = pod_name(ordinal);
                let pod: Pod = ctx.get(&pod_name).await?;
                let claim_name = mounted_claim(&pod);
                let phase = match ctx.get::<PersistentVolumeClaim>(&claim_name).await {
                    Ok(claim) => pvc_phase(&claim).to_string(),
                    Err(_) => "missing".to_string(),
                };
                actual.push_str(&format!("{pod_name} mounts {claim_name} {phase}\n"));
            }
            expect_text(
                "each pod nginx-N mounts its own Bound PVC www-nginx-N",
                &expected,
                &actual,
            )?;
            Ok(actual)
        })
        .await?;
    Ok(StepOutcome::passed(shown))
}

async fn headless_service_endpoints(ctx: StepContext) -> Result<StepOutcome> {
    let service: Service = ctx.get(SERVICE).await?;
    expect_object(
        "Service nginx is headless (clusterIP None) with port 80 named web",
        "spec: {clusterIP: None, ports: [{name: web, port: 80}]}",
        &service,
    )?;
    let column = ctx.endpoints_of_ready_pods(SERVICE, SELECTOR, 80).await?;
    Ok(StepOutcome::passed(format!(
        "service {SERVICE}: CLUSTER-IP None\nendpoints {SERVICE}: {column}\n"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_hint() {
        let lab = check();
        assert_eq!(lab.name(), "pvc-templates");
        for step in lab.steps() {
            assert!(!step.hint_text().is_empty(), "{}", step.name());
        }
    }

    #[test]
    fn a_pod_without_the_volume_mounts_nothing() {
        assert_eq!(mounted_claim(&Pod::default()), "(none)");
    }
}
