//! TLS for the node daemon's RPC server (the `openssl` crate; native-tls's
//! server side cannot ask for client certificates).
//!
//! Ganeti's rule: the key and certificate come from one PEM file
//! (`server.pem`), a client certificate is required, and it is accepted only
//! when it is the cluster certificate itself. 2.5.2 compares SHA-1 and MD5
//! digests; we compare SHA-256 digests of the DER encoding, which accepts
//! exactly the same certificates. TLS 1.2 is the oldest version offered.

use std::path::{Path, PathBuf};

use openssl::hash::MessageDigest;
use openssl::ssl::{
    SslAcceptor, SslFiletype, SslMethod, SslMode, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::X509;

/// Why the TLS server context could not be built.
#[derive(Debug)]
pub enum TlsError {
    Read(PathBuf, std::io::Error),
    Certificate(PathBuf, String),
    Key(PathBuf, String),
    Context(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Read(p, e) => write!(f, "Cannot read {}: {e}", p.display()),
            TlsError::Certificate(p, e) => {
                write!(
                    f,
                    "Cannot load the SSL certificate from {}: {e}",
                    p.display()
                )
            }
            TlsError::Key(p, e) => write!(f, "Cannot load the SSL key from {}: {e}", p.display()),
            TlsError::Context(e) => write!(f, "Cannot set up TLS: {e}"),
        }
    }
}

/// The SHA-256 digest of a certificate's DER encoding.
fn digest(cert: &openssl::x509::X509Ref) -> Option<Vec<u8>> {
    cert.digest(MessageDigest::sha256())
        .ok()
        .map(|d| d.to_vec())
}

/// Builds the server context: `key_path`/`cert_path` are usually both
/// `server.pem`; only that certificate is accepted from clients.
pub fn server_acceptor(key_path: &Path, cert_path: &Path) -> Result<SslAcceptor, TlsError> {
    let pem = std::fs::read(cert_path).map_err(|e| TlsError::Read(cert_path.into(), e))?;
    let cert =
        X509::from_pem(&pem).map_err(|e| TlsError::Certificate(cert_path.into(), e.to_string()))?;
    let own = digest(&cert)
        .ok_or_else(|| TlsError::Certificate(cert_path.into(), "cannot digest".into()))?;
    let ctx_err = |e: openssl::error::ErrorStack| TlsError::Context(e.to_string());
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(ctx_err)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(ctx_err)?;
    b.set_certificate(&cert)
        .map_err(|e| TlsError::Certificate(cert_path.into(), e.to_string()))?;
    b.set_private_key_file(key_path, SslFiletype::PEM)
        .map_err(|e| TlsError::Key(key_path.into(), e.to_string()))?;
    b.check_private_key().map_err(|e| {
        TlsError::Key(
            key_path.into(),
            format!("does not match the certificate: {e}"),
        )
    })?;
    // Names the cluster certificate as the acceptable client CA.
    b.add_client_ca(&cert).map_err(ctx_err)?;
    b.set_session_id_context(b"ganeti-noded").map_err(ctx_err)?;
    // Idle connections give their record buffers back: many kept-alive or
    // waiting connections then cost little locked memory.
    b.set_mode(SslMode::RELEASE_BUFFERS);
    // Masters open a new connection per call and never resume sessions
    // (2.5.2's curl and our client both turn resumption off): no session
    // cache and no tickets, which saves a write and memory per handshake.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_options(SslOptions::NO_TICKET);
    b.set_num_tickets(0).map_err(ctx_err)?;
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        move |_preverified, store| {
            // Chain validation is replaced by identity: every certificate the
            // client shows must be the cluster certificate.
            let ok = store
                .current_cert()
                .and_then(digest)
                .is_some_and(|d| d == own);
            if !ok {
                // The failed handshake is logged (rate-limited) by the server.
                log::debug!("Refusing a client certificate that is not the cluster certificate");
            }
            ok
        },
    );
    Ok(b.build())
}
