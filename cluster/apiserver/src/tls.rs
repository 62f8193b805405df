//! HTTPS next to plain HTTP on the one port. kubectl (client-go's clientcmd) only sends a
//! bearer token over TLS, so a token-protected server must speak TLS for kubectl; kube-rs
//! clients may use either. The first byte of a connection tells which (0x16 starts a TLS
//! handshake). The server makes its own CA and a serving certificate for 127.0.0.1,
//! localhost and the `kubernetes` Service names at start, as kubeadm would.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

/// How long a client may take to send its first byte and finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster CA (PEM, for kubeconfigs) and the TLS acceptor using the serving certificate.
pub struct ServingCertificates {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

/// Makes a CA and a serving certificate for `ips` and the usual `kubernetes` names.
pub fn generate(ips: &[String]) -> anyhow::Result<ServingCertificates> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "k8s-labs-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut names: Vec<String> = ips.to_vec();
    names.extend(
        [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(String::from),
    );
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;

    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca.as_ref().der().clone()];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, private)?;
    // axum is built without HTTP/2 here, so only HTTP/1.1 is offered.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServingCertificates {
        ca_pem: ca.as_ref().pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

pub type Connection = Either<TcpStream, TlsStream<TcpStream>>;

/// An axum listener that hands over plain and TLS connections alike; handshakes happen in
/// their own tasks so a slow client does not hold up others.
pub struct DualListener {
    address: SocketAddr,
    connections: mpsc::Receiver<(Connection, SocketAddr)>,
}

impl DualListener {
    pub fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> io::Result<DualListener> {
        let address = listener.local_addr()?;
        let (tx, connections) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let tx = tx.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(connection)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, classify(stream, acceptor)).await
                    {
                        let _ = tx.send((connection, peer)).await;
                    }
                });
            }
        });
        Ok(DualListener {
            address,
            connections,
        })
    }
}

async fn classify(stream: TcpStream, acceptor: TlsAcceptor) -> io::Result<Connection> {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    if n == 1 && first[0] == 0x16 {
        Ok(Either::Right(acceptor.accept(stream).await?))
    } else {
        Ok(Either::Left(stream))
    }
}

impl axum::serve::Listener for DualListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop only ends at shutdown; wait for the server to stop.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.address)
    }
}
