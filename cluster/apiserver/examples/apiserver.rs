//! Runs the API server alone until Ctrl-C, writing a kubeconfig for kubectl, for poking at it
//! by hand: `cargo run -p k8s-labs-apiserver --example apiserver -- /tmp/kubeconfig`.

use k8s_labs_apiserver::{ApiServer, ApiServerConfig};

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/apiserver-kubeconfig".to_string());
    let token = "example-token".to_string();
    let server = ApiServer::start(ApiServerConfig {
        bind: "127.0.0.1:0".parse()?,
        token: token.clone(),
        service_cidr: "10.96.0.0/12".into(),
        kubernetes_version: "v1.33.0".into(),
        nodes: Default::default(),
    })
    .await?;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{token: {token}}}\n",
        server.https_url(),
        base64(server.ca_certificate_pem().as_bytes())
    );
    std::fs::write(&path, kubeconfig)?;
    println!(
        "API server at {} (and {}); kubeconfig: {path}",
        server.https_url(),
        server.url()
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
