//! Lab replicaset-scale: the tutorial's section 无状态. A ReplicaSet `example-app` behind the
//! Service `example-service`, scaled up and down through the scale subresource (what
//! `kubectl scale` does), healing itself when a pod is deleted.
//!
//! The tutorial's manifests are applied verbatim first and their errata are shown as steps
//! named for them: `example-image:latest` exists on no registry (the pods cannot pull it), and
//! `targetPort: 8080` points at a port nginx does not listen on (the Service has endpoints but
//! gives no answer). The corrected manifests beside them are applied next.
//!
//! What a step shows is checked against `expected/` (golden files, redacted); objects are
//! checked with partial YAML fragments, endpoints with the harness's named relation.

pub mod check;
mod steps;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use k8s_labs_harness::expect::expect_contains;
use k8s_labs_harness::{Lab, Step, StepContext};

use crate::steps::{
    apply_expecting, apply_fixed_image, apply_fixed_target_port, curl_service_page,
    image_cannot_be_pulled, pods_are_interchangeable, pods_ready, scale_to, self_healing,
    service_endpoints, target_port_gets_no_answer,
};

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

/// `labs/replicaset-scale/expected/`: the golden files of what the steps show.
pub fn expected_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("expected")
}

/// The lab as the tutorial describes it.
pub fn lab() -> Lab {
    Lab::new(
        NAME,
        "ReplicaSet example-app behind Service example-service, scaled and self-healing",
        manifests_dir(),
    )
    .expected(expected_dir())
    .step(apply_replicaset_step())
    .step(image_cannot_be_pulled_step())
    .step(apply_fixed_image_step())
    .step(pods_ready_step())
    .step(apply_service_step())
    .step(service_endpoints_step())
    .step(target_port_gets_no_answer_step())
    .step(apply_fixed_target_port_step())
    .step(curl_service_page_step())
    .step(scale_to_5_step())
    .step(scale_to_2_step())
    .step(self_healing_step())
    .step(pods_are_interchangeable_step())
}

fn apply_replicaset_step() -> Step {
    Step::new(
        "apply replicaset.yaml (verbatim)",
        "kubectl apply -f replicaset.yaml",
        COMMAND_TIMEOUT,
        |ctx| apply_expecting(ctx, "replicaset.yaml", "apply-replicaset.txt"),
    )
    .explain(
        "The tutorial's ReplicaSet asks for 3 replicas of a pod labelled app=example. A \
         ReplicaSet keeps that many pods running and replaces any that fail. This \
         manifest is applied exactly as the tutorial writes it.",
    )
    .explain_zh(
        "通过创建一个ReplicaSet对象,指定所需的副本数(replicas: 3)。\
         ReplicaSet确保在集群中运行指定数量的副本,并在发生故障时进行自动修复。\
         这里按教程原样应用该YAML。",
    )
}

fn image_cannot_be_pulled_step() -> Step {
    Step::new(
        "erratum: image example-image:latest cannot be pulled (ErrImagePull/ImagePullBackOff)",
        "kubectl get pod -l app=example",
        POD_TIMEOUT,
        image_cannot_be_pulled,
    )
    .explain(
        "The tutorial's image example-image:latest is a placeholder that no registry \
         serves, so every pod waits with ErrImagePull or ImagePullBackOff and never \
         starts. This is the tutorial's first erratum.",
    )
    .explain_zh(
        "教程中的镜像 example-image:latest 只是一个占位名称,\
         任何镜像仓库都没有它,所以每个Pod都停在 ErrImagePull 或 ImagePullBackOff,\
         无法启动。这是教程的第一个勘误。",
    )
}

fn apply_fixed_image_step() -> Step {
    Step::new(
        "apply replicaset.fixed-image.yaml (image nginx) and delete the pods of the old image",
        "kubectl apply -f replicaset.fixed-image.yaml; kubectl delete pod -l app=example",
        COMMAND_TIMEOUT,
        apply_fixed_image,
    )
    .explain(
        "The corrected manifest uses the image nginx. A ReplicaSet never changes the pods \
         it already has, only new pods get the new template; so the stuck pods are \
         deleted and the ReplicaSet recreates them from the corrected template.",
    )
    .explain_zh(
        "修正后的YAML使用 nginx 镜像。ReplicaSet不会更新已有的Pod,\
         只有新建的Pod才使用新的模板;所以删除卡住的Pod,由ReplicaSet按修正后的模板重新创建。",
    )
}

