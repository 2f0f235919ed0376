//! `kubectl ws snapshot`, `restore`, `fork` and `export`: one workspace at a time, through
//! the server's `/clusters/<path>/snapshot` (a consistent read of the workspace at one
//! revision; a PUT of one makes a workspace hold exactly its objects).

use std::path::Path;

use http::Method;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::path::{LogicalPath, resolve_dots};
use crate::server::{ApiClient, status_error};
use crate::workspace::{CreateOptions, Session};

const SNAPSHOT_TYPE: &str = "application/octet-stream";

impl Session<'_> {
    /// The workspace `arg` names, as `ws use` reads it: empty for the current one, `:root:…`
    /// absolute, anything else relative to the current one.
    fn resolve(&self, arg: &str) -> Result<LogicalPath> {
        let cur = self.current_cluster()?;
        let name = arg.replace('/', ":");
        let absolute = match name.as_str() {
            "" | "." => return Ok(cur.path),
            _ => match name.strip_prefix(':') {
                Some(abs) => abs.to_string(),
                None => cur.path.join(&name).to_string(),
            },
        };
        let path = resolve_dots(&absolute).map_err(|_| Error::msg("cannot go up from root"))?;
        if !path.is_valid() {
            return Err(Error::msg(format!("invalid workspace path: {arg}")));
        }
        Ok(path)
    }

    /// GET `/clusters/<path>/snapshot?scope=workspace[&format=…]`: the answer's bytes.
    async fn read_snapshot(
        &self,
        client: &ApiClient,
        path: &LogicalPath,
        format: &str,
    ) -> Result<bytes::Bytes> {
        let url = format!("{}/snapshot?scope=workspace{format}", path.request_path());
        let (status, body) = client
            .send_bytes(Method::GET, &url, Vec::new(), SNAPSHOT_TYPE, "*/*")
            .await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        Ok(body)
    }

    /// PUT a workspace snapshot into `path`: what the server did.
    async fn write_snapshot(
        &self,
        client: &ApiClient,
        path: &LogicalPath,
        snapshot: Vec<u8>,
    ) -> Result<Value> {
        let url = format!("{}/snapshot", path.request_path());
        let (status, body) = client
            .send_bytes(
                Method::PUT,
                &url,
                snapshot,
                SNAPSHOT_TYPE,
                "application/json",
            )
            .await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| Error::Transport(e.to_string()))
    }

    /// `ws snapshot [WORKSPACE] --output FILE` (`-`: standard output).
    pub async fn snapshot(&mut self, arg: &str, output: &str) -> Result<()> {
        let path = self.resolve(arg)?;
        let client = self.client()?;
        let snapshot = self.read_snapshot(&client, &path, "").await?;
        if output == "-" {
            self.out.write_all(&snapshot)?;
            return Ok(());
        }
        write_file(Path::new(output), &snapshot)?;
        writeln!(
            self.err,
            "Workspace {:?} saved to {output} ({} bytes).",
            path.as_str(),
            snapshot.len()
        )?;
        Ok(())
    }

    /// `ws restore FILE [WORKSPACE]`.
    pub async fn restore(&mut self, file: &str, arg: &str) -> Result<()> {
        let path = self.resolve(arg)?;
        let snapshot =
            std::fs::read(file).map_err(|e| Error::msg(format!("reading {file}: {e}")))?;
        let client = self.client()?;
        let done = self.write_snapshot(&client, &path, snapshot).await?;
        writeln!(
            self.out,
            "Workspace {:?} restored from {file}: {}.",
            path.as_str(),
            counts(&done)
        )?;
        Ok(())
    }

    /// `ws fork SOURCE NAME [--type T]`: a new workspace NAME in the current one holding
    /// what SOURCE holds now.
    pub async fn fork(&mut self, source: &str, opts: &CreateOptions) -> Result<()> {
        let from = self.resolve(source)?;
        let client = self.client()?;
        // Read first: a source that cannot be read leaves no empty workspace behind.
        let snapshot = self.read_snapshot(&client, &from, "").await?;
        let into = self.current_cluster()?.path.join(&opts.name);
        self.create(opts).await?;
        let done = self
            .write_snapshot(&client, &into, snapshot.to_vec())
            .await?;
        writeln!(
            self.out,
            "Workspace {:?} forked from {:?}: {}.",
            into.as_str(),
            from.as_str(),
            counts(&done)
        )?;
        Ok(())
    }

    /// `ws export [WORKSPACE] [--output FILE]`: YAML manifests.
    pub async fn export(&mut self, arg: &str, output: &str) -> Result<()> {
        let path = self.resolve(arg)?;
        let client = self.client()?;
        let yaml = self.read_snapshot(&client, &path, "&format=yaml").await?;
        match output {
            "" | "-" => self.out.write_all(&yaml)?,
            file => write_file(Path::new(file), &yaml)?,
        }
        Ok(())
    }
}

fn counts(done: &Value) -> String {
    let n = |k: &str| done[k].as_u64().unwrap_or(0);
    format!(
        "{} objects written, {} unchanged, {} deleted",
        n("written"),
        n("unchanged"),
        n("deleted")
    )
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| Error::msg(format!("writing {}: {e}", path.display())))
}
