//! Finding a Docker-compatible engine the way testcontainers does (`DOCKER_HOST`, else the
//! usual socket paths), and asking it `/_ping` before anything is pulled: without an engine,
//! `--cluster k3s` must fail at once with one line that says what to do instead.

use std::path::PathBuf;
use std::time::Duration;

use testcontainers::bollard::{API_DEFAULT_VERSION, Docker};

/// How long the engine has to answer `/_ping`.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The environment the engine is found from (captured, so tests need not change the process's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineEnv {
    /// `DOCKER_HOST`, e.g. `unix:///run/podman/podman.sock` or `tcp://127.0.0.1:2375`.
    pub docker_host: Option<String>,
    /// `HOME`, for Docker Desktop's and rootless Docker's sockets.
    pub home: Option<PathBuf>,
    /// `XDG_RUNTIME_DIR`, for rootless Docker's socket.
    pub xdg_runtime_dir: Option<PathBuf>,
}

impl EngineEnv {
    /// This process's environment.
    pub fn from_process() -> EngineEnv {
        EngineEnv {
            docker_host: std::env::var("DOCKER_HOST")
                .ok()
                .filter(|host| !host.trim().is_empty()),
            home: std::env::home_dir(),
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        }
    }

    /// The engine address testcontainers will use: `DOCKER_HOST`, else the first socket that
    /// exists of `/var/run/docker.sock`, `$XDG_RUNTIME_DIR/.docker/run/docker.sock`,
    /// `~/.docker/run/docker.sock`, `~/.docker/desktop/docker.sock`; `None` when there is none.
    pub fn endpoint(&self) -> Option<String> {
        if let Some(host) = &self.docker_host {
            return Some(host.clone());
        }
        let mut candidates = vec![PathBuf::from("/var/run/docker.sock")];
        if let Some(dir) = &self.xdg_runtime_dir {
            candidates.push(dir.join(".docker/run/docker.sock"));
        }
        if let Some(home) = &self.home {
            candidates.push(home.join(".docker/run/docker.sock"));
            candidates.push(home.join(".docker/desktop/docker.sock"));
        }
        candidates
            .into_iter()
            .find(|path| path.exists())
            .map(|path| format!("unix://{}", path.display()))
    }
}

/// Checks that a Docker-compatible engine answers; the error is the one line the user sees.
pub async fn require_engine(env: &EngineEnv) -> Result<String, String> {
    let Some(endpoint) = env.endpoint() else {
        return Err(no_engine(
            "none was found (DOCKER_HOST is not set and /var/run/docker.sock does not exist)",
        ));
    };
    match ping(&endpoint).await {
        Ok(()) => Ok(endpoint),
        Err(reason) => Err(no_engine(&format!("none answers at {endpoint} ({reason})"))),
    }
}

/// The one line for "no engine": what is missing, then the three ways forward.
fn no_engine(detail: &str) -> String {
    format!(
        "--cluster k3s needs a Docker-compatible engine, and {detail}; start Docker (for \
         podman: `systemctl start podman.socket` and DOCKER_HOST=unix:///run/podman/podman.sock), \
         or run on an existing cluster with --kubeconfig PATH, or leave out --cluster to use \
         the embedded cluster"
    )
}

async fn ping(endpoint: &str) -> Result<(), String> {
    let timeout = PING_TIMEOUT.as_secs();
    let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
        if !std::path::Path::new(path).exists() {
            return Err(format!("{path} does not exist"));
        }
        Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION)
    } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
        Docker::connect_with_http(endpoint, timeout, API_DEFAULT_VERSION)
    } else if endpoint.starts_with("https://") {
        // TLS engines need DOCKER_CERT_PATH; testcontainers reads it, we let it try.
        return Ok(());
    } else {
        return Err("unsupported address; use unix://PATH or tcp://HOST:PORT".to_string());
    };
    let docker = docker.map_err(|error| error.to_string())?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {}s", PING_TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_wins_over_the_socket_paths() {
        let env = EngineEnv {
            docker_host: Some("unix:///run/podman/podman.sock".to_string()),
            ..Default::default()
        };
        assert_eq!(
            env.endpoint().as_deref(),
            Some("unix:///run/podman/podman.sock")
        );
    }

    #[test]
    fn a_socket_under_home_is_found() {
        let home =
            std::env::temp_dir().join(format!("k8s-labs-engine-home-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".docker/run")).unwrap();
        std::fs::write(home.join(".docker/run/docker.sock"), "").unwrap();
        let env = EngineEnv {
            home: Some(home.clone()),
            ..Default::default()
        };
        if !std::path::Path::new("/var/run/docker.sock").exists() {
            assert_eq!(
                env.endpoint(),
                Some(format!("unix://{}/.docker/run/docker.sock", home.display()))
            );
        }
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[tokio::test]
    async fn a_nonexistent_socket_is_one_line_with_the_ways_forward() {
        let env = EngineEnv {
            docker_host: Some("unix:///nonexistent/docker.sock".to_string()),
            ..Default::default()
        };
        let error = require_engine(&env).await.unwrap_err();
        assert_eq!(
            error,
            "--cluster k3s needs a Docker-compatible engine, and none answers at \
             unix:///nonexistent/docker.sock (/nonexistent/docker.sock does not exist); start \
             Docker (for podman: `systemctl start podman.socket` and \
             DOCKER_HOST=unix:///run/podman/podman.sock), or run on an existing cluster with \
             --kubeconfig PATH, or leave out --cluster to use the embedded cluster"
        );
        assert!(!error.contains('\n'));
    }

    #[tokio::test]
    async fn a_socket_nobody_listens_on_is_reported_as_not_answering() {
        let dir = std::env::temp_dir().join(format!("k8s-labs-engine-dead-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("docker.sock");
        // A socket file whose listener is gone: connect() is refused.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let env = EngineEnv {
            docker_host: Some(format!("unix://{}", path.display())),
            ..Default::default()
        };
        let error = require_engine(&env).await.unwrap_err();
        assert!(
            error.starts_with(&format!(
                "--cluster k3s needs a Docker-compatible engine, and none answers at unix://{}",
                path.display()
            )),
            "{error}"
        );
        assert!(error.contains("--kubeconfig PATH"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
