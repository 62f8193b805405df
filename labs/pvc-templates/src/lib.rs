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

pub mod check;
mod steps;
mod storage;

use std::path::PathBuf;
use std::time::Duration;

use k8s_labs_harness::{Lab, Step};

use crate::steps::{
    apply_fixed_image, apply_verbatim, claims_bound, default_storage_class_used,
    empty_volume_forbidden, image_cannot_be_pulled, pods_come_back_with_their_storage, pods_ready,
    pods_serve_their_names, scale_down_keeps_the_claim, scale_up_finds_the_old_content,
    write_hostnames,
};

/// The lab's name on the command line and in namespaces.
pub const NAME: &str = "pvc-templates";
/// The StatefulSet of statefulsets.yaml.
const STATEFULSET: &str = "nginx";
/// The headless Service of statefulsets.yaml, named as the StatefulSet.
const SERVICE: &str = "nginx";
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

/// `labs/pvc-templates/expected/`: the golden files of what the steps show.
pub fn expected_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("expected")
}

/// The lab as the tutorial describes it.
pub fn lab() -> Lab {
    Lab::new(
        NAME,
        "StatefulSet nginx with volumeClaimTemplates: one PVC per pod, stable storage",
        manifests_dir(),
    )
    .expected(expected_dir())
    .step(apply_verbatim_step())
    .step(image_cannot_be_pulled_step())
    .step(apply_fixed_image_step())
    .step(pods_ready_step())
    .step(claims_bound_step())
    .step(default_storage_class_used_step())
    .step(empty_volume_forbidden_step())
    .step(write_hostnames_step())
    .step(pods_serve_their_names_step())
    .step(pods_come_back_with_their_storage_step())
    .step(scale_down_keeps_the_claim_step())
    .step(scale_up_finds_the_old_content_step())
}

fn apply_verbatim_step() -> Step {
    Step::new(
        "apply statefulsets.yaml (verbatim)",
        "kubectl apply -f statefulsets.yaml",
        COMMAND_TIMEOUT,
        apply_verbatim,
    )
    .explain(
        "statefulsets.yaml holds the headless Service nginx and a StatefulSet nginx of 2 \
         pods with volumeClaimTemplates: each pod gets its own PersistentVolumeClaim, \
         mounted at nginx's html directory. It is applied exactly as the tutorial writes \
         it.",
    )
    .explain_zh(
        "以一个简单的nginx服务为例:statefulsets.yaml 包含Headless Service nginx 和一个有2个副本的StatefulSet nginx。\
         volumeClaimTemplates 为每个Pod创建各自的PersistentVolumeClaim,\
         挂载到nginx的html目录。这里按教程原样应用。",
    )
}

fn image_cannot_be_pulled_step() -> Step {
    Step::new(
        "erratum: image gcr.io/google_containers/nginx-slim:0.8 cannot be pulled (ErrImagePull/ImagePullBackOff)",
        "kubectl get pod -l app=nginx",
        POD_TIMEOUT,
        image_cannot_be_pulled,
    )
    .explain(
        "gcr.io/google_containers/nginx-slim:0.8 is no longer served, so nginx-0 waits \
         with ErrImagePull or ImagePullBackOff. Because pods start in order, nginx-1 is \
         not even created while nginx-0 is not Ready.",
    )
    .explain_zh(
        "镜像 gcr.io/google_containers/nginx-slim:\
         0.8 已经无法拉取,所以nginx-0停在 ErrImagePull 或 ImagePullBackOff。\
         StatefulSet按顺序部署:nginx-0没有Ready之前,\
         nginx-1根本不会被创建。",
    )
}

