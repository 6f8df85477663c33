//! A throwaway certificate authority for loopback HTTPS: the demo's sites and the tests' valid,
//! expired and wrong-name certificates. Generated at run time, so any hostnames work.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA that signs server certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

/// How long a generated server certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid from 2020 to 2049.
    Current,
    /// Expired at the end of 2021.
    Expired,
}

impl TestCa {
    pub fn new(name: &str) -> Result<TestCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert_pem: cert.pem(), cert_der: cert.der().clone(), issuer: Issuer::new(params, key) })
    }

    /// The CA certificate in PEM, to write as a `probe.ca_file`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A root store trusting only this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der.clone()).expect("a freshly generated CA certificate parses");
        roots
    }

    /// A server configuration presenting one certificate for `names`, whatever the client asks.
    pub fn server_config(&self, names: &[String], validity: Validity) -> Result<Arc<rustls::ServerConfig>, String> {
        let (chain, key) = self.issue(names, validity)?;
        finish(server_builder()?.with_single_cert(chain, key).map_err(|e| e.to_string())?)
    }

    /// A server configuration that picks the certificate by SNI: each group of names gets one
    /// certificate of its own validity (so one virtual host can present an expired certificate).
    pub fn server_config_by_name(
        &self,
        groups: &[(Vec<String>, Validity)],
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut resolver = rustls::server::ResolvesServerCertUsingSni::new();
        for (names, validity) in groups.iter().filter(|(names, _)| !names.is_empty()) {
            let (chain, key) = self.issue(names, *validity)?;
            let key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
            let certified = rustls::sign::CertifiedKey::new(chain, key);
            for name in names {
                resolver.add(name, certified.clone()).map_err(|e| format!("{name}: {e}"))?;
            }
        }
        finish(server_builder()?.with_cert_resolver(Arc::new(resolver)))
    }

    fn issue(
        &self,
        names: &[String],
        validity: Validity,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, names.first().map_or("localhost", String::as_str));
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (rcgen::date_time_ymd(2020, 1, 1), rcgen::date_time_ymd(2049, 12, 31)),
            Validity::Expired => (rcgen::date_time_ymd(2020, 1, 1), rcgen::date_time_ymd(2021, 12, 31)),
        };
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| e.to_string())?;
        let chain = vec![cert.der().clone(), self.cert_der.clone()];
        Ok((chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))))
    }
}

fn server_builder() -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth())
}

fn finish(mut config: rustls::ServerConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
