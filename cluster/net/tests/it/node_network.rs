//! Builds real node and pod network namespaces (needs root, as the cluster does) and checks
//! what a pod sees: the other pod, the gateway, an address served inside the node namespace,
//! and that the host namespace never gets any of it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_labs_net::{NodeNetwork, NodeNetworkConfig, netns};

fn unique_instance() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "tn{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn node_network(local_addresses: Vec<Ipv4Addr>) -> NodeNetwork {
    NodeNetwork::create(NodeNetworkConfig {
        instance: unique_instance(),
        pod_cidr: "10.244.0.0/16".to_string(),
        local_addresses,
    })
    .unwrap()
}

fn run_in_netns(netns_name: &str, program: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", netns_name, program])
        .args(args)
        .output()
        .unwrap()
}

fn namespaces_of(instance: &str) -> Vec<String> {
    let prefix = format!("k8s-labs-{instance}-");
    netns::list()
        .unwrap()
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

#[test]
fn pods_reach_each_other_and_the_gateway_and_destroy_removes_every_namespace() {
    let network = node_network(vec![]);
    let instance = network.instance().to_string();
    let a = network.create_pod_network("pod-a-uid").unwrap();
    let b = network.create_pod_network("pod-b-uid").unwrap();
    assert_ne!(a.ip, b.ip);
    assert!(network.pod_cidr().contains(a.ip) && network.pod_cidr().contains(b.ip));

    let ping_b = run_in_netns(&a.netns_name, "ping", &["-c1", "-W1", &b.ip.to_string()]);
    assert!(ping_b.status.success(), "pod A pings pod B: {ping_b:?}");
    let gateway = network.gateway().to_string();
    let ping_gateway = run_in_netns(&a.netns_name, "ping", &["-c1", "-W1", &gateway]);
    assert!(ping_gateway.status.success(), "{ping_gateway:?}");
    assert_eq!(network.gateway(), Ipv4Addr::new(10, 244, 0, 1));

    let routes = run_in_netns(&a.netns_name, "ip", &["route"]);
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(
        routes.contains("default via 10.244.0.1 dev eth0"),
        "{routes}"
    );

    // The host namespace sees neither end of the veth pair nor any pod address or route.
    let host_links =
        String::from_utf8(Command::new("ip").arg("link").output().unwrap().stdout).unwrap();
    assert!(!host_links.contains(&a.host_veth), "{host_links}");
    let host_routes =
        String::from_utf8(Command::new("ip").arg("route").output().unwrap().stdout).unwrap();
    for line in host_routes.lines().filter(|line| line.contains("10.244.")) {
        assert!(
            line.starts_with("blackhole"),
            "host route to the pod network: {line}"
        );
    }
    let host_addresses =
        String::from_utf8(Command::new("ip").arg("addr").output().unwrap().stdout).unwrap();
    assert!(!host_addresses.contains("10.244."), "{host_addresses}");

    assert_eq!(namespaces_of(&instance).len(), 3, "node + 2 pods");
    network.delete_pod_network(&a).unwrap();
    let mut expected = vec![b.netns_name.clone(), network.netns_name().to_string()];
    expected.sort();
    assert_eq!(namespaces_of(&instance), expected);
    network.destroy().unwrap();
    assert!(namespaces_of(&instance).is_empty());
}

#[test]
fn a_pod_reaches_a_udp_socket_bound_inside_the_node_namespace() {
    let dns_ip = Ipv4Addr::new(10, 96, 0, 10);
    let network = node_network(vec![dns_ip]);
    let pod = network.create_pod_network("client-pod").unwrap();
    let server = network.bind_udp(SocketAddr::from((dns_ip, 5353))).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    let client = netns::run_in(&pod.netns_path, || UdpSocket::bind("0.0.0.0:0")).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.send_to(b"question", (dns_ip, 5353)).unwrap();

    let mut buffer = [0u8; 64];
    let (length, from) = server.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"question");
    assert_eq!(
        from.ip(),
        std::net::IpAddr::V4(pod.ip),
        "the datagram comes from the pod IP"
    );
    server.send_to(b"answer", from).unwrap();
    let (length, from) = client.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], b"answer");
    assert_eq!(from, SocketAddr::from((dns_ip, 5353)));
    network.destroy().unwrap();
}

#[test]
fn tcp_connect_from_a_pod_reaches_a_listener_in_another_pod() {
    let network = node_network(vec![]);
    let server_pod = network.create_pod_network("server").unwrap();
    let client_pod = network.create_pod_network("client").unwrap();
    let listener = netns::run_in(&server_pod.netns_path, || {
        std::net::TcpListener::bind("0.0.0.0:8080")
    })
    .unwrap();
    let stream = client_pod
        .connect_tcp(
            SocketAddr::from((server_pod.ip, 8080)),
            Duration::from_secs(5),
        )
        .unwrap();
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(client_pod.ip));
    drop(stream);
    network.destroy().unwrap();
}