fn apply_fixed_image_step() -> Step {
    Step::new(
        "apply statefulsets.fixed-image.yaml (registry.k8s.io/nginx-slim:0.21) and delete the broken pod nginx-0",
        "kubectl apply -f statefulsets.fixed-image.yaml; kubectl delete pod nginx-0",
        COMMAND_TIMEOUT,
        apply_fixed_image,
    )
    .explain(
        "The corrected manifest uses registry.k8s.io/nginx-slim:0.21, the image of the \
         upstream StatefulSet tutorial. A StatefulSet does not replace a pod that never \
         became Ready, so the stuck nginx-0 is deleted and recreated from the new \
         template; the Service is unchanged.",
    )
    .explain_zh(
        "修正后的YAML使用上游StatefulSet教程的镜像 registry.k8s.io/nginx-slim:\
         0.21。StatefulSet不会自动替换一个从未Ready的Pod,\
         所以删除卡住的nginx-0,让它按新模板重建;Service保持不变(unchanged)\
         。",
    )
}

fn pods_ready_step() -> Step {
    Step::new(
        "pods nginx-0, nginx-1 become Running and Ready",
        "kubectl get pod -l app=nginx",
        POD_TIMEOUT,
        |ctx| pods_ready(ctx, 2),
    )
    .explain(
        "nginx-0 starts first, then nginx-1, both on the corrected image. Each pod keeps \
         its ordinal name, and with it its DNS name and its own claim.",
    )
    .explain_zh(
        "nginx-0先启动,然后是nginx-1,都使用修正后的镜像。\
         有状态应用程序需要稳定的网络标识符和主机名:每个Pod保持自己的序号名称,\
         以及对应的DNS名称和存储卷。",
    )
}

fn claims_bound_step() -> Step {
    Step::new(
        "PVCs www-nginx-0 and www-nginx-1 are Bound, 1Gi, RWO, each to its own PV",
        "kubectl get pvc; kubectl get pv",
        COMMAND_TIMEOUT,
        claims_bound,
    )
    .explain(
        "volumeClaimTemplates create one claim per pod, named \
         <template>-<statefulset>-<ordinal>: www-nginx-0 and www-nginx-1. Each asks for \
         1Gi ReadWriteOnce and is bound to its own PersistentVolume, made by the \
         cluster's provisioner.",
    )
    .explain_zh(
        "volumeClaimTemplates 为每个Pod创建一个PVC,\
         名称为 模板名-StatefulSet名-序号:www-nginx-0 和 www-nginx-1。\
         每个PVC申请 1Gi、ReadWriteOnce,并绑定到各自的持久卷(Persistent Volume)\
         。",
    )
}

fn default_storage_class_used_step() -> Step {
    Step::new(
        "erratum: the annotation volume.alpha.kubernetes.io/storage-class is ignored; the PVCs use the default StorageClass",
        "kubectl get storageclass; kubectl get pvc -o custom-columns=NAME:.metadata.name,STORAGECLASS:.spec.storageClassName",
        COMMAND_TIMEOUT,
        default_storage_class_used,
    )
    .explain(
        "The annotation volume.alpha.kubernetes.io/storage-class: anything is from an old \
         alpha API, and current Kubernetes ignores it. The claims get the cluster's \
         default StorageClass instead, which the lab discovers rather than assumes.",
    )
    .explain_zh(
        "注解 volume.alpha.kubernetes.io/storage-class: anything 来自旧的alpha接口,\
         当前的Kubernetes会忽略它。PVC使用集群的默认StorageClass,\
         本实验从集群中查询默认StorageClass,而不是假定它的名称。",
    )
}

fn empty_volume_forbidden_step() -> Step {
    Step::new(
        "before any content, curl nginx-0.nginx answers 403 (the volume hides the image's html)",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         curl -s -o /dev/null -w '%{http_code}' nginx-0.nginx",
        COMMAND_TIMEOUT,
        empty_volume_forbidden,
    )
    .explain(
        "The volume is mounted over nginx's html directory and is still empty, so nginx \
         has no index.html to serve and answers 403 Forbidden. The volume hides what the \
         image had there.",
    )
    .explain_zh(
        "持久卷挂载在nginx的html目录上,现在还是空的,nginx没有 index.html 可用,\
         于是返回 403 Forbidden。挂载的卷遮住了镜像中原有的页面。",
    )
}

