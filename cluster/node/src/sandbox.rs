//! The pod sandbox: what all containers of a pod share, made before the first container runs,
//! as the kubelet and the CRI runtime make it: the pod's network namespace and IP, the
//! `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` files, and the pod's volumes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use k8s_labs_net::{NodeNetwork, PodNetwork};
use k8s_openapi::api::core::v1::Pod;

use crate::cgroups::{NodeCgroups, PodCgroup};
use crate::claims::ClaimedVolumes;
use crate::user_namespace::{NodeUserNamespaces, PodUserNamespace};

/// Cluster-wide DNS settings the resolv.conf of every pod gets.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// The cluster DNS Service IP, the pods' only nameserver.
    pub nameserver: Ipv4Addr,
    /// The cluster domain (`cluster.local`), which the search domains end with.
    pub cluster_domain: String,
}

/// A pod's sandbox on this node.
#[derive(Debug, Clone)]
pub struct PodSandbox {
    /// `<state dir>/pods/<uid>`.
    pub dir: PathBuf,
    /// The pod's network namespace and IP (the node's for a `hostNetwork` pod).
    pub network: PodNetwork,
    /// The hostname the pod's containers see.
    pub hostname: String,
    /// The pod's `/etc/hosts`, bound into every container.
    pub hosts_file: PathBuf,
    /// The pod's `/etc/resolv.conf`, bound into every container.
    pub resolv_conf: PathBuf,
    /// The pod's `/etc/hostname`, bound into every container.
    pub hostname_file: PathBuf,
    /// Host directories of the pod's volumes, by volume name.
    pub volumes: BTreeMap<String, PathBuf>,
    /// Volumes every container gets read-only (`persistentVolumeClaim.readOnly`).
    pub read_only_volumes: BTreeSet<String>,
    /// The pod's cgroup, parent of its containers' cgroups.
    pub cgroup: PodCgroup,
    /// The pod's user namespace (the node's for a `hostNetwork` pod); `None` where the kernel
    /// cannot give pods one.
    pub user_namespace: Option<PodUserNamespace>,
}

