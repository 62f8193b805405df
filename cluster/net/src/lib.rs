//! The node network of one embedded cluster: a network namespace that plays the node (the only
//! place where pod IPs and cluster addresses exist), a bridge in it with the pod CIDR's gateway,
//! and one network namespace per pod wired to that bridge by a veth pair.
//!
//! Why a node namespace instead of the host's: the host has a default route, so a packet the
//! host sent to 10.244.x or 10.96.x would leave the machine. Everything here is created from
//! inside the node namespace (`ip -n`), so the host namespace never sees a pod interface,
//! address or route, and several clusters can run at once with the same pod CIDR.

mod ipam;
pub mod netns;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

pub use ipam::{IpAllocator, Ipv4Cidr};

/// The bridge inside the node namespace, named like flannel's on a kubeadm node.
pub const BRIDGE: &str = "cni0";

/// What a node network is made of.
#[derive(Debug, Clone)]
pub struct NodeNetworkConfig {
    /// Short unique id of this cluster run; every namespace name contains it, so that
    /// concurrent clusters do not collide and leftovers of a crashed one can be found.
    pub instance: String,
    /// The pod network, e.g. `10.244.0.0/16`; its first address is the gateway on the bridge.
    pub pod_cidr: String,
    /// Addresses that must answer inside the node namespace (e.g. the cluster DNS IP), put on
    /// the bridge as /32 because this kernel has no `dummy` interfaces.
    pub local_addresses: Vec<Ipv4Addr>,
}

/// The network of one pod: its own namespace with `eth0` on the node bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// Name under `/run/netns` (`k8s-labs-<instance>-pod-<pod uid>`).
    pub netns_name: String,
    /// What runc's `linux.namespaces` gets as the network namespace path.
    pub netns_path: PathBuf,
    /// The pod IP.
    pub ip: Ipv4Addr,
    /// The node-side end of the veth pair (on the bridge, inside the node namespace).
    pub host_veth: String,
}

impl PodNetwork {
    /// A TCP connection made from inside the pod's namespace, as a probe or a client in the pod
    /// would make it (the host namespace must never connect to a pod address).
    pub fn connect_tcp(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
        netns::connect_tcp(&self.netns_path, addr, timeout)
    }
}

/// The node namespace with its bridge; creates and removes pod networks.
#[derive(Debug)]
pub struct NodeNetwork {
    instance: String,
    netns_name: String,
    netns_path: PathBuf,
    cidr: Ipv4Cidr,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    ipam: IpAllocator,
    /// Pod networks by namespace name, so `destroy` removes the ones nobody deleted.
    pods: HashMap<String, PodNetwork>,
    destroyed: bool,
}