fn pods_ready_step() -> Step {
    Step::new(
        "3 pods become Running and Ready",
        "kubectl get pod -l app=example",
        POD_TIMEOUT,
        pods_ready,
    )
    .explain(
        "The ReplicaSet's 3 new pods run nginx and become Running and Ready. Their names \
         are example-app- plus a random suffix: the pods are interchangeable copies.",
    )
    .explain_zh(
        "ReplicaSet重新创建的3个Pod使用nginx镜像,状态变为Running并Ready。\
         Pod名称是 example-app- 加随机后缀:无状态应用程序的实例是可以互相替代的。",
    )
}

fn apply_service_step() -> Step {
    Step::new(
        "apply service.yaml (verbatim)",
        "kubectl apply -f service.yaml",
        COMMAND_TIMEOUT,
        |ctx| apply_expecting(ctx, "service.yaml", "apply-service.txt"),
    )
    .explain(
        "A Service gives the ReplicaSet's pods one stable network endpoint: a virtual \
         cluster IP and port 80, forwarded to the pods it selects by app=example. The \
         manifest is applied as the tutorial writes it.",
    )
    .explain_zh(
        "为无状态应用程序创建一个Service,它为副本集提供一个稳定的网络终结点。\
         Service允许其他应用程序通过Service的虚拟IP和端口与应用程序通信。\
         这里按教程原样应用。",
    )
}

fn service_endpoints_step() -> Step {
    Step::new(
        "Service example-service has a cluster IP and 3 endpoints",
        "kubectl get svc example-service; kubectl get ep example-service",
        COMMAND_TIMEOUT,
        service_endpoints,
    )
    .explain(
        "The Service has a cluster IP, and its endpoints are the 3 Ready pods' IPs on \
         targetPort 8080. Endpoints only say where traffic goes; they do not prove that \
         anything listens there.",
    )
    .explain_zh(
        "Service分配了一个Cluster IP,它的endpoints是3个Ready Pod的IP加 targetPort 8080。\
         endpoints只说明流量转发到哪里,并不说明那里有程序在监听。",
    )
}

fn target_port_gets_no_answer_step() -> Step {
    Step::new(
        "erratum: targetPort 8080 — curl example-service gets no answer while its endpoints exist",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         curl -sS --max-time 3 http://example-service",
        COMMAND_TIMEOUT,
        target_port_gets_no_answer,
    )
    .explain(
        "nginx listens on port 80, but the tutorial's Service forwards to targetPort \
         8080, where nothing listens. curl resolves the Service's name but gets no \
         answer, although the endpoints are there: the tutorial's second erratum.",
    )
    .explain_zh(
        "nginx监听的是80端口,而教程中的Service把流量转发到 targetPort: 8080,\
         那里没有程序监听。curl能解析Service名称却得不到应答,\
         尽管endpoints存在:这是教程的第二个勘误。",
    )
}

fn apply_fixed_target_port_step() -> Step {
    Step::new(
        "apply service.fixed-target-port.yaml (targetPort 80): endpoints move to port 80",
        "kubectl apply -f service.fixed-target-port.yaml; kubectl get ep example-service",
        COMMAND_TIMEOUT,
        apply_fixed_target_port,
    )
    .explain(
        "The corrected Service forwards to targetPort 80. kubectl apply changes the \
         Service in place, and its endpoints move to port 80 of the same pods.",
    )
    .explain_zh(
        "修正后的Service使用 targetPort: 80。kubectl apply 直接修改该Service,\
         endpoints随之变为同样那些Pod的80端口。",
    )
}

fn curl_service_page_step() -> Step {
    Step::new(
        "curl example-service from a pod returns the nginx page",
        "kubectl run curl --image nginx --restart=Never --rm -i -- \
         curl -s --max-time 3 http://example-service",
        COMMAND_TIMEOUT,
        curl_service_page,
    )
    .explain(
        "From a pod, curl http://example-service: the name resolves to the Service's \
         cluster IP, the Service forwards to port 80 of one of the pods, and nginx \
         answers with its welcome page.",
    )
    .explain_zh(
        "在Pod中执行 curl http://example-service:\
         名称解析为Service的虚拟IP,Service把请求转发到某个Pod的80端口,\
         nginx返回欢迎页面。",
    )
}

