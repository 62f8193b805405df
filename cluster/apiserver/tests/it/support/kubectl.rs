//! The real kubectl run against a `TestApiServer`, with its own kubeconfig and cache.

use std::path::PathBuf;

use k8s_labs_apiserver::testing::{TestApiServer, kubectl_binary};

/// What one kubectl run printed.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// kubectl with its own kubeconfig and cache in `dir`.
pub struct Kubectl {
    pub binary: String,
    pub dir: PathBuf,
}

impl Kubectl {
    /// kubectl 1.`minor` for `api`, in a fresh directory named after `test`.
    pub fn new(api: &TestApiServer, test: &str, minor: u32) -> Kubectl {
        let binary = kubectl_binary(minor).display().to_string();
        let dir = std::env::temp_dir().join(format!("{test}-{}-{minor}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // client-go sends the token only over TLS, so kubectl uses the https URL.
        std::fs::write(dir.join("kubeconfig"), api.https_kubeconfig()).unwrap();
        Kubectl { binary, dir }
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(&self.binary)
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .output()
            .await
            .unwrap();
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        }
    }

    /// Runs kubectl and expects it to succeed; its stdout and stderr.
    pub async fn ok(&self, args: &[&str]) -> (String, String) {
        let run = self.run(args).await;
        assert!(
            run.success,
            "{} {args:?} failed:\n{}{}",
            self.binary, run.stdout, run.stderr
        );
        (run.stdout, run.stderr)
    }

    /// Writes `yaml` to a file in the test's directory; its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// Removes the test's directory.
    pub fn remove(self) {
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}
