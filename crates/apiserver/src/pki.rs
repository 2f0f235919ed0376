//! First-start PKI: a CA, a serving certificate and admin credentials (a token and a client
//! certificate) under the root directory, reused on later starts; and the admin kubeconfig.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("no usable {0} in PEM file")]
    Pem(&'static str),
}

/// The files a server keeps in its root directory.
pub struct Pki {
    pub ca_pem: String,
    /// What clients trust to reach the server: kplex's CA, or the last certificate of a
    /// chain given with `--tls-cert-file`.
    pub serving_ca_pem: String,
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Bearer token of the built-in admin (`system:masters`).
    pub admin_token: String,
    /// The admin's client certificate and key (PEM; CN `kplex-admin`, O `system:masters`).
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, contents).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

impl Pki {
    /// Loads the PKI from `root`, creating whatever is missing. `hosts` are the names and
    /// addresses the serving certificate must cover (besides localhost).
    pub fn load_or_create(root: &Path, hosts: &[String]) -> Result<Self, PkiError> {
        std::fs::create_dir_all(root).map_err(|source| PkiError::Io {
            action: "create",
            path: root.to_path_buf(),
            source,
        })?;
        let (ca_crt, ca_key) = (root.join("ca.crt"), root.join("ca.key"));
        let (crt, key) = (root.join("apiserver.crt"), root.join("apiserver.key"));
        let token = root.join("admin.token");
        let (admin_crt, admin_key) = (root.join("admin.crt"), root.join("admin.key"));
        if !ca_crt.exists() || !ca_key.exists() {
            let (cert, key_pem) = new_ca()?;
            write(&ca_key, &key_pem, true)?;
            write(&ca_crt, &cert, false)?;
        }
        if !crt.exists() || !key.exists() {
            let (cert, key_pem) = new_serving_cert(&read(&ca_crt)?, &read(&ca_key)?, hosts)?;
            write(&key, &key_pem, true)?;
            write(&crt, &cert, false)?;
        }
        if !token.exists() {
            write(&token, &random_token(), true)?;
        }
        if !admin_crt.exists() || !admin_key.exists() {
            let (cert, key_pem) = new_client_cert(
                &read(&ca_crt)?,
                &read(&ca_key)?,
                crate::authn::ADMIN,
                crate::authn::MASTERS,
            )?;
            write(&admin_key, &key_pem, true)?;
            write(&admin_crt, &cert, false)?;
        }
        Ok(Self {
            serving_ca_pem: read(&ca_crt)?,
            ca_pem: read(&ca_crt)?,
            cert_chain: parse_certs(&read(&crt)?)?,
            key: parse_key(&read(&key)?)?,
            admin_token: read(&token)?.trim().to_string(),
            admin_cert_pem: read(&admin_crt)?,
            admin_key_pem: read(&admin_key)?,
        })
    }

    /// Serves the certificate chain (PEM, leaf first) and key of `--tls-cert-file` and
    /// `--tls-private-key-file` instead of the generated serving certificate.
    pub fn with_serving_files(mut self, cert: &Path, key: &Path) -> Result<Self, PkiError> {
        self.cert_chain = parse_certs(&read(cert)?)?;
        self.key = parse_key(&read(key)?)?;
        if let Some(last) = self.cert_chain.last() {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(last.as_ref());
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .filter_map(|c| std::str::from_utf8(c).ok())
                .collect();
            self.serving_ca_pem = format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            );
        }
        Ok(self)
    }

    /// rustls configuration for serving: TLS 1.2+, ALPN h2 and http/1.1, one crypto provider;
    /// `client_auth` decides whether and how client certificates are requested.
    pub fn server_config(
        &self,
        client_auth: Arc<dyn ClientCertVerifier>,
    ) -> Result<Arc<ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(client_auth)
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn random_token() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            let i = rng.random_range(0..36u8);
            char::from(if i < 10 { b'0' + i } else { b'a' + i - 10 })
        })
        .collect()
}

fn new_ca() -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kplex-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn new_serving_cert(
    ca_pem: &str,
    ca_key_pem: &str,
    hosts: &[String],
) -> Result<(String, String), PkiError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for h in hosts {
        if !names.contains(h) && !h.is_empty() && h != "0.0.0.0" && h != "::" {
            names.push(h.clone());
        }
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "kplex");
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A client certificate signed by the CA: `user` as CN, `group` as O (kube-apiserver's
/// x509 convention; rcgen holds one value per attribute type). Returns (certificate, key) PEM.
pub fn new_client_cert(
    ca_pem: &str,
    ca_key_pem: &str,
    user: &str,
    group: &str,
) -> Result<(String, String), PkiError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, user);
    params
        .distinguished_name
        .push(DnType::OrganizationName, group);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(PkiError::Pem("certificate"));
    }
    Ok(certs)
}

fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .ok()
        .flatten()
        .ok_or(PkiError::Pem("private key"))
}

/// Writes `<root>/admin.kubeconfig`: contexts `root` (current, `/clusters/root`), `base` (no
/// path) and `system:admin`, all as the built-in admin by token (user `kplex-admin`); the
/// same admin by client certificate is user `kplex-admin-cert`.
pub fn write_admin_kubeconfig(root: &Path, server: &str, pki: &Pki) -> Result<PathBuf, PkiError> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ca = b64(&pki.serving_ca_pem);
    let cluster = |name: &str, url: &str| {
        format!(
            "- name: {name}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\n"
        )
    };
    let context = |name: &str, cluster: &str| {
        format!("- name: {name}\n  context:\n    cluster: {cluster}\n    user: kplex-admin\n")
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{}{}{}contexts:\n{}{}{}current-context: root\nusers:\n- name: kplex-admin\n  user:\n    token: {}\n- name: kplex-admin-cert\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\npreferences: {{}}\n",
        cluster("root", &format!("{server}/clusters/root")),
        cluster("base", server),
        cluster("system:admin", server),
        context("root", "root"),
        context("base", "base"),
        context("system:admin", "system:admin"),
        pki.admin_token,
        b64(&pki.admin_cert_pem),
        b64(&pki.admin_key_pem),
    );
    let path = root.join("admin.kubeconfig");
    write(&path, &text, true)?;
    Ok(path)
}
