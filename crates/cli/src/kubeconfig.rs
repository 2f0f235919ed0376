//! Kubeconfig reading and the rewrites `kubectl ws` does: the current workspace lives in a
//! cluster and context both named `workspace.kcp.io/current`, the one before it in
//! `workspace.kcp.io/previous`. Everything else in the file is kept as it was; the document
//! is held as a JSON value (with preserved key order) so unknown fields survive.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub const CURRENT: &str = "workspace.kcp.io/current";
pub const PREVIOUS: &str = "workspace.kcp.io/previous";

/// Where the kubeconfig lives: `--kubeconfig`, else the first entry of `$KUBECONFIG`, else
/// `~/.kube/config`.
pub fn locate(
    explicit: Option<&Path>,
    env: Option<&std::ffi::OsStr>,
    home: Option<&Path>,
) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(first) = env
        .into_iter()
        .flat_map(std::env::split_paths)
        .find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    match home {
        Some(h) => Ok(h.join(".kube").join("config")),
        None => Err(Error::msg(
            "no kubeconfig: set KUBECONFIG or HOME, or pass --kubeconfig",
        )),
    }
}

/// How to reach the server of one context: its URL as the kubeconfig spells it, and kube's
/// client configuration (TLS, credentials) for it.
#[derive(Clone, Debug)]
pub struct Connection {
    pub server: String,
    pub config: kube::Config,
}