#[test]
fn two_node_networks_use_the_same_pod_cidr_side_by_side() {
    let first = node_network(vec![]);
    let second = node_network(vec![]);
    let a = first.create_pod_network("same-uid").unwrap();
    let b = second.create_pod_network("same-uid").unwrap();
    assert_eq!(a.ip, b.ip, "each node namespace has its own pod network");
    assert_ne!(a.netns_name, b.netns_name);
    drop(first);
    drop(second);
    assert!(!netns::netns_path(&a.netns_name).exists());
    assert!(!netns::netns_path(&b.netns_name).exists());
}

fn bridge_addresses(network: &NodeNetwork) -> String {
    let output = run_in_netns(
        network.netns_name(),
        "ip",
        &["-4", "-o", "addr", "show", "dev", "cni0"],
    );
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_local_address_can_be_removed_again_and_removing_it_twice_is_harmless() {
    let service_ip = Ipv4Addr::new(10, 96, 12, 34);
    let network = node_network(vec![]);
    network.add_local_address(service_ip).unwrap();
    assert!(bridge_addresses(&network).contains("10.96.12.34/32"));
    network.remove_local_address(service_ip).unwrap();
    let addresses = bridge_addresses(&network);
    assert!(!addresses.contains("10.96.12.34"), "{addresses}");
    assert!(
        addresses.contains("10.244.0.1/16"),
        "gateway kept: {addresses}"
    );
    network.remove_local_address(service_ip).unwrap();
    assert!(network.remove_local_address(network.gateway()).is_err());
    assert!(bridge_addresses(&network).contains("10.244.0.1/16"));
    network.destroy().unwrap();
}

#[tokio::test]
async fn a_tcp_socket_made_in_the_node_namespace_connects_to_a_pod_from_the_gateway() {
    let network = node_network(vec![]);
    let pod = network.create_pod_network("server").unwrap();
    let listener = netns::run_in(&pod.netns_path, || {
        std::net::TcpListener::bind("0.0.0.0:8080")
    })
    .unwrap();
    let socket = network.tcp_socket_v4().unwrap();
    let stream = socket
        .connect(SocketAddr::from((pod.ip, 8080)))
        .await
        .unwrap();
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(network.gateway()));
    drop(stream);
    network.destroy().unwrap();
}

/// `ip -n NS link show DEV`'s hardware address.
fn hardware_address(netns_name: &str, device: &str) -> String {
    let output = Command::new("ip")
        .args(["-n", netns_name, "-o", "link", "show", device])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let mut words = text.split_whitespace();
    words.find(|word| *word == "link/ether");
    words
        .next()
        .unwrap_or_else(|| panic!("no address in {text}"))
        .to_string()
}

/// A Linux bridge whose address was never set takes the lowest address of its ports and
/// changes it as ports come and go; a pod that cached the gateway's old address then loses
/// every packet to the node (its DNS queries included) until its neighbour entry expires.
/// Here a port gets the lowest address there is, which such a bridge would take at once.
#[test]
fn the_gateway_keeps_its_hardware_address_as_pods_come_and_go() {
    let network = node_network(vec![]);
    let node = network.netns_name().to_string();
    let gateway = hardware_address(&node, "cni0");
    let pod = network.create_pod_network("pod-lowest-mac").unwrap();
    let set = Command::new("ip")
        .args(["-n", &node, "link", "set", &pod.host_veth, "address"])
        .arg("02:00:00:00:00:01")
        .output()
        .unwrap();
    assert!(set.status.success(), "{set:?}");
    assert_eq!(hardware_address(&node, &pod.host_veth), "02:00:00:00:00:01");
    assert_eq!(hardware_address(&node, "cni0"), gateway);
    let other = network.create_pod_network("pod-other").unwrap();
    network.delete_pod_network(&pod).unwrap();
    assert_eq!(hardware_address(&node, "cni0"), gateway);
    // The pod left has the gateway's address as the node has it.
    let neighbour = run_in_netns(&other.netns_name, "ping", &["-c1", "-W1", "10.244.0.1"]);
    assert!(neighbour.status.success(), "{neighbour:?}");
    let seen = run_in_netns(&other.netns_name, "ip", &["neigh", "show", "10.244.0.1"]);
    let seen = String::from_utf8_lossy(&seen.stdout).into_owned();
    assert!(seen.contains(&format!("lladdr {gateway}")), "{seen}");
    network.destroy().unwrap();
}
