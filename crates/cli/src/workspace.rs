//! The workspace commands, following kcp's plugin (staging/src/github.com/kcp-dev/cli/pkg/
//! workspace/plugin: use.go, create.go, tree.go), including its messages.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::kubeconfig::{self, Kubeconfig};
use crate::path::{ClusterUrl, LogicalPath, resolve_dots};
use crate::server::ApiClient;

const WORKSPACES: &str = "apis/tenancy.kcp.io/v1alpha1/workspaces";

/// Flags every command shares (the kubeconfig ones kubectl plugins accept).
#[derive(Clone, Debug, Default)]
pub struct GlobalOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// `ws create` / `kubectl create workspace` options.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub name: String,
    pub workspace_type: Option<String>,
    pub enter: bool,
    pub ignore_existing: bool,
    /// `--create-context NAME`: a context for the new workspace instead of entering it.
    pub create_context: Option<String>,
    pub ready_timeout: Duration,
}

/// One invocation: the kubeconfig it started from, and where output goes.
pub struct Session<'a> {
    kc: Kubeconfig,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
    /// The user's home directory, for shells that expanded `~` before we saw it.
    home_dir: Option<String>,
}

/// The type reference of a Workspace, printed as `path:name` (kcp's Path.Join).
fn type_string(ws: &Value) -> String {
    let t = &ws["spec"]["type"];
    let name = t["name"].as_str().unwrap_or_default();
    LogicalPath::new(t["path"].as_str().unwrap_or_default())
        .join(name)
        .to_string()
}

fn workspace_url(parent: &LogicalPath, name: &str) -> String {
    format!("{}/{WORKSPACES}/{name}", parent.request_path())
}

/// The scheme and authority (plus any prefix before `/clusters/`) requests go to.
fn server_base(server: &str) -> String {
    if let Some(c) = ClusterUrl::parse(server) {
        return c.base;
    }
    let after_scheme = server.find("://").map_or(0, |i| i + 3);
    match server[after_scheme..].find('/') {
        Some(i) => server[..after_scheme + i].to_string(),
        None => server.to_string(),
    }
}

