//! The part of an image's configuration a container runtime uses to start a container:
//! Entrypoint, Cmd, Env, WorkingDir and User, as in the OCI image spec's `config` object
//! (Docker's config has the same names).

use anyhow::Context;
use serde::Deserialize;

/// How an image says its containers start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// The program and its first arguments; a pod's `command` replaces it.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The arguments after the entrypoint; a pod's `args` replace them.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` lines, under the pod's own `env`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    /// The working directory; empty means `/`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty means root.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
}

/// Docker writes `null` for an empty list or string.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The whole config blob: only its `config` object matters here (an image may have none).
#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ImageConfig>,
}

impl ImageConfig {
    /// Reads the config from an image's config blob (JSON).
    pub fn from_blob(json: &[u8]) -> anyhow::Result<ImageConfig> {
        let blob: ConfigBlob =
            serde_json::from_slice(json).context("parsing the image's config blob")?;
        Ok(blob.config.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_and_oci_configs() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{
            "Entrypoint":["/bin/busybox"],"Cmd":["sh"],"Env":["PATH=/bin","A=b"],
            "WorkingDir":"/work","User":"1000:1000","Labels":{"x":"y"}},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config = ImageConfig::from_blob(json).unwrap();
        assert_eq!(config.entrypoint, Some(vec!["/bin/busybox".to_string()]));
        assert_eq!(config.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(config.env, vec!["PATH=/bin", "A=b"]);
        assert_eq!(config.working_dir, "/work");
        assert_eq!(config.user, "1000:1000");
    }

    #[test]
    fn an_image_without_config_or_with_nulls_has_defaults() {
        assert_eq!(
            ImageConfig::from_blob(b"{}").unwrap(),
            ImageConfig::default()
        );
        let nulls = br#"{"config":{"Entrypoint":null,"Cmd":null,"Env":null,"User":null}}"#;
        assert_eq!(
            ImageConfig::from_blob(nulls).unwrap(),
            ImageConfig::default()
        );
        assert!(ImageConfig::from_blob(b"not json").is_err());
    }
}