fn scale_to_5_step() -> Step {
    Step::new(
        "scale to 5 through the scale subresource: 5 pods Ready, 5 endpoints",
        "kubectl scale replicaset example-app --replicas=5",
        POD_TIMEOUT,
        |ctx| scale_to(ctx, 5, "scale-to-5.txt"),
    )
    .explain(
        "Scaling out is changing the ReplicaSet's replicas, here through the scale \
         subresource as kubectl scale does. Kubernetes creates 2 more pods, and the \
         Service's endpoints grow to 5 by themselves.",
    )
    .explain_zh(
        "水平扩展:通过更改ReplicaSet中的副本数(kubectl scale --replicas=5)\
         ,可以水平扩展应用程序。Kubernetes会自动创建新的Pod,Service的endpoints也自动增加到5个。",
    )
}

fn scale_to_2_step() -> Step {
    Step::new(
        "scale to 2: 2 pods remain, 2 endpoints",
        "kubectl scale replicaset example-app --replicas=2",
        POD_TIMEOUT,
        |ctx| scale_to(ctx, 2, "scale-to-2.txt"),
    )
    .explain(
        "Scaling in to 2: the ReplicaSet deletes 3 pods and the Service stops sending \
         traffic to them; 2 endpoints remain.",
    )
    .explain_zh(
        "缩容到2个副本:Kubernetes会自动管理副本的销毁,ReplicaSet删除多余的3个Pod,\
         Service的endpoints只剩2个。",
    )
}

fn self_healing_step() -> Step {
    Step::new(
        "delete one pod: the ReplicaSet replaces it with a pod of a new name",
        "kubectl delete pod <first pod>; kubectl get pod -l app=example",
        POD_TIMEOUT,
        self_healing,
    )
    .explain(
        "Deleting a pod by hand is like a failure: the ReplicaSet sees one pod too few \
         and creates a replacement with a new random name. This is the self-healing the \
         tutorial describes.",
    )
    .explain_zh(
        "手动删除一个Pod相当于一次故障:ReplicaSet发现少了一个Pod,\
         就用新的随机名称创建一个替代的Pod。这就是ReplicaSet在发生故障时的自动修复。",
    )
}

fn pods_are_interchangeable_step() -> Step {
    Step::new(
        "pods are interchangeable: random names owned by the ReplicaSet, not ordinals",
        "kubectl get pod -l app=example -o custom-columns=\
         NAME:.metadata.name,GENERATENAME:.metadata.generateName,\
         OWNER:.metadata.ownerReferences[0].kind,NAME:.metadata.ownerReferences[0].name",
        COMMAND_TIMEOUT,
        pods_are_interchangeable,
    )
    .explain(
        "Every pod's name is generated from example-app- and every pod is controlled by \
         the ReplicaSet: nothing tells one pod from another. A StatefulSet instead gives \
         its pods ordinals (web-0, web-1) and stable identities.",
    )
    .explain_zh(
        "每个Pod的名称都由 example-app- 加随机后缀生成,并由ReplicaSet控制,\
         Pod之间没有区别:无状态应用程序通常可以使用随机的Pod标识符。而StatefulSet为Pod分配有序的、\
         稳定的标识(web-0、web-1)。",
    )
}

/// `curl http://example-service` from one-shot client pods named `pod` (`pod-2`, … on
/// retries) until nginx's welcome page comes back; the page. Shared by the lab and check mode.
pub(crate) async fn fetch_service_page(ctx: &StepContext, pod: &str) -> Result<String> {
    let url = format!("http://{SERVICE}");
    let command = ["curl", "-sS", "--max-time", "3", url.as_str()];
    ctx.run_once_until(pod, CLIENT_IMAGE, &command, |output| {
        expect_contains(
            "example-service answers with the nginx welcome page",
            "<title>Welcome to nginx!</title>",
            &output.stdout,
        )
        .map_err(|mismatch| mismatch.with_detail(output.combined()))?;
        Ok(output.stdout.clone())
    })
    .await
}

/// `manifests/replicaset-scale/` of the workspace this crate was built in.
pub fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/replicaset-scale")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_has_the_issues_steps_with_errata_named() {
        let lab = lab();
        assert_eq!(lab.name(), "replicaset-scale");
        assert_eq!(lab.steps().len(), 13);
        let errata = lab.errata();
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