/// The names a pod is known by, from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`default` when unset).
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.hostname`, or the pod name.
    pub hostname: String,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
}

impl PodIdentity {
    /// The names of `pod`; an error if it has no name or uid.
    pub fn of(pod: &Pod) -> Result<PodIdentity> {
        let name = pod.metadata.name.clone().context("pod without a name")?;
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let uid = pod.metadata.uid.clone().context("pod without a uid")?;
        let spec = pod.spec.as_ref();
        let hostname = spec
            .and_then(|spec| spec.hostname.clone())
            .filter(|hostname| !hostname.is_empty())
            .unwrap_or_else(|| name.clone());
        let subdomain = spec
            .and_then(|spec| spec.subdomain.clone())
            .filter(|subdomain| !subdomain.is_empty());
        Ok(PodIdentity {
            name,
            namespace,
            uid,
            hostname,
            subdomain,
        })
    }
}

/// `/etc/hosts` as the kubelet writes it: localhost entries, then the pod's own name, fully
/// qualified when it has a hostname and a subdomain (a StatefulSet pod behind its headless
/// Service), else just its hostname.
pub fn hosts_file(identity: &PodIdentity, ip: Ipv4Addr, cluster_domain: &str) -> String {
    let mut text = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    match &identity.subdomain {
        Some(subdomain) => text.push_str(&format!(
            "{ip}\t{}.{subdomain}.{}.svc.{cluster_domain}\t{}\n",
            identity.hostname, identity.namespace, identity.hostname
        )),
        None => text.push_str(&format!("{ip}\t{}\n", identity.hostname)),
    }
    text
}

/// `/etc/resolv.conf` of a pod with the default `ClusterFirst` DNS policy.
pub fn resolv_conf(namespace: &str, dns: &DnsSettings) -> String {
    let domain = &dns.cluster_domain;
    format!(
        "search {namespace}.svc.{domain} svc.{domain} {domain}\nnameserver {}\noptions ndots:5\n",
        dns.nameserver
    )
}

/// What the node gives every sandbox.
pub struct SandboxHost<'a> {
    /// The node network the pods' namespaces are attached to.
    pub network: &'a NodeNetwork,
    /// The node's cgroups, under which each pod gets one.
    pub cgroups: &'a NodeCgroups,
    /// The node's user namespace and its pods' id ranges; `None` where the kernel cannot give
    /// pods one.
    pub user_namespaces: Option<&'a NodeUserNamespaces>,
    /// The node's root directory, where `hostPath` volumes live.
    pub node_root: &'a Path,
    /// Where the pods' sandbox directories are made (`<state dir>/pods`).
    pub pods_dir: &'a Path,
    /// What every pod's resolv.conf names.
    pub dns: &'a DnsSettings,
}

/// Creates the sandbox of `pod` under `pods_dir`, with the host directories of its
/// `persistentVolumeClaim` volumes resolved beforehand (see [`crate::claims`]). Undone if any
/// part fails.
pub fn create_sandbox(
    host: &SandboxHost<'_>,
    pod: &Pod,
    claims: &ClaimedVolumes,
) -> Result<PodSandbox> {
    let identity = PodIdentity::of(pod)?;
    let dir = host.pods_dir.join(&identity.uid);
    std::fs::create_dir_all(dir.join("etc"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let cgroup = host.cgroups.create_pod(&identity.uid)?;
    let mut sandbox = PodSandbox {
        hosts_file: dir.join("etc/hosts"),
        resolv_conf: dir.join("etc/resolv.conf"),
        hostname_file: dir.join("etc/hostname"),
        hostname: identity.hostname.clone(),
        dir,
        // Until the pod's own network is made: removing this one removes nothing.
        network: host.network.host_network(),
        user_namespace: None,
        volumes: BTreeMap::new(),
        read_only_volumes: BTreeSet::new(),
        cgroup,
    };
    match fill_sandbox(&mut sandbox, host, &identity, pod, claims) {
        Ok(()) => Ok(sandbox),
        Err(error) => {
            let _ = remove_sandbox(host.network, &sandbox);
            Err(error)
        }
    }
}

/// The pod's user and network namespaces. A `hostNetwork` pod joins the node's network
/// namespace and the node's user namespace, which owns it.
fn make_namespaces(
    sandbox: &mut PodSandbox,
    host: &SandboxHost<'_>,
    identity: &PodIdentity,
    pod: &Pod,
) -> Result<()> {
    let host_network = pod.spec.as_ref().and_then(|spec| spec.host_network) == Some(true);
    let Some(namespaces) = host.user_namespaces else {
        if !host_network {
            sandbox.network = host.network.create_pod_network(&identity.uid)?;
        }
        return Ok(());
    };
    if host_network {
        sandbox.user_namespace = Some(namespaces.node.clone());
        return Ok(());
    }
    let user_namespace = PodUserNamespace::create(&namespaces.ranges, &sandbox.dir.join("ns"))?;
    sandbox.user_namespace = Some(user_namespace.clone());
    sandbox.network = host
        .network
        .create_pod_network_with(&identity.uid, &|path: &Path| {
            user_namespace.bind_network_namespace(path)
        })?;
    Ok(())
}

fn fill_sandbox(
    sandbox: &mut PodSandbox,
    host: &SandboxHost<'_>,
    identity: &PodIdentity,
    pod: &Pod,
    claims: &ClaimedVolumes,
) -> Result<()> {
    make_namespaces(sandbox, host, identity, pod)?;
    let dns = host.dns;
    let node_root = host.node_root;
    let hosts = hosts_file(identity, sandbox.network.ip, &dns.cluster_domain);
    std::fs::write(&sandbox.hosts_file, hosts)?;
    std::fs::write(&sandbox.resolv_conf, resolv_conf(&identity.namespace, dns))?;
    std::fs::write(&sandbox.hostname_file, format!("{}\n", identity.hostname))?;
    let owner = sandbox.user_namespace.as_ref().map(|userns| userns.host_id);
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.security_context.as_ref())
        .and_then(|context| context.fs_group);
    for file in [
        &sandbox.hosts_file,
        &sandbox.resolv_conf,
        &sandbox.hostname_file,
    ] {
        give_to_pod(file, owner)?;
    }
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.volumes.clone())
        .unwrap_or_default();
    for volume in volumes {
        let path = if let Some(empty_dir) = &volume.empty_dir {
            // Under the sandbox directory, so that its removal unmounts a memory-backed one.
            let path = sandbox.dir.join("volumes").join(&volume.name);
            crate::empty_dir::set_up(pod, empty_dir, &path)
                .with_context(|| format!("emptyDir volume {}", volume.name))?;
            give_to_pod(&path, owner)?;
            if let Some(group) = fs_group {
                set_fs_group(&path, owner.unwrap_or(0), group)
                    .with_context(|| format!("emptyDir volume {}", volume.name))?;
            }
            path
        } else if let Some(host_path) = &volume.host_path {
            let create = host_path.type_.as_deref() == Some("DirectoryOrCreate");
            node_path(sandbox, node_root, &volume.name, &host_path.path, create)?
        } else if volume.persistent_volume_claim.is_some() {
            // The claim's volume directory is a path on the node (outside the sandbox, so
            // removing the sandbox leaves the data for the next pod with the same claim).
            let claimed = claims
                .get(&volume.name)
                .with_context(|| format!("volume {}: its claim was not resolved", volume.name))?;
            if claimed.read_only {
                sandbox.read_only_volumes.insert(volume.name.clone());
            }
            let path = claimed.path.to_string_lossy();
            node_path(sandbox, node_root, &volume.name, &path, claimed.create)?
        } else {
            bail!(
                "volume {}: only emptyDir, hostPath and persistentVolumeClaim volumes are \
                 supported by this node",
                volume.name
            );
        };
        sandbox.volumes.insert(volume.name.clone(), path);
    }
    Ok(())
}

/// Gives a file or directory the node made for the pod alone (its `/etc` files, an emptyDir)
/// to the pod's root, which is `owner` on the machine in the pod's user namespace: what lives
/// and dies with the pod needs no idmapped mount.
fn give_to_pod(path: &Path, owner: Option<u32>) -> Result<()> {
    let Some(id) = owner else {
        return Ok(());
    };
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(id)),
        Some(nix::unistd::Gid::from_raw(id)),
    )
    .with_context(|| format!("giving {} to the pod's root", path.display()))
}

/// `fsGroup` on an emptyDir, as the kubelet's `SetVolumeOwnership` leaves a new one: owned by
/// the group, group-writable and setgid, so that what the pod's users write there belongs to
/// it. `base` is the machine's id of the pod's id 0 (its user namespace's range). The
/// kubelet changes no `hostPath` volume, nor the provisioner's (hostPath) volumes on kind.
fn set_fs_group(path: &Path, base: u32, group: i64) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let group = u32::try_from(group)
        .ok()
        .and_then(|group| base.checked_add(group))
        .with_context(|| format!("fsGroup {group} is not a group id"))?;
    nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(group)))
        .with_context(|| format!("giving {} to the pod's fsGroup", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o2777))
        .with_context(|| format!("making {} setgid", path.display()))
}

/// A path of the node (`hostPath`, or the `hostPath` of a claim's volume), resolved below the
/// node's root directory, as a kind node's paths are its container's, never the machine's:
/// opened without following symlinks (a pod may have planted one through an earlier
/// `hostPath` mount) and mounted at `<sandbox>/node-paths/<volume>`.
fn node_path(
    sandbox: &PodSandbox,
    node_root: &Path,
    volume: &str,
    path: &str,
    create_missing: bool,
) -> Result<PathBuf> {
    let mount_point = sandbox.dir.join("node-paths").join(volume);
    // In a user namespace, idmapped: the pod's root owns what the machine's root owns, and
    // what the pod writes keeps ids 0 … 65535 on disk, whichever range the next pod gets.
    let idmap = match &sandbox.user_namespace {
        Some(userns) => {
            Some(std::fs::File::open(&userns.path).context("opening the pod's user namespace")?)
        }
        None => None,
    };
    crate::sub_path::mount_below(
        node_root,
        path,
        create_missing,
        &mount_point,
        idmap.as_ref(),
    )
    .with_context(|| format!("hostPath volume {volume}: {path}"))?;
    Ok(mount_point)
}

/// Removes a sandbox: the pod's network namespace and IP, the mounts under its directory, the
/// directory and the pod's cgroup (its containers must be gone first). Every part is tried
/// even when one fails, so that one failure leaks no more than itself; the first error is
/// returned.
pub fn remove_sandbox(node_network: &NodeNetwork, sandbox: &PodSandbox) -> Result<()> {
    let network = node_network.delete_pod_network(&sandbox.network);
    let cgroup = sandbox.cgroup.remove();
    let files = crate::mounts::unmount_under(&sandbox.dir).and_then(|()| {
        match std::fs::remove_dir_all(&sandbox.dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error).with_context(|| format!("removing {}", sandbox.dir.display())),
        }
    });
    // Its pin is unmounted (and its network namespace gone): nothing holds the namespace.
    if files.is_ok()
        && let Some(user_namespace) = &sandbox.user_namespace
    {
        user_namespace.release();
    }
    network.and(files).and(cgroup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(subdomain: Option<&str>) -> PodIdentity {
        PodIdentity {
            name: "web-1".into(),
            namespace: "default".into(),
            uid: "u".into(),
            hostname: "web-1".into(),
            subdomain: subdomain.map(str::to_string),
        }
    }

    #[test]
    fn hosts_file_names_the_pod_like_the_kubelet() {
        let ip = Ipv4Addr::new(10, 244, 0, 5);
        let with_subdomain = hosts_file(&identity(Some("nginx")), ip, "cluster.local");
        assert!(
            with_subdomain.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
        );
        assert!(
            with_subdomain.ends_with("10.244.0.5\tweb-1.nginx.default.svc.cluster.local\tweb-1\n")
        );
        let plain = hosts_file(&identity(None), ip, "cluster.local");
        assert!(plain.ends_with("\n10.244.0.5\tweb-1\n"));
    }

    #[test]
    fn resolv_conf_has_the_cluster_search_list() {
        let dns = DnsSettings {
            nameserver: Ipv4Addr::new(10, 96, 0, 10),
            cluster_domain: "cluster.local".into(),
        };
        assert_eq!(
            resolv_conf("lab", &dns),
            "search lab.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 10.96.0.10\noptions ndots:5\n"
        );
    }
}
