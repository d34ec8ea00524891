//! TLS on the server's one port (tonic over rustls): a certificate chain and its key in PEM,
//! and optionally the certificate authority whose client certificates the server demands
//! (mutual TLS). Every service on the port (gRPC, Flight SQL, health, reflection) is behind
//! it; a plaintext client gets no answer.

use std::path::Path;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::server_error::ServerError;

/// The server's TLS identity, and the CA of the clients it accepts when mutual.
#[derive(Clone)]
pub struct ServerTls {
    certificate: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ServerTls")
            .field("mutual", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the PEM files: `certificate` (the server's chain, leaf first), `key` (its
    /// private key) and `client_ca` (clients must present a certificate it signed). A file
    /// that is missing or holds no PEM block of the expected kind is refused by name.
    pub fn from_files(
        certificate: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, ServerError> {
        let read = |path: &Path, what: &str, marker: &str| -> Result<Vec<u8>, ServerError> {
            let bytes = std::fs::read(path).map_err(|source| ServerError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let text = String::from_utf8_lossy(&bytes);
            if !text.contains("-----BEGIN ") || !text.contains(marker) {
                return Err(ServerError::InvalidArgument(format!(
                    "{}: not a PEM {what} (no \"-----BEGIN ...{marker}\" block)",
                    path.display()
                )));
            }
            Ok(bytes)
        };
        Ok(Self {
            certificate: read(certificate, "certificate", "CERTIFICATE-----")?,
            key: read(key, "private key", "PRIVATE KEY-----")?,
            client_ca: client_ca
                .map(|ca| read(ca, "CA certificate", "CERTIFICATE-----"))
                .transpose()?,
        })
    }

    /// Whether clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.client_ca.is_some()
    }

    /// tonic's configuration of it.
    pub(crate) fn config(&self) -> ServerTlsConfig {
        let config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.certificate, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}