/// The bridge's hardware address: `0a:58` and the gateway's IPv4 address, the locally
/// administered form CNI plugins use for addresses derived from an IP
/// (`0a:58:0a:f4:00:01` for 10.244.0.1).
fn bridge_mac(gateway: Ipv4Addr) -> String {
    let [a, b, c, d] = gateway.octets();
    format!("0a:58:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

impl NodeNetwork {
    /// Creates the node namespace `k8s-labs-<instance>-node`: loopback up, the bridge with the
    /// gateway address, the local addresses, IP forwarding on. Undone on failure.
    pub fn create(config: NodeNetworkConfig) -> Result<NodeNetwork> {
        NodeNetwork::create_with(config, &|path: &Path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            netns::create(&name.context("a network namespace path without a name")?)
        })
    }

    /// As [`NodeNetwork::create`], with the node namespace made by `make_namespace`, which
    /// pins a new network namespace at the path it is given (under [`netns::NETNS_DIR`]): for
    /// a namespace owned by the node's user namespace.
    pub fn create_with(
        config: NodeNetworkConfig,
        make_namespace: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<NodeNetwork> {
        let cidr = Ipv4Cidr::parse(&config.pod_cidr)?;
        let netns_name = format!("k8s-labs-{}-node", config.instance);
        std::fs::create_dir_all(netns::NETNS_DIR).context("creating /run/netns")?;
        make_namespace(&netns::netns_path(&netns_name))?;
        let network = NodeNetwork {
            instance: config.instance.clone(),
            netns_path: netns::netns_path(&netns_name),
            netns_name,
            cidr,
            state: Mutex::new(State {
                ipam: IpAllocator::new(cidr),
                pods: HashMap::new(),
                destroyed: false,
            }),
        };
        // On error, dropping `network` removes the namespace again.
        network.set_up(&config)?;
        Ok(network)
    }

    fn set_up(&self, config: &NodeNetworkConfig) -> Result<()> {
        let ns = self.netns_name.as_str();
        let gateway = format!("{}/{}", self.cidr.gateway(), self.cidr.prefix_len);
        netns::ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // A bridge whose address nobody set takes the lowest address of its ports, so it
        // changes as pods come and go; a pod that cached the gateway's old address then sends
        // into the void until its neighbour entry expires (nslookup timing out for 15 s).
        // Setting it keeps it, as the CNI bridge plugin does.
        let bridge_address = bridge_mac(self.cidr.gateway());
        netns::ip(&[
            "-n",
            ns,
            "link",
            "add",
            BRIDGE,
            "address",
            &bridge_address,
            "type",
            "bridge",
        ])?;
        netns::ip(&["-n", ns, "addr", "add", &gateway, "dev", BRIDGE])?;
        netns::ip(&["-n", ns, "link", "set", BRIDGE, "up"])?;
        for address in &config.local_addresses {
            self.add_local_address(*address)?;
        }
        netns::write_net_sysctl(&self.netns_path, "net.ipv4.ip_forward", "1")?;
        Ok(())
    }

    /// The short id of the cluster run this network belongs to.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The node namespace's name under `/run/netns`.
    pub fn netns_name(&self) -> &str {
        &self.netns_name
    }

    /// The node namespace's path (for `setns`).
    pub fn netns_path(&self) -> &Path {
        &self.netns_path
    }

    /// A TCP connection made from the node's namespace, where the bridge routes to every pod
    /// (as a process on a kind node container would connect to a pod IP).
    pub fn connect_tcp(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
        netns::connect_tcp(&self.netns_path, addr, timeout)
    }

    /// The gateway of the pod network, the node's address as pods see it.
    pub fn gateway(&self) -> Ipv4Addr {
        self.cidr.gateway()
    }

    /// The pod network.
    pub fn pod_cidr(&self) -> Ipv4Cidr {
        self.cidr
    }

    /// Makes `ip` an address of the node (a /32 on the bridge), e.g. for a Service IP that a
    /// server in this process listens on. Adding one that is already there is not an error.
    pub fn add_local_address(&self, ip: Ipv4Addr) -> Result<()> {
        let address = format!("{ip}/32");
        let args = [
            "-n",
            self.netns_name.as_str(),
            "addr",
            "replace",
            &address,
            "dev",
            BRIDGE,
        ];
        netns::ip(&args)
    }

    /// Takes back an address given with [`NodeNetwork::add_local_address`] (e.g. when the
    /// Service whose cluster IP it was is deleted). Removing one that is not there is not an
    /// error; the gateway is never removed (pods route everything through it).
    pub fn remove_local_address(&self, ip: Ipv4Addr) -> Result<()> {
        anyhow::ensure!(
            ip != self.gateway(),
            "{ip} is the pod network's gateway, not a local address"
        );
        let output = std::process::Command::new("ip")
            .args(["-n", self.netns_name.as_str(), "-4", "-o", "addr", "show"])
            .args(["dev", BRIDGE])
            .output()
            .context("running ip addr show")?;
        anyhow::ensure!(
            output.status.success(),
            "ip addr show dev {BRIDGE} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let address = format!("{ip}/32");
        let present = String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .any(|word| word == address);
        if !present {
            return Ok(());
        }
        let args = [
            "-n",
            self.netns_name.as_str(),
            "addr",
            "del",
            &address,
            "dev",
            BRIDGE,
        ];
        netns::ip(&args)
    }

    /// An unconnected IPv4 TCP socket created inside the node namespace, to be connected
    /// from async code: a connection "from the node" to a pod (as a service proxy makes it)
    /// is routed by the node namespace, so the host namespace, which has no route to pods,
    /// never sends anything.
    pub fn tcp_socket_v4(&self) -> std::io::Result<tokio::net::TcpSocket> {
        netns::run_in(&self.netns_path, tokio::net::TcpSocket::new_v4)
    }

    /// A UDP socket bound inside the node namespace (how the cluster DNS listens on its Service
    /// IP without the host namespace ever having that address).
    pub fn bind_udp(&self, addr: SocketAddr) -> std::io::Result<UdpSocket> {
        netns::run_in(&self.netns_path, move || UdpSocket::bind(addr))
    }

    /// A TCP listener bound inside the node namespace.
    pub fn bind_tcp(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        netns::run_in(&self.netns_path, move || TcpListener::bind(addr))
    }

    /// A command that runs "on the node", inside the node namespace
    /// (`ip netns exec <name> program args`).
    pub fn command(&self, program: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &self.netns_name, program])
            .args(args);
        command
    }

    /// Creates a pod's network: its own namespace, a veth pair made inside the node namespace
    /// whose peer becomes the pod's `eth0`, a pod IP, the default route via the gateway.
    pub fn create_pod_network(&self, pod_uid: &str) -> Result<PodNetwork> {
        self.create_pod_network_with(pod_uid, &|path: &Path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            netns::create(&name.context("a network namespace path without a name")?)
        })
    }

    /// As [`NodeNetwork::create_pod_network`], with the namespace made by `make_namespace`,
    /// which pins a new network namespace at the path it is given (under
    /// [`netns::NETNS_DIR`]): for a namespace owned by the pod's user namespace.
    pub fn create_pod_network_with(
        &self,
        pod_uid: &str,
        make_namespace: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<PodNetwork> {
        let netns_name = self.pod_netns_name(pod_uid);
        let ip = {
            let mut state = self.lock();
            anyhow::ensure!(!state.destroyed, "the node network is destroyed");
            anyhow::ensure!(
                !state.pods.contains_key(&netns_name),
                "pod {pod_uid} already has a network"
            );
            state.ipam.allocate()?
        };
        let pod = PodNetwork {
            netns_path: netns::netns_path(&netns_name),
            netns_name,
            ip,
            host_veth: format!("veth{:08x}", u32::from(ip)),
        };
        match self.wire_pod(&pod, make_namespace) {
            Ok(()) => {
                self.lock().pods.insert(pod.netns_name.clone(), pod.clone());
                Ok(pod)
            }
            Err(error) => {
                let _ = netns::delete(&pod.netns_name);
                let _ = netns::ip(&["-n", &self.netns_name, "link", "del", &pod.host_veth]);
                self.lock().ipam.release(ip);
                Err(error.context(format!("creating the network of pod {pod_uid}")))
            }
        }
    }

    fn wire_pod(
        &self,
        pod: &PodNetwork,
        make_namespace: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<()> {
        let node = self.netns_name.as_str();
        let pod_ns = pod.netns_name.as_str();
        // A stale namespace of the same name (a pod whose teardown was interrupted) goes first.
        netns::delete(pod_ns)?;
        std::fs::create_dir_all(netns::NETNS_DIR).context("creating /run/netns")?;
        make_namespace(&pod.netns_path)?;
        netns::ip_batch(
            node,
            &[
                format!(
                    "link add {} type veth peer name eth0 netns {pod_ns}",
                    pod.host_veth
                ),
                format!("link set {} master {BRIDGE} up", pod.host_veth),
            ],
        )?;
        let address = format!("{}/{}", pod.ip, self.cidr.prefix_len);
        let gateway = self.cidr.gateway();
        netns::ip_batch(
            pod_ns,
            &[
                "link set lo up".to_string(),
                format!("addr add {address} dev eth0"),
                "link set eth0 up".to_string(),
                format!("route add default via {gateway}"),
            ],
        )?;
        Ok(())
    }

    /// The network namespace name of the pod with this uid.
    fn pod_netns_name(&self, pod_uid: &str) -> String {
        let safe_uid: String = pod_uid
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("k8s-labs-{}-pod-{safe_uid}", self.instance)
    }

    /// The network of the pod with this uid, while it has one.
    pub fn pod_network(&self, pod_uid: &str) -> Option<PodNetwork> {
        self.lock().pods.get(&self.pod_netns_name(pod_uid)).cloned()
    }

    /// The network of a `hostNetwork: true` pod: the node's own namespace (the one this node
    /// made, never the machine's), with the node's address as the pod IP, as on a real node.
    /// Deleting it deletes nothing.
    pub fn host_network(&self) -> PodNetwork {
        PodNetwork {
            netns_name: self.netns_name().to_string(),
            netns_path: self.netns_path().to_path_buf(),
            ip: self.gateway(),
            host_veth: String::new(),
        }
    }

    /// Removes a pod's network and gives its IP back. Repeating it is harmless; for a
    /// [`NodeNetwork::host_network`] pod it does nothing.
    pub fn delete_pod_network(&self, pod: &PodNetwork) -> Result<()> {
        if pod.netns_name == self.netns_name() {
            return Ok(());
        }
        // Deleting the namespace destroys eth0 and with it the node-side veth.
        netns::delete(&pod.netns_name)
            .with_context(|| format!("deleting network namespace {}", pod.netns_name))?;
        let mut state = self.lock();
        if state.pods.remove(&pod.netns_name).is_some() {
            state.ipam.release(pod.ip);
        }
        Ok(())
    }

    /// Removes every pod network still there and the node namespace. Repeating it is harmless;
    /// it also runs when the last reference to the network is dropped.
    pub fn destroy(&self) -> Result<()> {
        let pods: Vec<PodNetwork> = {
            let mut state = self.lock();
            state.destroyed = true;
            state.pods.values().cloned().collect()
        };
        let mut first_error = None;
        for pod in pods {
            if let Err(error) = self.delete_pod_network(&pod) {
                first_error.get_or_insert(error);
            }
        }
        if let Err(error) = netns::delete(&self.netns_name) {
            first_error.get_or_insert(error);
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for NodeNetwork {
    fn drop(&mut self) {
        if let Err(error) = self.destroy() {
            tracing::warn!("removing node network {}: {error:#}", self.netns_name);
        }
    }
}

/// Removes the named network namespaces of a cluster instance (`k8s-labs-<instance>-*`), for
/// the leftovers of a run that crashed. Returns the names removed.
pub fn delete_instance_namespaces(instance: &str) -> Result<Vec<String>> {
    let prefix = format!("k8s-labs-{instance}-");
    let mut removed = Vec::new();
    for name in netns::list()? {
        if name.starts_with(&prefix) {
            netns::delete(&name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}
