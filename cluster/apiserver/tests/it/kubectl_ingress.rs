//! networking.k8s.io/v1 as a fresh kind cluster serves it (no ingress controller): Ingress,
//! IngressClass and NetworkPolicy stored and printed as kube-apiserver prints them.

use crate::support::kubectl::Kubectl;
use k8s_labs_apiserver::testing::TestApiServer;

const MANIFEST: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  ingressClassName: nginx
  tls:
  - hosts: [a.example.com]
    secretName: tls
  rules:
  - host: a.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: 80
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
spec:
  controller: k8s.io/ingress-nginx
";

/// An IngressClass marked as the default one.
const DEFAULT_CLASS: &str = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: traefik
  annotations:
    ingressclass.kubernetes.io/is-default-class: \"true\"
spec:
  controller: traefik.io/ingress-controller
";

/// An Ingress whose path has no pathType.
const UNTYPED: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: untyped
spec:
  rules:
  - http:
      paths:
      - path: /
        backend:
          service:
            name: web
            port:
              name: http
";

#[tokio::test]
async fn ingresses_and_network_policies_are_served_without_a_controller() {
    let api = TestApiServer::start().await.unwrap();
    // kubectl 1.32 and later send `create ingress` as protobuf, 1.31 as JSON: one Ingress is
    // created each way. Manifests go as JSON with every kubectl.
    let (k31, k33) = (
        Kubectl::new(&api, "apiserver-ingress", 31),
        Kubectl::new(&api, "apiserver-ingress", 33),
    );
    let (out, err) = k33.ok(&["get", "ingress"]).await;
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("", "No resources found in default namespace.\n")
    );

    let rule = "--rule=foo.com/bar=svc1:8080";
    let (out, _) = k33.ok(&["create", "ingress", "simple", rule]).await;
    assert_eq!(out, "ingress.networking.k8s.io/simple created\n");
    let file = k33.manifest("networking.yaml", MANIFEST);
    let (out, _) = k33.ok(&["apply", "-f", &file]).await;
    assert_eq!(
        out,
        "ingress.networking.k8s.io/web created\nnetworkpolicy.networking.k8s.io/deny created\n\
         ingressclass.networking.k8s.io/nginx created\n"
    );

    let (out, _) = k33.ok(&["get", "ingress", "--no-headers"]).await;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows[0][..4], ["simple", "<none>", "foo.com", "80"], "{out}");
    assert_eq!(
        rows[1][..4],
        ["web", "nginx", "a.example.com", "80, 443"],
        "{out}"
    );
    let (out, _) = k33.ok(&["get", "ingress"]).await;
    assert!(
        out.starts_with("NAME     CLASS    HOSTS           ADDRESS   PORTS     AGE\n"),
        "{out}"
    );

    // Upstream's defaults: an empty load-balancer status, TCP ports, the Ingress policy type.
    let (out, _) = k33
        .ok(&["get", "ingress", "simple", "-o", "jsonpath={.status}"])
        .await;
    assert_eq!(out, r#"{"loadBalancer":{}}"#);
    let (out, _) = k33
        .ok(&[
            "get",
            "ingress",
            "simple",
            "-o",
            "jsonpath={.spec.rules[0].http.paths[0].pathType}",
        ])
        .await;
    assert_eq!(out, "Exact");
    let policy = "jsonpath={.spec.policyTypes} {.spec.ingress[0].ports[0].protocol}";
    let (out, _) = k33.ok(&["get", "netpol", "deny", "-o", policy]).await;
    assert_eq!(out, r#"["Ingress"] TCP"#);

    let (out, _) = k33.ok(&["get", "netpol,ingressclass"]).await;
    let expected = "\
NAME                                   POD-SELECTOR   AGE
networkpolicy.networking.k8s.io/deny   app=web        ";
    assert!(out.starts_with(expected), "{out}");
    assert!(
        out.contains("ingressclass.networking.k8s.io/nginx   k8s.io/ingress-nginx   <none>       "),
        "{out}"
    );

    let (out, _) = k33.ok(&["describe", "ingress", "simple"]).await;
    for line in [
        "Name:             simple\n",
        "Ingress Class:    <none>\n",
        "  foo.com     \n              /bar   svc1:8080 (<error: services \"svc1\" not found>)\n",
    ] {
        assert!(out.contains(line), "{out}");
    }

    // The DefaultIngressClass admission plugin: a new Ingress naming no class gets the default.
    let default_class = k33.manifest("default-class.yaml", DEFAULT_CLASS);
    k33.ok(&["apply", "-f", &default_class]).await;
    k31.ok(&["create", "ingress", "defaulted", rule]).await;
    let class = "jsonpath={.spec.ingressClassName}";
    let (out, _) = k33.ok(&["get", "ingress", "defaulted", "-o", class]).await;
    assert_eq!(out, "traefik");

    let untyped = k33.manifest("untyped.yaml", UNTYPED);
    let refused = k33.run(&["apply", "-f", &untyped]).await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains(
            "The Ingress \"untyped\" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
        ),
        "{}",
        refused.stderr
    );
    k31.remove();
    k33.remove();
    api.shutdown().await;
}
