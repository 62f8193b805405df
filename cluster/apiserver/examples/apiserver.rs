//! Runs the API server alone until Ctrl-C, writing a kubeconfig for kubectl, for poking at it
//! by hand: `cargo run -p k8s-labs-apiserver --example apiserver -- /tmp/kubeconfig`.

use k8s_labs_apiserver::testing::TestApiServer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/apiserver-kubeconfig".to_string());
    let api = TestApiServer::start().await?;
    std::fs::write(&path, api.https_kubeconfig())?;
    println!(
        "API server at {}; kubeconfig: {path}",
        api.server.https_url()
    );
    tokio::signal::ctrl_c().await?;
    api.shutdown().await;
    Ok(())
}
