//! An image ready for a container: its root filesystem and how it starts, whether it was pulled
//! from a registry or built from the offline catalog.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Container;

use crate::catalog::ResolvedImage;
use crate::registry::{ImageConfig, PullReference, StoredImage};

/// What a container is started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnableImage {
    /// The container status's `image`: the reference, normalized
    /// (`docker.io/library/nginx:latest`).
    pub reference: String,
    /// The container status's `imageID`: `docker.io/library/nginx@sha256:…` for a pulled
    /// image, as containerd reports its repo digest; `k8s-labs-catalog://<entry>` for a
    /// catalog image, which has no manifest to have a digest of.
    pub image_id: String,
    /// Its layers, lowest first: the read-only lower directories of the container's overlay
    /// root (a catalog image has one).
    pub layers: Vec<PathBuf>,
    /// Entrypoint, Cmd, Env, WorkingDir and User.
    pub config: ImageConfig,
}

impl RunnableImage {
    /// A pulled image, named by the reference it was pulled by.
    pub fn pulled(reference: &PullReference, image: StoredImage) -> RunnableImage {
        RunnableImage {
            reference: reference.to_string(),
            image_id: format!(
                "{}/{}@{}",
                reference.registry, reference.repository, image.repo_digest
            ),
            layers: image.layers,
            config: image.config,
        }
    }

    /// A catalog image whose root filesystem is built at `rootfs`.
    pub fn from_catalog(image: &ResolvedImage, rootfs: PathBuf) -> RunnableImage {
        let entry = &image.entry;
        RunnableImage {
            reference: image.reference.normalized(),
            image_id: image.image_id(),
            layers: vec![rootfs],
            config: ImageConfig {
                entrypoint: Some(entry.entrypoint.clone()),
                cmd: Some(entry.cmd.clone()),
                env: entry
                    .env
                    .iter()
                    .map(|var| format!("{}={}", var.name, var.value))
                    .collect(),
                working_dir: entry.working_dir.clone(),
                user: String::new(),
            },
        }
    }

    /// The process's arguments with Kubernetes' rules: `command` replaces the image's
    /// Entrypoint (and drops its Cmd); `args` replace its Cmd.
    pub fn process_args(&self, container: &Container) -> Vec<String> {
        let command = container.command.clone().unwrap_or_default();
        let args = container.args.clone().unwrap_or_default();
        let entrypoint = self.config.entrypoint.clone().unwrap_or_default();
        match (command.is_empty(), args.is_empty()) {
            (false, _) => command.into_iter().chain(args).collect(),
            (true, false) => entrypoint.into_iter().chain(args).collect(),
            (true, true) => entrypoint
                .into_iter()
                .chain(self.config.cmd.clone().unwrap_or_default())
                .collect(),
        }
    }

    /// The working directory: the container's, else the image's, else `/`.
    pub fn working_dir(&self, container: &Container) -> String {
        container
            .working_dir
            .clone()
            .filter(|dir| !dir.is_empty())
            .or_else(|| Some(self.config.working_dir.clone()).filter(|dir| !dir.is_empty()))
            .unwrap_or_else(|| "/".to_string())
    }

    /// The image's environment as (name, value) pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .map(|line| match line.split_once('=') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => (line.clone(), String::new()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> RunnableImage {
        let strings = |list: &[&str]| Some(list.iter().map(|s| s.to_string()).collect());
        RunnableImage {
            reference: "docker.io/library/x:latest".into(),
            image_id: String::new(),
            layers: Vec::new(),
            config: ImageConfig {
                entrypoint: strings(entrypoint),
                cmd: strings(cmd),
                env: vec!["PATH=/bin".into(), "EMPTY".into()],
                working_dir: String::new(),
                user: String::new(),
            },
        }
    }

    fn container(command: &[&str], args: &[&str]) -> Container {
        let strings = |list: &[&str]| Some(list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        Container {
            command: strings(command).filter(|list| !list.is_empty()),
            args: strings(args).filter(|list| !list.is_empty()),
            ..Container::default()
        }
    }

    #[test]
    fn command_and_args_replace_entrypoint_and_cmd_as_kubernetes_says() {
        let image = image(&["/entry", "-x"], &["default"]);
        assert_eq!(
            image.process_args(&container(&[], &[])),
            ["/entry", "-x", "default"]
        );
        assert_eq!(
            image.process_args(&container(&[], &["mine"])),
            ["/entry", "-x", "mine"]
        );
        assert_eq!(image.process_args(&container(&["sh"], &[])), ["sh"]);
        assert_eq!(
            image.process_args(&container(&["sh"], &["-c", "true"])),
            ["sh", "-c", "true"]
        );
    }

    #[test]
    fn working_dir_and_env_come_from_the_image_unless_the_container_says() {
        let image = image(&[], &[]);
        assert_eq!(image.working_dir(&Container::default()), "/");
        let mut container = Container {
            working_dir: Some("/data".into()),
            ..Container::default()
        };
        assert_eq!(image.working_dir(&container), "/data");
        container.working_dir = None;
        let mut with_dir = image.clone();
        with_dir.config.working_dir = "/work".into();
        assert_eq!(with_dir.working_dir(&container), "/work");
        assert_eq!(
            image.env(),
            [
                ("PATH".to_string(), "/bin".to_string()),
                ("EMPTY".to_string(), String::new())
            ]
        );
    }
}
