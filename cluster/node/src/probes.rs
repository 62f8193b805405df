//! Readiness probes, run as the kubelet runs them: exec through the runtime, httpGet and
//! tcpSocket from inside the pod's network namespace (never from the host's, which has no
//! business reaching a pod address).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_labs_net::PodNetwork;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::mpsc;

use crate::events::{EventRecorder, EventType, InvolvedPod};
use crate::runtime::Runc;

/// Everything a probe task needs.
pub struct ProbeTarget {
    pub runc: Runc,
    pub runc_id: String,
    pub network: PodNetwork,
    pub container: Container,
    /// Where failures are reported (`Unhealthy` warnings, as the kubelet records them).
    pub events: EventRecorder,
    pub pod: InvolvedPod,
}

/// Runs the container's readiness probe until the task is aborted, sending `true`/`false` on
/// `results` whenever readiness changes (after the probe's success/failure thresholds).
pub async fn run_readiness_probe(
    probe: Probe,
    target: ProbeTarget,
    results: mpsc::UnboundedSender<bool>,
) {
    let seconds = |value: Option<i32>, default: i32| {
        Duration::from_secs(u64::try_from(value.unwrap_or(default).max(0)).unwrap_or(0))
    };
    let initial_delay = seconds(probe.initial_delay_seconds, 0);
    let period = seconds(probe.period_seconds, 10).max(Duration::from_secs(1));
    let timeout = seconds(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);

    tokio::time::sleep(initial_delay).await;
    let mut ticker = tokio::time::interval(period);
    let mut ready = false;
    let mut successes = 0;
    let mut failures = 0;
    loop {
        ticker.tick().await;
        let result = probe_once(&probe, &target, timeout).await;
        if let Err(reason) = &result {
            target.events.kubelet(
                &target.pod,
                Some(&target.container.name),
                EventType::Warning,
                "Unhealthy",
                format!("Readiness probe failed: {reason}"),
            );
        }
        if result.is_ok() {
            successes += 1;
            failures = 0;
        } else {
            failures += 1;
            successes = 0;
        }
        let now_ready = if ready {
            failures < failure_threshold
        } else {
            successes >= success_threshold
        };
        if now_ready != ready {
            ready = now_ready;
            if results.send(ready).is_err() {
                return;
            }
        }
    }
}

/// One probe; the error says why it failed, in the kubelet's words.
async fn probe_once(probe: &Probe, target: &ProbeTarget, timeout: Duration) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        let mut args = vec!["exec".to_string(), target.runc_id.clone()];
        args.extend(command.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut runc = target.runc.command(&args);
        runc.stdin(std::process::Stdio::null()).kill_on_drop(true);
        return match tokio::time::timeout(timeout, runc.output()).await {
            Ok(Ok(output)) if output.status.success() => Ok(()),
            Ok(Ok(output)) => {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                Err(format!(
                    "command {:?} exited with {}: {}",
                    command.join(" "),
                    output.status.code().unwrap_or(-1),
                    text.trim()
                ))
            }
            Ok(Err(error)) => Err(format!("running the probe: {error}")),
            Err(_) => Err(format!("command timed out after {}s", timeout.as_secs())),
        };
    }
    let pod_ip = target.network.ip;
    if let Some(tcp) = &probe.tcp_socket {
        let port = resolve_port(&tcp.port, &target.container)?;
        let host = tcp
            .host
            .as_deref()
            .and_then(|host| host.parse().ok())
            .unwrap_or(pod_ip);
        let address = SocketAddr::from((host, port));
        let network = target.network.clone();
        return blocking(move || network.connect_tcp(address, timeout).map(|_| ()))
            .await
            .map_err(|error| format!("dial tcp {address}: connect: {}", go_style(&error)));
    }
    if let Some(http) = &probe.http_get {
        let port = resolve_port(&http.port, &target.container)?;
        let host: Ipv4Addr = http
            .host
            .as_deref()
            .and_then(|host| host.parse().ok())
            .unwrap_or(pod_ip);
        let path = http.path.clone().unwrap_or_else(|| "/".to_string());
        let address = SocketAddr::from((host, port));
        let network = target.network.clone();
        let url = format!("http://{address}{path}");
        let code = blocking(move || http_get(&network, address, &path, timeout, "kube-probe"))
            .await
            .map_err(|error| {
                format!(
                    "Get \"{url}\": dial tcp {address}: connect: {}",
                    go_style(&error)
                )
            })?;
        return if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        };
    }
    Err("the probe has no handler (exec, httpGet or tcpSocket)".to_string())
}

async fn blocking<T, F>(work: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)?
}

/// An HTTP GET from inside the pod, as `<agent>/1.33` (`kube-probe`, `kube-lifecycle`);
/// returns the status code.
pub(crate) fn http_get(
    network: &PodNetwork,
    address: SocketAddr,
    path: &str,
    timeout: Duration,
    agent: &str,
) -> std::io::Result<u16> {
    let mut stream = network.connect_tcp(address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: {agent}/1.33\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut head = [0u8; 64];
    let mut length = 0;
    while length < head.len() {
        let read = stream.read(&mut head[length..])?;
        if read == 0 {
            break;
        }
        length += read;
        if head[..length].contains(&b'\n') {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head[..length]);
    Ok(line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

/// A connection error as the kubelet (Go) words it.
pub(crate) fn go_style(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "i/o timeout".to_string(),
        std::io::ErrorKind::HostUnreachable => "no route to host".to_string(),
        // Go prints the C library's text in lower case, without Rust's "(os error N)".
        _ => match error.raw_os_error() {
            Some(code) => {
                let text = error.to_string();
                let text = text
                    .strip_suffix(&format!(" (os error {code})"))
                    .unwrap_or(&text);
                let mut chars = text.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_lowercase().chain(chars).collect()
                })
            }
            None => error.to_string(),
        },
    }
}

/// A probe (or hook) port: a number, or the name of one of the container's ports.
pub(crate) fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(number) => Some(*number),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|port| port.name.as_deref() == Some(name.as_str()))
            .map(|port| port.container_port),
    };
    number
        .and_then(|number| u16::try_from(number).ok())
        .ok_or_else(|| format!("invalid port {port:?}"))
}

#[cfg(test)]
mod tests {
    use super::go_style;

    #[test]
    fn connection_errors_read_as_go_prints_them() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(go_style(&refused), "connection refused");
        // EADDRNOTAVAIL, as a dial to ::1 where a namespace has no IPv6 loopback.
        let unassigned = std::io::Error::from_raw_os_error(99);
        assert_eq!(go_style(&unassigned), "cannot assign requested address");
        let other = std::io::Error::other("custom");
        assert_eq!(go_style(&other), "custom");
    }
}
