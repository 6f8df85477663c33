//! TLS for HTTPS checks: the client configuration, failure classes, and certificate expiry.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig, RootCertStore};

use super::Failure;

/// Builds the client configuration shared by every HTTPS check of a sweep: the public web PKI
/// roots plus any extra CA certificates, HTTP/1.1 by ALPN, and no session resumption so that every
/// check pays (and measures) a full handshake.
/// Why the TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{}: cannot read CA certificates: {source}", path.display())]
    ReadCa { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{}: not a PEM certificate file: {source}", path.display())]
    NotPem { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{}: no certificates found; expected PEM `BEGIN CERTIFICATE` blocks", path.display())]
    NoCertificates { path: PathBuf },
    #[error("{}: unusable CA certificate: {source}", path.display())]
    UnusableCa { path: PathBuf, source: rustls::Error },
    #[error("TLS setup: {0}")]
    Provider(rustls::Error),
}

pub fn client_config(extra_ca_pem: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca_pem {
        let path_buf = || path.to_path_buf();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|source| TlsSetupError::ReadCa { path: path_buf(), source })?
            .collect::<Result<_, _>>()
            .map_err(|source| TlsSetupError::NotPem { path: path_buf(), source })?;
        if certs.is_empty() {
            return Err(TlsSetupError::NoCertificates { path: path_buf() });
        }
        for cert in certs {
            roots.add(cert).map_err(|source| TlsSetupError::UnusableCa { path: path_buf(), source })?;
        }
    }
    client_config_with_roots(roots)
}

/// Like [`client_config`], trusting exactly the given roots (the demo's own CA, tests).
pub fn client_config_with_roots(roots: RootCertStore) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Provider)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Sorts a failed handshake into a failure class, with a short detail for people.
pub fn classify_handshake_error(error: &io::Error) -> (Failure, String) {
    let tls_error = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::InvalidCertificate(cert_error)) => match cert_error {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                (Failure::TlsExpired, "certificate expired".into())
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                (Failure::TlsExpired, "certificate not valid yet".into())
            }
            other => (Failure::TlsInvalid, format!("certificate rejected: {}", short(&format!("{other:?}")))),
        },
        Some(
            e @ (rustls::Error::AlertReceived(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::PeerIncompatible(_)
            | rustls::Error::PeerMisbehaved(_)
            | rustls::Error::UnsupportedNameType),
        ) => (Failure::TlsInvalid, format!("handshake failed: {}", short(&e.to_string()))),
        Some(e) => (Failure::ProtocolError, format!("TLS: {}", short(&e.to_string()))),
        None if error.kind() == io::ErrorKind::UnexpectedEof => {
            (Failure::ProtocolError, "connection closed during TLS handshake".into())
        }
        None => (Failure::ProtocolError, format!("TLS: {}", short(&error.to_string()))),
    }
}

fn short(text: &str) -> String {
    text.chars().take(160).collect()
}

/// Reads `notAfter` of an X.509 certificate (DER) as Unix seconds.
///
/// A small DER walk: Certificate → tbsCertificate → [version], serial, signature, issuer, validity.
pub fn cert_not_after(der: &[u8]) -> Option<i64> {
    let mut rest = tbs_fields(der)?;
    for _ in 0..3 {
        let (_, _, after) = read_tlv(rest)?; // serial, signature algorithm, issuer
        rest = after;
    }
    let (_, validity, _) = read_tlv(rest)?;
    let (_, _, after_not_before) = read_tlv(validity)?;
    let (tag, time, _) = read_tlv(after_not_before)?;
    parse_asn1_time(tag, time)
}

