//! HTTPS: the certificate chain and private key named by `tls_cert` and `tls_key` (PEM files,
//! read once at start), served by rustls with its `ring` provider. ALPN offers HTTP/1.1 only:
//! the host guard reads the `Host` header, which HTTP/2 replaces by `:authority`. Without them
//! the relay speaks plain HTTP, as on loopback it should.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// What a start that cannot serve HTTPS says: which file, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("tls_{which} {path}: {reason}")]
pub struct TlsError {
    which: &'static str,
    path: String,
    reason: String,
}

/// The acceptor for `cert` (a PEM chain, leaf first) and `key` (its private key, PEM).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let error =
        |which, path: &Path, reason: String| TlsError { which, path: path.display().to_string(), reason };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error("cert", cert, format!("cannot read a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(error(
            "cert",
            cert,
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| error("key", key, format!("cannot read a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error("cert", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| error("key", key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
