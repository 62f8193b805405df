//! Registry credentials from a pod's `imagePullSecrets`: Secrets of type
//! `kubernetes.io/dockerconfigjson` (`{"auths": {"<registry>": {...}}}`) or the older
//! `kubernetes.io/dockercfg` (the `auths` map alone), each entry with `username` and
//! `password` or `auth` (base64 of `user:password`), matched to a reference as the kubelet's
//! keyring matches them: by registry host, or host and repository path prefix.

use anyhow::{Context, Result, bail};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use crate::registry::PullReference;

/// One registry login.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// `docker.io`, `127.0.0.1:5000`, or with a path: `127.0.0.1:5000/private`.
    pub key: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, even in a debug log.
        write!(f, "Credential({} as {})", self.key, self.username)
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

/// The logins of a pull secret; an error says what is wrong with it.
pub fn parse_docker_config(secret: &Secret) -> Result<Vec<Credential>> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let data = secret.data.as_ref();
    let (json, wrapped) = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => {
            (data.and_then(|data| data.get(".dockerconfigjson")), true)
        }
        Some("kubernetes.io/dockercfg") => (data.and_then(|data| data.get(".dockercfg")), false),
        other => bail!(
            "secret {name:?} has type {:?}, not kubernetes.io/dockerconfigjson",
            other.unwrap_or_default()
        ),
    };
    let Some(json) = json else {
        bail!("secret {name:?} has no docker config key");
    };
    let auths = if wrapped {
        serde_json::from_slice::<DockerConfig>(&json.0)
            .map(|config| config.auths)
            .with_context(|| format!("secret {name:?}: not a docker config"))?
    } else {
        serde_json::from_slice(&json.0)
            .with_context(|| format!("secret {name:?}: not a docker config"))?
    };
    let mut credentials = Vec::new();
    for (key, entry) in auths {
        let (username, password) = match (entry.username, entry.password, entry.auth) {
            (Some(user), Some(password), _) => (user, password),
            (_, _, Some(auth)) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .with_context(|| format!("secret {name:?}: auth of {key} is not base64"))?;
                let Some((user, password)) = decoded.split_once(':') else {
                    bail!("secret {name:?}: auth of {key} is not user:password");
                };
                (user.to_string(), password.to_string())
            }
            _ => continue,
        };
        credentials.push(Credential {
            key: normalize_key(&key),
            username,
            password,
        });
    }
    Ok(credentials)
}

/// A config key as the registry and path it names: no scheme, no `/v1/` or `/v2/`, Docker
/// Hub's many names as `docker.io`.
fn normalize_key(key: &str) -> String {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let key = key
        .strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key);
    let (host, path) = key.split_once('/').unwrap_or((key, ""));
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        host => host,
    };
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    }
}

/// The credential for `reference`: the most specific whose key is its registry or a path
/// prefix of `registry/repository`.
pub fn credentials_for<'a>(
    credentials: &'a [Credential],
    reference: &PullReference,
) -> Option<&'a Credential> {
    let full = format!("{}/{}", reference.registry, reference.repository);
    credentials
        .iter()
        .filter(|credential| {
            full == credential.key
                || full
                    .strip_prefix(&credential.key)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|credential| credential.key.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(type_: &str, key: &str, json: &str) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some([(key.to_string(), ByteString(json.as_bytes().to_vec()))].into()),
            ..Secret::default()
        }
    }

    #[test]
    fn reads_dockerconfigjson_and_dockercfg_and_matches_the_most_specific() {
        let config = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTE6cDE="},
            "127.0.0.1:5000":{"username":"u2","password":"p2"},
            "127.0.0.1:5000/private":{"username":"u3","password":"p3"}}}"#;
        let credentials = parse_docker_config(&secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            config,
        ))
        .unwrap();
        let user_for = |image: &str| {
            credentials_for(&credentials, &PullReference::parse(image).unwrap())
                .map(|credential| credential.username.as_str())
        };
        assert_eq!(user_for("nginx"), Some("u1"));
        assert_eq!(user_for("127.0.0.1:5000/public/x:1"), Some("u2"));
        assert_eq!(user_for("127.0.0.1:5000/private/x:1"), Some("u3"));
        assert_eq!(user_for("127.0.0.1:5000/privateer/x:1"), Some("u2"));
        assert_eq!(user_for("quay.io/x"), None);
        let old = parse_docker_config(&secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            r#"{"quay.io":{"username":"q","password":"w"}}"#,
        ))
        .unwrap();
        assert_eq!(old[0].key, "quay.io");
        assert!(format!("{:?}", old[0]).contains("q") && !format!("{:?}", old[0]).contains("w"));
    }

    #[test]
    fn refuses_other_secret_types_and_bad_configs() {
        let opaque = parse_docker_config(&secret("Opaque", "x", "{}")).unwrap_err();
        assert!(
            opaque
                .to_string()
                .contains("not kubernetes.io/dockerconfigjson")
        );
        let bad = parse_docker_config(&secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            "[]",
        ));
        assert!(bad.is_err());
    }
}
