//! `kubectl auth can-i` against the API server: its one user, the admin, may do everything,
//! and `--list` shows the rules a kind cluster's admin has.

use crate::support::kubectl::Kubectl;
use k8s_labs_apiserver::testing::TestApiServer;

/// kubectl 1.32 and later send the reviews as protobuf, older ones as JSON: both are read.
const KUBECTLS: &[u32] = &[33, 31, 27];

/// What `kubectl auth can-i --list` prints for the admin of a kind cluster.
const RULES: &str = "\
Resources                                       Non-Resource URLs   Resource Names   Verbs
*.*                                             []                  []               [*]
                                                [*]                 []               [*]
selfsubjectreviews.authentication.k8s.io        []                  []               [create]
selfsubjectaccessreviews.authorization.k8s.io   []                  []               [create]
selfsubjectrulesreviews.authorization.k8s.io    []                  []               [create]
                                                [/api/*]            []               [get]
                                                [/api]              []               [get]
                                                [/apis/*]           []               [get]
                                                [/apis]             []               [get]
                                                [/healthz]          []               [get]
                                                [/healthz]          []               [get]
                                                [/livez]            []               [get]
                                                [/livez]            []               [get]
                                                [/openapi/*]        []               [get]
                                                [/openapi]          []               [get]
                                                [/readyz]           []               [get]
                                                [/readyz]           []               [get]
                                                [/version/]         []               [get]
                                                [/version/]         []               [get]
                                                [/version]          []               [get]
                                                [/version]          []               [get]
";

#[tokio::test]
async fn the_admin_can_do_everything() {
    let api = TestApiServer::start().await.unwrap();
    for minor in KUBECTLS {
        let kubectl = Kubectl::new(&api, "apiserver-auth", *minor);
        for question in [
            &["create", "pods"][..],
            &["delete", "statefulsets.apps", "-n", "kube-system"],
            &["get", "/healthz"],
        ] {
            let args = [&["auth", "can-i"][..], question].concat();
            assert_eq!(kubectl.ok(&args).await.0, "yes\n", "{args:?}");
        }
        assert_eq!(kubectl.ok(&["auth", "can-i", "--list"]).await.0, RULES);

        // Create-only: listing them is refused as kube-apiserver refuses it.
        let listed = kubectl.run(&["get", "selfsubjectaccessreviews"]).await;
        assert!(!listed.success);
        assert_eq!(
            listed.stderr,
            "Error from server (MethodNotAllowed): the server does not allow this method on \
             the requested resource\n"
        );
        let (resources, _) = kubectl
            .ok(&[
                "api-resources",
                "--api-group=authorization.k8s.io",
                "-o",
                "wide",
            ])
            .await;
        let verbs: Vec<(&str, &str)> = resources
            .lines()
            .skip(1)
            .filter_map(|line| {
                let columns: Vec<&str> = line.split_whitespace().collect();
                // No short names nor categories: the verbs are the last column.
                Some((*columns.first()?, *columns.last()?))
            })
            .collect();
        assert_eq!(
            verbs,
            [
                ("selfsubjectaccessreviews", "create"),
                ("selfsubjectrulesreviews", "create")
            ],
            "{resources}"
        );
        kubectl.remove();
    }
    api.shutdown().await;
}