impl Connection {
    /// A server given on the command line, with no kubeconfig behind it.
    pub fn for_server(server: &str) -> Result<Self> {
        let uri = server
            .parse()
            .map_err(|e| Error::msg(format!("invalid server URL {server:?}: {e}")))?;
        Ok(Self {
            server: server.to_string(),
            config: kube::Config::new(uri),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Kubeconfig {
    pub path: PathBuf,
    doc: Value,
    /// `--context`: used instead of `current-context` as the starting point.
    context_override: Option<String>,
}

impl Kubeconfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let doc = if text.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_saphyr::from_str::<Value>(text).map_err(|e| Error::Kubeconfig {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        };
        if !doc.is_object() {
            return Err(Error::Kubeconfig {
                path: path.to_path_buf(),
                message: "not a kubeconfig mapping".into(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            doc,
            context_override: None,
        })
    }

    pub fn with_context_override(mut self, context: Option<String>) -> Self {
        self.context_override = context.filter(|c| !c.is_empty());
        self
    }

    pub fn doc(&self) -> &Value {
        &self.doc
    }

    pub fn to_yaml(&self) -> Result<String> {
        // Plain scalars for long values (base64 data, tokens), as kubectl writes them.
        let mut options = serde_saphyr::SerializerOptions::default();
        options.prefer_block_scalars = false;
        serde_saphyr::to_string_with_options(&self.doc, options).map_err(|e| Error::Kubeconfig {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Writes the file back, through a temporary file so a crash never leaves half of it.
    pub fn save(&self) -> Result<()> {
        let text = self.to_yaml()?;
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension(format!(
            "{}kplex-tmp",
            self.path
                .extension()
                .map(|e| format!("{}.", e.to_string_lossy()))
                .unwrap_or_default()
        ));
        std::fs::write(&tmp, text).map_err(io)?;
        if let Ok(meta) = std::fs::metadata(&self.path) {
            // Keep the original mode: kubeconfigs hold credentials and are usually 0600.
            std::fs::set_permissions(&tmp, meta.permissions()).map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    pub fn current_context_name(&self) -> Option<&str> {
        self.context_override
            .as_deref()
            .or_else(|| self.doc.get("current-context").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
    }

    pub fn context(&self, name: &str) -> Option<&Value> {
        self.named("contexts", "context", name)
    }

    pub fn cluster(&self, name: &str) -> Option<&Value> {
        self.named("clusters", "cluster", name)
    }

    pub fn user(&self, name: &str) -> Option<&Value> {
        self.named("users", "user", name)
    }

    fn named(&self, list: &str, key: &str, name: &str) -> Option<&Value> {
        self.doc
            .get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
            .get(key)
    }

    /// Replaces the entry called `name` in place (keeping its position), or appends it.
    fn set_named(&mut self, list: &str, key: &str, name: &str, value: Value) {
        let Some(obj) = self.doc.as_object_mut() else {
            return;
        };
        let arr = obj.entry(list).or_insert_with(|| Value::Array(Vec::new()));
        if !arr.is_array() {
            *arr = Value::Array(Vec::new());
        }
        let Some(arr) = arr.as_array_mut() else {
            return;
        };
        if let Some(e) = arr
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .and_then(Value::as_object_mut)
        {
            e.insert(key.to_string(), value);
            return;
        }
        let mut entry = Map::new();
        entry.insert("name".into(), Value::String(name.into()));
        entry.insert(key.into(), value);
        arr.push(Value::Object(entry));
    }

    fn set_current_context(&mut self, name: &str) {
        if let Some(obj) = self.doc.as_object_mut() {
            obj.insert("current-context".into(), Value::String(name.into()));
        }
    }

    /// The current context's entry, or kcp's `current "x" context not found`.
    pub fn current_context(&self) -> Result<(&str, &Value)> {
        let name = self.current_context_name().unwrap_or_default();
        match self.context(name) {
            Some(ctx) => Ok((name, ctx)),
            None => Err(Error::msg(format!("current {name:?} context not found"))),
        }
    }

    /// The server URL of the current context.
    pub fn current_server(&self) -> Result<String> {
        Ok(self.connection()?.server)
    }

    /// Resolves the current context into what a client needs to connect: kube's loader reads
    /// the CA (data or file), client certificate and key, token or token file, with file
    /// paths relative to the kubeconfig's directory (as in client-go).
    pub fn connection(&self) -> Result<Connection> {
        let (context_name, ctx) = self.current_context()?;
        let cluster_name = str_field(ctx, "cluster");
        let cluster = self.cluster(cluster_name).ok_or_else(|| {
            Error::msg(format!("cluster {cluster_name:?} not found in kubeconfig"))
        })?;
        let server = str_field(cluster, "server").to_string();
        if server.is_empty() {
            return Err(Error::msg(format!(
                "cluster {cluster_name:?} has no server in kubeconfig"
            )));
        }
        let kube_error = |message: String| Error::Kubeconfig {
            path: self.path.clone(),
            message,
        };
        let mut kc: kube::config::Kubeconfig =
            serde_json::from_value(self.doc.clone()).map_err(|e| kube_error(e.to_string()))?;
        prepare_for_loading(&mut kc, self.path.parent());
        kc.current_context = Some(context_name.to_string());
        let mut config = kube::Config::try_from(kc).map_err(|e| kube_error(e.to_string()))?;
        // The token file is read once and trimmed, as client-go does; kube would send its
        // trailing newline.
        if config.auth_info.token.is_none()
            && let Some(file) = config.auth_info.token_file.take()
        {
            let path = PathBuf::from(file);
            let token =
                std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?;
            config.auth_info.token = Some(SecretString::from(token.trim().to_string()));
        }
        Ok(Connection { server, config })
    }

    /// Points `workspace.kcp.io/current` at `server` (a copy of the current context's cluster
    /// with a new server URL, same user) and makes it current; what was current becomes
    /// `workspace.kcp.io/previous`.
    pub fn switch_to(&mut self, server: &str) -> Result<()> {
        let (_, current_ctx) = self.current_context()?;
        let mut current_ctx = current_ctx.clone();
        let old_cluster_name = str_field(&current_ctx, "cluster").to_string();
        let old_cluster = self
            .cluster(&old_cluster_name)
            .ok_or_else(|| {
                Error::msg(format!(
                    "cluster {old_cluster_name:?} not found in kubeconfig"
                ))
            })?
            .clone();

        let mut new_cluster = old_cluster.clone();
        set_field(&mut new_cluster, "server", server);
        self.set_named("clusters", "cluster", CURRENT, new_cluster);
        let mut new_ctx = current_ctx.clone();
        set_field(&mut new_ctx, "cluster", CURRENT);
        // A namespace belongs to the workspace it was chosen in (`kubens team1` names one
        // there): in another workspace it would point at nothing, so the new one starts at
        // kubectl's default. `ws -` brings the old context, namespace included, back.
        if let Some(ctx) = new_ctx.as_object_mut() {
            ctx.remove("namespace");
        }
        self.set_named("contexts", "context", CURRENT, new_ctx);

        // The old cluster entry is about to be overwritten: keep it under the previous name.
        if old_cluster_name == CURRENT {
            set_field(&mut current_ctx, "cluster", PREVIOUS);
            self.set_named("clusters", "cluster", PREVIOUS, old_cluster);
        }
        self.set_named("contexts", "context", PREVIOUS, current_ctx);
        self.set_current_context(CURRENT);
        Ok(())
    }

    /// `ws create-context [NAME]` (kcp's CreateContextOptions.Run): a context and cluster
    /// called NAME (default: the current workspace path) copying the current ones, with
    /// `server` replaced by `cluster_url` if given. Returns the line to print.
    pub fn create_context(
        &mut self,
        name: Option<&str>,
        overwrite: bool,
        cluster_url: Option<&str>,
        keep_current: bool,
    ) -> Result<String> {
        let current_name = self.current_context_name().unwrap_or_default().to_string();
        let current_ctx = self
            .context(&current_name)
            .ok_or_else(|| {
                Error::msg(format!(
                    "current context {current_name:?} is not found in kubeconfig"
                ))
            })?
            .clone();
        let cluster_name = str_field(&current_ctx, "cluster").to_string();
        let mut cluster = self
            .cluster(&cluster_name)
            .ok_or_else(|| {
                Error::msg(format!(
                    "current cluster {cluster_name:?} is not found in kubeconfig"
                ))
            })?
            .clone();
        let server = str_field(&cluster, "server").to_string();
        let path = crate::path::ClusterUrl::parse(&server)
            .ok_or_else(|| {
                Error::msg(format!(
                    "current URL {server:?} does not point to a workspace"
                ))
            })?
            .path;
        let name = name
            .filter(|n| !n.is_empty())
            .map_or_else(|| path.to_string(), str::to_string);
        let existed = self.context(&name).is_some();
        if existed && !overwrite {
            return Err(Error::msg(format!(
                "context {name:?} already exists in kubeconfig, use --overwrite to update it"
            )));
        }
        let started_current =
            self.doc.get("current-context").and_then(Value::as_str) == Some(name.as_str());
        if let Some(url) = cluster_url.filter(|u| !u.is_empty()) {
            set_field(&mut cluster, "server", url);
        }
        self.set_named("clusters", "cluster", &name, cluster);
        let mut ctx = current_ctx;
        set_field(&mut ctx, "cluster", &name);
        self.set_named("contexts", "context", &name, ctx);
        if !keep_current {
            self.set_current_context(&name);
            self.context_override = None;
        }
        let verb = if existed { "Updated" } else { "Created" };
        Ok(if keep_current || started_current {
            format!("{verb} context {name:?}.")
        } else {
            format!("{verb} context {name:?} and switched to it.")
        })
    }

    /// `ws -`: exchanges the current and previous contexts (and the clusters named after
    /// them); returns the new current server URL.
    pub fn swap_previous(&mut self) -> Result<String> {
        let start = self.clone();
        let (_, current_ctx) = start.current_context()?;
        let mut current_ctx = current_ctx.clone();
        let mut prev = start
            .context(PREVIOUS)
            .ok_or_else(|| Error::msg("no previous workspace found in kubeconfig"))?
            .clone();
        let cur_cluster = str_field(&current_ctx, "cluster").to_string();
        if cur_cluster == CURRENT {
            let old = start
                .cluster(CURRENT)
                .ok_or_else(|| Error::msg(format!("cluster {CURRENT:?} not found in kubeconfig")))?
                .clone();
            set_field(&mut current_ctx, "cluster", PREVIOUS);
            self.set_named("clusters", "cluster", PREVIOUS, old);
        }
        if str_field(&prev, "cluster") == PREVIOUS {
            let prev_cluster = start
                .cluster(PREVIOUS)
                .ok_or_else(|| {
                    Error::msg(format!("cluster {cur_cluster:?} not found in kubeconfig"))
                })?
                .clone();
            set_field(&mut prev, "cluster", CURRENT);
            self.set_named("clusters", "cluster", CURRENT, prev_cluster);
        }
        self.set_named("contexts", "context", CURRENT, prev);
        self.set_named("contexts", "context", PREVIOUS, current_ctx);
        self.set_current_context(CURRENT);
        self.context_override = None;
        self.current_server()
    }
}

/// Prepares `kc` for kube's loader the way client-go reads a kubeconfig: empty strings are
/// unset, and file references are relative to `dir`, the kubeconfig's directory (as kube's
/// `Kubeconfig::read_from` does for the file it reads).
fn prepare_for_loading(kc: &mut kube::config::Kubeconfig, dir: Option<&Path>) {
    let file = |f: &mut Option<String>| {
        set_unless_empty(f);
        if let (Some(name), Some(dir)) = (f.as_mut(), dir)
            && Path::new(name.as_str()).is_relative()
            && let Some(abs) = dir.join(name.as_str()).to_str()
        {
            *name = abs.to_string();
        }
    };
    for cluster in kc.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
        set_unless_empty(&mut cluster.certificate_authority_data);
        file(&mut cluster.certificate_authority);
    }
    for user in kc
        .auth_infos
        .iter_mut()
        .filter_map(|u| u.auth_info.as_mut())
    {
        set_unless_empty(&mut user.client_certificate_data);
        file(&mut user.client_certificate);
        file(&mut user.client_key);
        file(&mut user.token_file);
        if user
            .client_key_data
            .as_ref()
            .is_some_and(|k| k.expose_secret().is_empty())
        {
            user.client_key_data = None;
        }
        if user
            .token
            .as_ref()
            .is_some_and(|t| t.expose_secret().is_empty())
        {
            user.token = None;
        }
    }
}

fn set_unless_empty(s: &mut Option<String>) {
    if s.as_deref() == Some("") {
        *s = None;
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn set_field(v: &mut Value, key: &str, value: &str) {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ADMIN: &str = "apiVersion: v1
kind: Config
clusters:
- name: root
  cluster:
    server: https://127.0.0.1:6443/clusters/root
    certificate-authority-data: Q0E=
    extensions-we-do-not-know: {a: 1}
- name: base
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: root
  context:
    cluster: root
    user: admin
    namespace: default
- name: base
  context:
    cluster: base
    user: admin
current-context: root
users:
- name: admin
  user:
    token: secret
preferences: {}
";

    fn load(text: &str) -> Kubeconfig {
        Kubeconfig::parse(Path::new("/tmp/kc"), text).unwrap()
    }

    fn server_of(kc: &Kubeconfig, cluster: &str) -> String {
        kc.cluster(cluster).unwrap()["server"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn ctx_cluster(kc: &Kubeconfig, ctx: &str) -> String {
        kc.context(ctx).unwrap()["cluster"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Each step: an operation, then the expected (current-context, current server,
    /// previous context's cluster, that cluster's server).
    #[test]
    fn switch_and_swap_sequence() {
        let base = "https://127.0.0.1:6443/clusters/";
        let mut kc = load(ADMIN);
        let steps: &[(Option<&str>, &str, &str, &str)] = &[
            (Some("root:org"), "root:org", "root", "root"),
            (Some("root:org:team"), "root:org:team", PREVIOUS, "root:org"),
            (None, "root:org", PREVIOUS, "root:org:team"),
            (None, "root:org:team", PREVIOUS, "root:org"),
            (Some("root"), "root", PREVIOUS, "root:org:team"),
        ];
        for (i, (target, want_cur, want_prev_cluster, want_prev)) in steps.iter().enumerate() {
            match target {
                Some(t) => kc.switch_to(&format!("{base}{t}")).unwrap(),
                None => {
                    let s = kc.swap_previous().unwrap();
                    assert_eq!(s, format!("{base}{want_cur}"), "step {i}");
                }
            }
            // Every step goes through YAML, as the real plugin does between invocations.
            kc = load(&kc.to_yaml().unwrap());
            assert_eq!(kc.current_context_name(), Some(CURRENT), "step {i}");
            assert_eq!(ctx_cluster(&kc, CURRENT), CURRENT, "step {i}");
            assert_eq!(
                kc.current_server().unwrap(),
                format!("{base}{want_cur}"),
                "step {i}"
            );
            assert_eq!(ctx_cluster(&kc, PREVIOUS), *want_prev_cluster, "step {i}");
            assert_eq!(
                server_of(&kc, want_prev_cluster),
                format!("{base}{want_prev}"),
                "step {i}"
            );
            // The context keeps its user and other fields.
            assert_eq!(kc.context(CURRENT).unwrap()["user"], json!("admin"));
            // … but not its namespace, which named one in the workspace it left.
            assert_eq!(kc.context(CURRENT).unwrap().get("namespace"), None);
            // Untouched entries stay as they were.
            assert_eq!(server_of(&kc, "root"), format!("{base}root"));
            assert_eq!(ctx_cluster(&kc, "base"), "base");
            assert_eq!(kc.user("admin").unwrap()["token"], json!("secret"));
        }
        // Long values stay plain scalars.
        let mut long = load(ADMIN);
        let ca = "QUJD".repeat(100);
        long.set_named(
            "clusters",
            "cluster",
            "big",
            json!({"certificate-authority-data": ca}),
        );
        let yaml = long.to_yaml().unwrap();
        assert!(
            yaml.contains(&format!("certificate-authority-data: {ca}\n")),
            "{yaml}"
        );
        // The copied cluster keeps its CA and unknown fields.
        let cur = kc.cluster(CURRENT).unwrap();
        assert_eq!(cur["certificate-authority-data"], json!("Q0E="));
        assert_eq!(cur["extensions-we-do-not-know"], json!({"a": 1}));
        assert_eq!(kc.doc()["preferences"], json!({}));
        assert_eq!(kc.doc()["kind"], json!("Config"));
        let clusters: Vec<_> = kc.doc()["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(clusters, ["root", "base", CURRENT, PREVIOUS]);
    }

    #[test]
    fn create_context() {
        let mut kc = load(ADMIN);
        kc.switch_to("https://127.0.0.1:6443/clusters/root:org")
            .unwrap();
        assert_eq!(
            kc.create_context(None, false, None, false).unwrap(),
            "Created context \"root:org\" and switched to it."
        );
        assert_eq!(kc.current_context_name(), Some("root:org"));
        assert_eq!(
            server_of(&kc, "root:org"),
            "https://127.0.0.1:6443/clusters/root:org"
        );
        assert_eq!(ctx_cluster(&kc, "root:org"), "root:org");
        assert_eq!(
            kc.create_context(None, false, None, false)
                .unwrap_err()
                .to_string(),
            "context \"root:org\" already exists in kubeconfig, use --overwrite to update it"
        );
        assert_eq!(
            kc.create_context(None, true, None, false).unwrap(),
            "Updated context \"root:org\"."
        );
        assert_eq!(
            kc.create_context(Some("x"), false, Some("https://h/clusters/root:x"), true)
                .unwrap(),
            "Created context \"x\"."
        );
        assert_eq!(kc.current_context_name(), Some("root:org"));
        assert_eq!(server_of(&kc, "x"), "https://h/clusters/root:x");
        let mut kc = load(ADMIN).with_context_override(Some("base".into()));
        assert_eq!(
            kc.create_context(None, false, None, false)
                .unwrap_err()
                .to_string(),
            "current URL \"https://127.0.0.1:6443\" does not point to a workspace"
        );
    }

    #[test]
    fn swap_without_previous_fails() {
        let mut kc = load(ADMIN);
        assert_eq!(
            kc.swap_previous().unwrap_err().to_string(),
            "no previous workspace found in kubeconfig"
        );
    }

    #[test]
    fn swap_back_to_a_plain_context() {
        // After one switch, previous is the admin context itself (cluster `root`): `ws -`
        // makes current a context on cluster `root` again, named workspace.kcp.io/current.
        let mut kc = load(ADMIN);
        kc.switch_to("https://127.0.0.1:6443/clusters/root:org")
            .unwrap();
        assert_eq!(ctx_cluster(&kc, PREVIOUS), "root");
        kc.swap_previous().unwrap();
        assert_eq!(ctx_cluster(&kc, CURRENT), "root");
        assert_eq!(ctx_cluster(&kc, PREVIOUS), PREVIOUS);
        assert_eq!(
            server_of(&kc, PREVIOUS),
            "https://127.0.0.1:6443/clusters/root:org"
        );
        assert_eq!(
            kc.current_server().unwrap(),
            "https://127.0.0.1:6443/clusters/root"
        );
    }

    #[test]
    fn context_override_and_missing_context() {
        let kc = load(ADMIN).with_context_override(Some("base".into()));
        assert_eq!(kc.current_server().unwrap(), "https://127.0.0.1:6443");
        let kc = load(ADMIN).with_context_override(Some("nope".into()));
        assert_eq!(
            kc.connection().unwrap_err().to_string(),
            "current \"nope\" context not found"
        );
    }

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn connection_fields() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_pem()).unwrap();
        std::fs::write(dir.path().join("tok"), "tok-from-file\n").unwrap();
        let text = "clusters:
- name: c
  cluster:
    server: https://h:1/clusters/root
    certificate-authority: ca.crt
    certificate-authority-data: ''
    insecure-skip-tls-verify: true
    tls-server-name: kplex
contexts:
- name: x
  context: {cluster: c, user: u}
- name: other
  context: {cluster: c, user: v}
current-context: x
users:
- name: u
  user:
    token: ''
    tokenFile: tok
    client-certificate: certs/client.crt
    client-key-data: S0VZ
- name: v
  user:
    token: inline
    tokenFile: /nonexistent
";
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        let c = Kubeconfig::load(&path).unwrap().connection().unwrap();
        assert_eq!(c.server, "https://h:1/clusters/root");
        assert_eq!(c.config.cluster_url, "https://h:1/clusters/root");
        // The CA file, relative to the kubeconfig (the empty data does not count).
        assert_eq!(c.config.root_cert.as_ref().map(Vec::len), Some(1));
        assert!(c.config.accept_invalid_certs);
        assert_eq!(c.config.tls_server_name.as_deref(), Some("kplex"));
        let user = &c.config.auth_info;
        // The token file is read and trimmed; an empty token does not count.
        assert_eq!(
            user.token.as_ref().map(|t| t.expose_secret().to_string()),
            Some("tok-from-file".to_string())
        );
        assert_eq!(user.token_file, None);
        assert_eq!(
            user.client_certificate.as_deref(),
            dir.path().join("certs/client.crt").to_str()
        );
        assert_eq!(
            user.client_key_data
                .as_ref()
                .map(|k| k.expose_secret().to_string()),
            Some("S0VZ".to_string())
        );

        // An inline token wins over the token file, which is not read.
        let c = Kubeconfig::load(&path)
            .unwrap()
            .with_context_override(Some("other".into()))
            .connection()
            .unwrap();
        assert_eq!(
            c.config
                .auth_info
                .token
                .map(|t| t.expose_secret().to_string()),
            Some("inline".to_string())
        );

        // A CA file that is not there.
        std::fs::remove_file(dir.path().join("ca.crt")).unwrap();
        let e = Kubeconfig::load(&path).unwrap().connection().unwrap_err();
        assert!(e.to_string().contains("ca.crt"), "{e}");
    }

    #[test]
    fn save_keeps_mode_and_is_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, ADMIN).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut kc = Kubeconfig::load(&path).unwrap();
        kc.switch_to("https://127.0.0.1:6443/clusters/root:a")
            .unwrap();
        kc.save().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Kubeconfig::load(&path).unwrap();
        assert_eq!(
            again.current_server().unwrap(),
            "https://127.0.0.1:6443/clusters/root:a"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn locate_order() {
        let home = Path::new("/home/u");
        let env = std::ffi::OsString::from("/a/one:/b/two");
        assert_eq!(
            locate(Some(Path::new("/x")), Some(&env), Some(home)).unwrap(),
            PathBuf::from("/x")
        );
        assert_eq!(
            locate(None, Some(&env), Some(home)).unwrap(),
            PathBuf::from("/a/one")
        );
        assert_eq!(
            locate(None, Some(std::ffi::OsStr::new("")), Some(home)).unwrap(),
            PathBuf::from("/home/u/.kube/config")
        );
        assert!(locate(None, None, None).is_err());
    }
}