/// The issuer of an X.509 certificate (DER) as people name it: its common name, with the
/// organization in parentheses when it says more ("R11 (Let's Encrypt)"); `None` when the
/// issuer has neither or the certificate cannot be read. Control and direction characters are
/// dropped and the text is cut at 128 characters: a site chooses its own certificate.
pub fn cert_issuer(der: &[u8]) -> Option<String> {
    const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
    let mut rest = tbs_fields(der)?;
    for _ in 0..2 {
        let (_, _, after) = read_tlv(rest)?; // serial, signature algorithm
        rest = after;
    }
    // Name: a SEQUENCE of SETs of (OID, string) pairs.
    let (_, mut name, _) = read_tlv(rest)?;
    let (mut common_name, mut organization) = (None, None);
    while !name.is_empty() {
        let (_, set, after_set) = read_tlv(name)?;
        name = after_set;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (_, pair, after_pair) = read_tlv(attributes)?;
            attributes = after_pair;
            let (oid_tag, oid, value) = read_tlv(pair)?;
            let (string_tag, text, _) = read_tlv(value)?;
            // UTF8String, PrintableString, TeletexString (read as Latin-1 bytes), IA5String.
            let text = match string_tag {
                0x0c | 0x13 | 0x16 => String::from_utf8_lossy(text).into_owned(),
                0x14 => text.iter().map(|&b| char::from(b)).collect(),
                _ => continue,
            };
            if oid_tag != 0x06 {
                continue;
            }
            if oid == COMMON_NAME {
                common_name.get_or_insert(text);
            } else if oid == ORGANIZATION {
                organization.get_or_insert(text);
            }
        }
    }
    let clean = |text: String| -> Option<String> {
        let text: String = text.chars().filter(|c| !c.is_control() && !is_direction_control(*c)).take(128).collect();
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    };
    match (common_name.and_then(clean), organization.and_then(clean)) {
        (Some(cn), Some(o)) if !cn.contains(&o) => Some(format!("{cn} ({o})")),
        (Some(cn), _) => Some(cn),
        (None, o) => o,
    }
}

/// Unicode's explicit direction controls, which could reorder the text around an issuer name.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The fields of a certificate's tbsCertificate from its serial number on (the explicit [0]
/// version, when present, skipped).
fn tbs_fields(der: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = read_tlv(der)?;
    let (_, tbs, _) = read_tlv(certificate)?;
    let (tag, _, after) = read_tlv(tbs)?;
    Some(if tag == 0xa0 { after } else { tbs })
}

/// One DER tag-length-value: (tag, contents, the bytes after it).
fn read_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first_len, rest) = rest.split_first()?;
    let (len, rest) = if first_len < 0x80 {
        (first_len as usize, rest)
    } else {
        let count = (first_len & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// UTCTime (0x17, YYMMDDHHMMSSZ) or GeneralizedTime (0x18, YYYYMMDDHHMMSSZ) to Unix seconds.
fn parse_asn1_time(tag: u8, bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i16 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i8> { rest.get(i..i + 2)?.parse().ok() };
    let date = jiff::civil::date(year, field(0)?, field(2)?).at(field(4)?, field(6)?, field(8)?, 0);
    date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_names_common_name_and_organization() {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params.distinguished_name.push(rcgen::DnType::CountryName, "US");
        ca_params.distinguished_name.push(rcgen::DnType::OrganizationName, "Let's Encrypt");
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "R11");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        assert_eq!(cert_issuer(leaf.der()).as_deref(), Some("R11 (Let's Encrypt)"));

        // Only an organization; a hostile name loses its direction overrides and is cut.
        let mut params = rcgen::CertificateParams::new(vec!["b.test".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, format!("Evil\u{202e}Corp{}", "x".repeat(300)));
        let key = rcgen::KeyPair::generate().unwrap();
        let own = params.self_signed(&key).unwrap();
        let name = cert_issuer(own.der()).unwrap();
        assert!(name.starts_with("EvilCorpxxx"), "{name}");
        assert_eq!(name.chars().count(), 128);
        assert_eq!(cert_issuer(b"not a certificate"), None);
    }

    #[test]
    fn not_after_from_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let expected = "2049-12-31T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second();
        assert_eq!(cert_not_after(cert.der()), Some(expected));
        // GeneralizedTime is used from 2050 on.
        params.not_after = rcgen::date_time_ymd(2051, 6, 1);
        let cert = params.self_signed(&key).unwrap();
        let expected = "2051-06-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second();
        assert_eq!(cert_not_after(cert.der()), Some(expected));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(cert_not_after(b""), None);
        assert_eq!(cert_not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(cert_not_after(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
