//! The serving certificates: the server makes its own CA and a serving certificate for
//! 127.0.0.1, localhost and the `kubernetes` Service names at start, as kubeadm would. Every
//! client (kubectl, kube-rs, the cluster's own controllers and node agent) reaches the API port
//! over TLS trusting that CA, as on kube-apiserver's secure port; `serving` answers plain HTTP.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

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