impl<'a> Session<'a> {
    pub fn open(
        opts: &GlobalOptions,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
    ) -> Result<Self> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let path = kubeconfig::locate(
            opts.kubeconfig.as_deref(),
            std::env::var_os("KUBECONFIG").as_deref(),
            home.as_deref(),
        )?;
        let kc = Kubeconfig::load(&path)?.with_context_override(opts.context.clone());
        Ok(Self::new(
            kc,
            out,
            err,
            home.map(|h| h.to_string_lossy().into_owned()),
        ))
    }

    pub fn new(
        kc: Kubeconfig,
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        home_dir: Option<String>,
    ) -> Self {
        Self {
            kc,
            out,
            err,
            home_dir: home_dir.filter(|h| !h.is_empty()),
        }
    }

    pub fn kubeconfig(&self) -> &Kubeconfig {
        &self.kc
    }

    /// A client for the current context (call it within the runtime, see [`ApiClient::new`]).
    pub(crate) fn client(&self) -> Result<ApiClient> {
        let conn = self.kc.connection()?;
        ApiClient::new(conn.config, &server_base(&conn.server))
    }

    /// The current server split into base and workspace path, or kcp's error.
    pub(crate) fn current_cluster(&self) -> Result<ClusterUrl> {
        let server = self.kc.current_server()?;
        ClusterUrl::parse(&server).ok_or_else(|| {
            Error::msg(format!(
                "current URL {server:?} does not point to a workspace"
            ))
        })
    }

    /// `Current workspace is 'root:org' (type root:organization).`, kcp's printCurrentWorkspace.
    fn print_current(&mut self, server: &str, short: bool, ws_type: Option<&str>) -> Result<()> {
        let Some(c) = ClusterUrl::parse(server) else {
            if !short {
                writeln!(self.out, "Current workspace is the URL {server:?}.")?;
            }
            return Ok(());
        };
        if short {
            writeln!(self.out, "{}", c.path)?;
            return Ok(());
        }
        let mut message = format!("Current workspace is '{}'", c.path);
        if let Some(t) = ws_type {
            message.push_str(&format!(" (type {t})"));
        }
        writeln!(self.out, "{message}.")?;
        Ok(())
    }

    /// `ws current` and `ws .`.
    pub fn current(&mut self, short: bool) -> Result<()> {
        let server = self.kc.current_server()?;
        self.print_current(&server, short, None)
    }

    /// `ws [use|cd] <name>`, kcp's UseWorkspaceOptions.Run.
    pub async fn use_workspace(&mut self, arg: &str, short: bool) -> Result<()> {
        let mut name = arg.to_string();
        if let Some(rest) = self
            .home_dir
            .as_deref()
            .and_then(|home| name.strip_prefix(home))
        {
            name = format!("~{rest}");
        }
        name = name.replace('/', ":");
        if name == "root" || (name.starts_with("root:") && !short) {
            name = format!(":{name}");
            writeln!(
                self.err,
                "Note: Using 'root:' to define an absolute path is no longer supported. Instead, use ':root' to specify an absolute path."
            )?;
        }
        let mut cd_note = false;
        if name.is_empty() {
            cd_note = !short;
            name = "~".into();
        }
        self.kc.current_context()?;

        match name.as_str() {
            "-" => {
                let server = self.kc.swap_previous()?;
                self.kc.save()?;
                return self.print_current(&server, short, None);
            }
            ":" => {
                let cur = self.current_cluster()?;
                let root = ClusterUrl {
                    base: cur.base,
                    path: cur.path.top(),
                };
                return self.commit(&root.url(), short, None);
            }
            "." => return self.current(short),
            _ => {}
        }
        let client = self.client()?;
        if name == "~" || name.starts_with("~:") {
            let home = self.home_path(&client).await?;
            name = format!(":{home}{}", &name[1..]);
        }
        let cur = self.current_cluster()?;
        let absolute = match name.strip_prefix(':') {
            Some(abs) => abs.to_string(),
            None => cur.path.join(&name).to_string(),
        };
        let path = resolve_dots(&absolute).map_err(|_| Error::msg("cannot go up from root"))?;
        if !path.is_valid() {
            return Err(Error::msg(format!("invalid workspace path: {arg}")));
        }

        let denied = !self.has_api_groups(&client, &path).await?;
        // A 403 on the parent does not stop entering the workspace; discovery decides.
        let mut ws_type = None;
        let mut not_found = false;
        if path == LogicalPath::root() {
            ws_type = Some("root".to_string());
        } else if let (parent, base) = path.split()
            && !parent.is_empty()
        {
            match client.get(&workspace_url(&parent, base)).await {
                Ok(ws) => ws_type = Some(type_string(&ws)),
                Err(e) if e.is_not_found() => not_found = true,
                Err(_) => {}
            }
        }
        if denied && not_found {
            return Err(Error::msg(format!(
                "workspace {path:?} not found",
                path = path.as_str()
            )));
        }
        if denied {
            return Err(Error::msg(format!(
                "access to workspace {:?} denied",
                path.as_str()
            )));
        }
        let target = ClusterUrl {
            base: cur.base,
            path,
        };
        self.commit(&target.url(), short, ws_type.as_deref())?;
        if cd_note {
            writeln!(
                self.err,
                "Note: 'kubectl ws' now matches 'cd' semantics: go to home workspace. 'kubectl ws -' to go back. 'kubectl ws .' to print current workspace."
            )?;
        }
        Ok(())
    }

    fn commit(&mut self, server: &str, short: bool, ws_type: Option<&str>) -> Result<()> {
        self.kc.switch_to(server)?;
        self.kc.save()?;
        self.print_current(server, short, ws_type)
    }

    /// Whether discovery of `path` answers with any API group: kcp's existence-and-access
    /// check (a workspace one cannot see answers 403, or nothing).
    async fn has_api_groups(&self, client: &ApiClient, path: &LogicalPath) -> Result<bool> {
        let mut groups = 0;
        for (suffix, field) in [("api", "versions"), ("apis", "groups")] {
            match client
                .get(&format!("{}/{suffix}", path.request_path()))
                .await
            {
                Ok(v) => groups += v[field].as_array().map_or(0, Vec::len).min(1),
                Err(e) if e.is_not_found() || e.is_forbidden() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(groups > 0)
    }

    /// The home workspace's path, from `root`'s `workspaces/~`.
    async fn home_path(&self, client: &ApiClient) -> Result<LogicalPath> {
        let ws = client
            .get(&workspace_url(&LogicalPath::root(), "~"))
            .await?;
        let url = ws["spec"]["URL"].as_str().unwrap_or_default();
        ClusterUrl::parse(url)
            .map(|c| c.path)
            .ok_or_else(|| Error::msg(format!("invalid home workspace URL {url:?}")))
    }

    /// `ws create-context [NAME] [--overwrite]`.
    pub fn create_context(&mut self, name: Option<&str>, overwrite: bool) -> Result<()> {
        let line = self.kc.create_context(name, overwrite, None, false)?;
        self.kc.save()?;
        writeln!(self.out, "{line}")?;
        Ok(())
    }

    /// `ws tree`, kcp's TreeOptions.Run (non-interactive).
    pub async fn tree(&mut self, full: bool) -> Result<()> {
        let server = self.kc.current_server()?;
        let Some(cur) = ClusterUrl::parse(&server) else {
            writeln!(
                self.out,
                "current context URL {server:?} does not point directly to a kcp workspace"
            )?;
            return Ok(());
        };
        let client = self.client()?;
        let label = if full {
            cur.path.to_string()
        } else {
            cur.path.base().to_string()
        };
        let mut root = TreeNode {
            label: label.clone(),
            children: Vec::new(),
        };
        populate(&client, &mut root, &cur.path, &label, full).await?;
        let top = TreeNode {
            label: ".".into(),
            children: vec![root],
        };
        // kcp prints the rendered tree with Println, hence the empty last line.
        writeln!(self.out, "{}", top.render())?;
        Ok(())
    }

    /// `ws create` / `kubectl create workspace`, kcp's CreateWorkspaceOptions.Run.
    pub async fn create(&mut self, opts: &CreateOptions) -> Result<()> {
        let cur = self.current_cluster()?;
        let wanted_type = opts.workspace_type.as_deref().filter(|t| !t.is_empty());
        if opts.ignore_existing && wanted_type.is_some_and(|t| !t.starts_with("root")) {
            return Err(Error::msg(
                "--ignore-existing must not be used with non-absolute type path",
            ));
        }
        // `TYPE` or `PATH:TYPE`; a bare name's path is defaulted by the server.
        let structured = wanted_type.map(|t| match t.rsplit_once(':') {
            Some((path, name)) => (path.to_string(), name.to_lowercase()),
            None => (String::new(), t.to_lowercase()),
        });
        let mut spec = serde_json::Map::new();
        if let Some((path, name)) = &structured {
            let mut t = serde_json::Map::new();
            t.insert("name".into(), json!(name));
            if !path.is_empty() {
                t.insert("path".into(), json!(path));
            }
            spec.insert("type".into(), Value::Object(t));
        }
        let body = json!({
            "apiVersion": "tenancy.kcp.io/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": opts.name},
            "spec": spec,
        });
        let client = self.client()?;
        let list_url = format!("{}/{WORKSPACES}", cur.path.request_path());
        let get_url = workspace_url(&cur.path, &opts.name);
        let mut pre_existing = false;
        let mut ws = match client.post(&list_url, &body).await {
            Ok(ws) => ws,
            Err(e) if e.is_already_exists() && opts.ignore_existing => {
                pre_existing = true;
                client.get(&get_url).await?
            }
            Err(e) => return Err(e),
        };
        let reference = format!("Workspace {:?} (type {})", opts.name, type_string(&ws));
        let ready = |ws: &Value| ws["status"]["phase"].as_str() == Some("Ready");
        let wait = !opts.ready_timeout.is_zero();
        if pre_existing {
            if let Some((path, name)) = &structured {
                let t = &ws["spec"]["type"];
                let have_name = t["name"].as_str().unwrap_or_default();
                let have_path = t["path"].as_str().unwrap_or_default();
                if (!have_name.is_empty() && have_name != name) || have_path != path {
                    return Err(Error::msg(format!(
                        "workspace {:?} cannot be created with type {}, it already exists with different type {}",
                        opts.name,
                        LogicalPath::new(path.as_str()).join(name),
                        type_string(&ws)
                    )));
                }
            }
            if !ready(&ws) && wait {
                writeln!(
                    self.out,
                    "{reference} already exists. Waiting for it to be ready..."
                )?;
            } else {
                writeln!(self.out, "{reference} already exists.")?;
            }
        } else if !ready(&ws) && wait {
            writeln!(
                self.out,
                "{reference} created. Waiting for it to be ready..."
            )?;
        } else if !ready(&ws) {
            return Err(Error::msg(format!(
                "{reference} created but is not ready to use"
            )));
        }
        self.out.flush()?;

        if !ready(&ws) {
            let deadline = Instant::now() + opts.ready_timeout;
            loop {
                match client.get(&get_url).await {
                    Ok(w) => ws = w,
                    // Right after creation a read may not see it yet (kcp waits for this too).
                    Err(e) if e.is_not_found() && Instant::now() < deadline => {}
                    Err(e) => return Err(e),
                }
                if ready(&ws) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::msg(format!(
                        "timed out after {}s waiting for workspace {:?} to be ready (phase {:?})",
                        opts.ready_timeout.as_secs(),
                        opts.name,
                        ws["status"]["phase"].as_str().unwrap_or_default()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        writeln!(self.out, "{reference} is ready to use.")?;

        if let Some(ctx) = opts.create_context.as_deref().filter(|c| !c.is_empty()) {
            let url = ws["spec"]["URL"].as_str().unwrap_or_default().to_string();
            let line = self
                .kc
                .create_context(Some(ctx), opts.ignore_existing, Some(&url), !opts.enter)
                .map_err(|e| Error::msg(format!("failed to create context: {e}")))?;
            self.kc.save()?;
            writeln!(self.out, "{line}")?;
            return Ok(());
        }
        if opts.enter {
            let name = ws["metadata"]["name"]
                .as_str()
                .unwrap_or(&opts.name)
                .to_string();
            return Box::pin(self.use_workspace(&name, false)).await;
        }
        Ok(())
    }
}

/// One line of `ws tree` and what hangs below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    pub label: String,
    pub children: Vec<TreeNode>,
}

impl TreeNode {
    /// The layout of github.com/xlab/treeprint, which kcp uses: the root's label on its own
    /// line, then `├── `/`└── ` edges with `│   ` continuing open levels.
    pub fn render(&self) -> String {
        let mut s = format!("{}\n", self.label);
        render_children(&self.children, "", &mut s);
        s
    }
}

fn render_children(children: &[TreeNode], prefix: &str, s: &mut String) {
    for (i, c) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        s.push_str(prefix);
        s.push_str(if last { "└── " } else { "├── " });
        s.push_str(&c.label);
        s.push('\n');
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        render_children(&c.children, &deeper, s);
    }
}

/// Lists `path`'s workspaces into `node`, depth first, as kcp's populateBranch.
async fn populate(
    client: &ApiClient,
    node: &mut TreeNode,
    path: &LogicalPath,
    parent_name: &str,
    full: bool,
) -> Result<()> {
    let list = match client
        .get(&format!("{}/{WORKSPACES}", path.request_path()))
        .await
    {
        Ok(l) => l,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    let items = list["items"].as_array().cloned().unwrap_or_default();
    for ws in items {
        if !ws["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let ws_name = ws["metadata"]["name"].as_str().unwrap_or_default();
        let name = if full {
            format!("{parent_name}:{ws_name}")
        } else {
            ws_name.to_string()
        };
        // Mounts are served by someone else: a leaf, never recursed into.
        if !ws["spec"]["mount"].is_null() {
            node.children.push(TreeNode {
                label: format!("{name} [m]"),
                children: Vec::new(),
            });
            continue;
        }
        let url = ws["spec"]["URL"].as_str().unwrap_or_default();
        let child_path = ClusterUrl::parse(url)
            .ok_or_else(|| {
                Error::msg(format!(
                    "current config context URL {url:?} does not point to workspace"
                ))
            })?
            .path;
        let mut child = TreeNode {
            label: name.clone(),
            children: Vec::new(),
        };
        Box::pin(populate(client, &mut child, &child_path, &name, full)).await?;
        node.children.push(child);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(l: &str) -> TreeNode {
        TreeNode {
            label: l.into(),
            children: vec![],
        }
    }

    #[test]
    fn tree_layout() {
        let t = TreeNode {
            label: ".".into(),
            children: vec![TreeNode {
                label: "root".into(),
                children: vec![
                    TreeNode {
                        label: "org".into(),
                        children: vec![leaf("team-a"), leaf("team-b")],
                    },
                    TreeNode {
                        label: "other".into(),
                        children: vec![leaf("x")],
                    },
                ],
            }],
        };
        assert_eq!(
            t.render(),
            ".\n└── root\n    ├── org\n    │   ├── team-a\n    │   └── team-b\n    └── other\n        └── x\n"
        );
    }

    #[test]
    fn bases() {
        assert_eq!(server_base("https://h:1/clusters/root"), "https://h:1");
        assert_eq!(
            server_base("https://h:1/p/clusters/root:a"),
            "https://h:1/p"
        );
        assert_eq!(server_base("https://h:1"), "https://h:1");
        assert_eq!(server_base("https://h:1/"), "https://h:1");
    }

    #[test]
    fn type_strings() {
        assert_eq!(
            type_string(&json!({"spec": {"type": {"name": "universal", "path": "root"}}})),
            "root:universal"
        );
        assert_eq!(
            type_string(&json!({"spec": {"type": {"name": "root"}}})),
            "root"
        );
    }
}