fn write_hostnames_step() -> Step {
    Step::new(
        "write each pod's hostname into its index.html",
        "for i in 0 1; do kubectl exec nginx-$i -- sh -c 'echo \"$(hostname)\" > /usr/share/nginx/html/index.html'; done",
        COMMAND_TIMEOUT,
        write_hostnames,
    )
    .explain(
        "Each pod writes its own hostname (nginx-0, nginx-1) into index.html on its \
         volume. This is the pod's state, and it lives in the claim, not in the \
         container.",
    )
    .explain_zh(
        "每个Pod把自己的主机名(nginx-0、nginx-1)写入卷上的 index.html。\
         这就是有状态应用程序需要维护的状态:它保存在PVC中,而不是容器里。",
    )
}

fn pods_serve_their_names_step() -> Step {
    Step::new(
        "curl nginx-0.nginx and nginx-1.nginx from a pod answer nginx-0 and nginx-1",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         sh -c 'for i in 0 1; do curl -s nginx-$i.nginx; done'",
        COMMAND_TIMEOUT,
        pods_serve_their_names,
    )
    .explain(
        "From another pod, curl nginx-0.nginx and nginx-1.nginx: each stable DNS name \
         reaches its own pod, which serves the page it wrote.",
    )
    .explain_zh(
        "在另一个Pod中 curl nginx-0.nginx 和 nginx-1.nginx:\
         每个稳定的DNS名称都访问到对应的Pod,返回它自己写入的页面。",
    )
}

fn pods_come_back_with_their_storage_step() -> Step {
    Step::new(
        "delete both pods: they come back with the same names and PVCs, and still serve nginx-N",
        "kubectl delete pod -l app=nginx; kubectl get pod -l app=nginx",
        POD_TIMEOUT,
        pods_come_back_with_their_storage,
    )
    .explain(
        "Both pods are deleted. The StatefulSet recreates them with the same names, each \
         mounting the same claim bound to the same volume, so they still serve nginx-0 \
         and nginx-1: the state survives rescheduling.",
    )
    .explain_zh(
        "删除两个Pod后,StatefulSet以相同的名称重新创建它们,\
         每个Pod挂载原来的PVC和同一个持久卷,所以仍然返回 nginx-0 和 nginx-1。\
         这确保了即使实例重新调度,应用程序仍然可以访问其之前的状态。",
    )
}

fn scale_down_keeps_the_claim_step() -> Step {
    Step::new(
        "scale to 1: pod nginx-1 goes, PVC www-nginx-1 stays",
        "kubectl scale statefulset nginx --replicas=1; kubectl get pvc",
        POD_TIMEOUT,
        scale_down_keeps_the_claim,
    )
    .explain(
        "Scaling in to 1 removes the pod with the highest ordinal, nginx-1. Its claim \
         www-nginx-1 is kept and stays Bound: a StatefulSet does not delete its pods' \
         data when it scales in.",
    )
    .explain_zh(
        "缩容到1个副本时,StatefulSet删除序号最大的Pod nginx-1。\
         它的PVC www-nginx-1 被保留,仍然是Bound:\
         StatefulSet缩容时不会删除Pod的数据。",
    )
}

fn scale_up_finds_the_old_content_step() -> Step {
    Step::new(
        "scale back to 2: nginx-1 serves its old content again",
        "kubectl scale statefulset nginx --replicas=2",
        POD_TIMEOUT,
        scale_up_finds_the_old_content,
    )
    .explain(
        "Scaling back to 2 recreates nginx-1, which mounts its old claim www-nginx-1 and \
         serves the page written before the scale-in.",
    )
    .explain_zh(
        "再扩容到2个副本,重新创建的nginx-1挂载原来的PVC www-nginx-1,\
         返回缩容之前写入的页面。",
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_has_the_issues_steps_with_errata_named() {
        let lab = lab();
        assert_eq!(lab.name(), "pvc-templates");
        assert_eq!(lab.steps().len(), 12);
        let errata = lab.errata();
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
}
