//! LIST: pages with continue tokens, resourceVersion semantics, selectors.

use kplex_apimachinery::{ApiError, continue_token};
use kplex_store::{KeyRange, RangeRequest, prefix_end};
use serde_json::Value;

use super::{Registry, Scope, Selectors, Stored, store_error};
use crate::shared::SharedObjects;

/// How a list is read.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub selectors: Selectors,
    /// 0 = everything.
    pub limit: usize,
    pub continue_token: Option<String>,
    /// `resourceVersion` query parameter.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: `Exact` or `NotOlderThan`.
    pub resource_version_match: Option<String>,
}

/// One page of a list.
#[derive(Debug, Default)]
pub struct ListResult {
    pub items: Vec<Stored>,
    /// The revision the page was read at (the list's resourceVersion).
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// Page size used to scan the store when selectors filter items out.
const SCAN_PAGE: usize = 500;

/// 410 for a continue token whose revision was compacted, carrying a token that goes on from
/// the same key at the latest revision (as kube's does: the client may accept an
/// inconsistent list rather than start over).
fn expired_continue(prefix: &str, start: &str) -> ApiError {
    let mut err = ApiError::resource_expired(continue_token::EXPIRED_MESSAGE);
    if let Some(relative) = start.strip_prefix(prefix).filter(|r| !r.is_empty()) {
        err.continue_token = Some(continue_token::encode(continue_token::LATEST, relative));
    }
    err
}

pub fn parse_resource_version(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

impl Registry {
    pub async fn list(&self, scope: &Scope, opts: &ListOptions) -> Result<ListResult, ApiError> {
        let from_cache = opts.resource_version.as_deref() == Some("0")
            && opts.continue_token.as_deref().is_none_or(str::is_empty)
            && opts
                .resource_version_match
                .as_deref()
                .is_none_or(|m| m.is_empty() || m == "NotOlderThan");
        if from_cache {
            let (items, revision) = self
                .caches
                .list(
                    &scope.resource_prefix(),
                    &scope.prefix(),
                    opts.selectors.trigger_label(),
                )
                .await?;
            return finish_cached(scope, opts, items, revision);
        }
        if let Some(trigger) = fresh_cache_trigger(opts)
            && let Some((items, revision)) = self
                .caches
                .list_fresh(&scope.resource_prefix(), &scope.prefix(), Some(trigger))
                .await?
        {
            return finish_cached(scope, opts, items, revision);
        }
        let prefix = scope.prefix();
        let (revision, mut start) = self.list_start(&prefix, opts).await?;
        let first = start.clone();
        let end = prefix_end(&prefix);
        let mut result = ListResult::default();
        let filtering = !opts.selectors.is_empty();
        let mut served_at = revision;
        loop {
            let want = if opts.limit == 0 {
                0
            } else {
                opts.limit - result.items.len()
            };
            let page = if filtering { SCAN_PAGE.max(want) } else { want };
            let mut req = RangeRequest::new(KeyRange::between(start.clone(), end.clone()))
                .with_limit(page)
                .at_revision(served_at);
            // Filtered pages report no remaining count, so the store need not count.
            req.skip_count = filtering;
            let resp =
                self.store
                    .range(req)
                    .await
                    .map_err(|e| match (&e, &opts.continue_token) {
                        (kplex_store::Error::Compacted { .. }, Some(_)) => {
                            expired_continue(&prefix, &start)
                        }
                        _ => store_error(e),
                    })?;
            served_at = resp.revision;
            let mut last_key = None;
            let mut remaining_in_page = resp.kvs.len();
            for kv in resp.kvs {
                remaining_in_page -= 1;
                last_key = Some(kv.key.clone());
                let stored = Stored {
                    bytes: kv.value,
                    resource_version: kv.mod_revision,
                };
                if filtering && !opts.selectors.admits(&scope.desc, &stored)? {
                    continue;
                }
                result.items.push(stored);
                if opts.limit > 0 && result.items.len() == opts.limit {
                    break;
                }
            }
            let more_in_store = resp.more || remaining_in_page > 0;
            let full = opts.limit > 0 && result.items.len() >= opts.limit;
            match (last_key, more_in_store, full) {
                (Some(last), true, true) | (Some(last), true, false) if full || !filtering => {
                    let suffix = last.strip_prefix(&prefix).unwrap_or(&last).to_string();
                    result.continue_token =
                        Some(continue_token::encode(served_at, &format!("{suffix}\0")));
                    if !filtering {
                        result.remaining =
                            Some(resp.count as i64 - (page as i64).min(resp.count as i64));
                    }
                    break;
                }
                (Some(last), true, false) => start = format!("{last}\0"),
                _ => break,
            }
        }
        result.resource_version = served_at;
        if let Some(shared) = scope.shared_objects() {
            merge_shared(shared, scope, opts, &first, &mut result)?;
        }
        Ok(result)
    }

    /// The revision to read at and the first key, from continue/resourceVersion.
    async fn list_start(
        &self,
        prefix: &str,
        opts: &ListOptions,
    ) -> Result<(i64, String), ApiError> {
        if let Some(token) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|rv| !rv.is_empty() && rv != "0")
            {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, start) = continue_token::decode(token)?;
            // LATEST: the current revision (a range at revision 0 reads the current state).
            let rv = if rv == continue_token::LATEST { 0 } else { rv };
            return Ok((rv, format!("{prefix}{start}")));
        }
        let rv = opts.resource_version.as_deref().filter(|rv| !rv.is_empty());
        let revision = match (
            rv,
            opts.resource_version_match
                .as_deref()
                .filter(|m| !m.is_empty()),
        ) {
            (None, Some(_)) => {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            (Some(rv), Some("Exact")) => {
                let rv = parse_resource_version(rv)?;
                if rv == 0 {
                    return Err(ApiError::bad_request(
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
                rv
            }
            (Some(rv), None | Some("NotOlderThan")) => {
                let rv = parse_resource_version(rv)?;
                let current = self.store.status().await.map_err(store_error)?.revision;
                if rv > current {
                    return Err(super::too_large_resource_version(rv, current));
                }
                0
            }
            (Some(_), Some(other)) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
            (None, None) => 0,
        };
        Ok((revision, prefix.to_string()))
    }
}

/// Adds a kind's shared objects to one page of a list: those whose keys fall in the page's
/// key range `[first, next page's start)`, matching the selectors, in key order, the page
/// cut back to `limit` with a continue token after its last item if they overflow it.
fn merge_shared(
    shared: &SharedObjects,
    scope: &Scope,
    opts: &ListOptions,
    first: &str,
    result: &mut ListResult,
) -> Result<(), ApiError> {
    let prefix = scope.prefix();
    let next_start = match &result.continue_token {
        Some(token) => Some(format!("{prefix}{}", continue_token::decode(token)?.1)),
        None => None,
    };
    let mut extra = Vec::new();
    for (name, stored) in shared.iter() {
        let key = format!("{prefix}{name}");
        let in_page = key.as_str() >= first && next_start.as_ref().is_none_or(|n| key < *n);
        if in_page && opts.selectors.admits(&scope.desc, &stored)? {
            extra.push((name.to_string(), stored));
        }
    }
    if extra.is_empty() {
        return Ok(());
    }
    let mut named = with_names(std::mem::take(&mut result.items))?;
    named.retain(|(n, _)| !extra.iter().any(|(e, _)| e == n));
    named.extend(extra);
    named.sort_by(|a, b| a.0.cmp(&b.0));
    if opts.limit > 0 && named.len() > opts.limit {
        named.truncate(opts.limit);
        if let Some((last, _)) = named.last() {
            result.continue_token = Some(continue_token::encode(
                result.resource_version,
                &format!("{last}\0"),
            ));
        }
        result.remaining = None;
    }
    result.items = named.into_iter().map(|(_, stored)| stored).collect();
    Ok(())
}

/// Each item with its name (shared objects are cluster-scoped: names order the keys).
fn with_names(items: Vec<Stored>) -> Result<Vec<(String, Stored)>, ApiError> {
    items
        .into_iter()
        .map(|stored| {
            let obj = stored.decode()?;
            Ok((
                kplex_apimachinery::meta::name(&obj)
                    .unwrap_or("")
                    .to_string(),
                stored,
            ))
        })
        .collect()
}

/// The JSON list envelope around rendered items: `{"kind":"<Kind>List",…,"items":[…]}`.
pub fn render_list(desc: &crate::catalog::ResourceDesc, result: &ListResult) -> Vec<u8> {
    let (api_version, list_kind) = (desc.api_version(), desc.list_kind());
    let mut out = Vec::with_capacity(
        64 + result
            .items
            .iter()
            .map(|i| i.bytes.len() + 32)
            .sum::<usize>(),
    );
    let mut meta = serde_json::Map::new();
    meta.insert(
        "resourceVersion".into(),
        Value::String(result.resource_version.to_string()),
    );
    if let Some(c) = &result.continue_token {
        meta.insert("continue".into(), Value::String(c.clone()));
    }
    if let Some(r) = result.remaining.filter(|r| *r > 0) {
        meta.insert("remainingItemCount".into(), Value::from(r));
    }
    let head = serde_json::json!({"kind": list_kind, "apiVersion": api_version, "metadata": meta});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    // Drop the closing brace to append the items.
    out.extend_from_slice(&head[..head.len().saturating_sub(1)]);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in result.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item.render_as(desc));
    }
    out.extend_from_slice(b"]}");
    out
}

/// A consistent list (no resourceVersion) the watch cache may answer once it has caught up
/// with the store: whole (no limit, no continue), and of one label's objects (a syncer's
/// view), which the cache finds by label key without reading or parsing the rest, where the
/// store would decode every object of the resource. Returns that label.
fn fresh_cache_trigger(opts: &ListOptions) -> Option<&str> {
    let unset = |o: &Option<String>| o.as_deref().is_none_or(str::is_empty);
    (unset(&opts.resource_version)
        && unset(&opts.continue_token)
        && unset(&opts.resource_version_match)
        && opts.limit == 0)
        .then(|| opts.selectors.trigger_label())
        .flatten()
}

/// A list answered by the watch cache (at `resourceVersion=0`, any recent state will do;
/// kube-apiserver's cache answers those too, whole, without pages): what every workspace
/// shares merged in, then the selectors applied.
fn finish_cached(
    scope: &Scope,
    opts: &ListOptions,
    mut items: Vec<Stored>,
    revision: i64,
) -> Result<ListResult, ApiError> {
    if let Some(shared) = scope.shared_objects() {
        items.extend(shared.iter().map(|(_, stored)| stored));
        // Back in name order, as the store lists.
        let mut named = with_names(items)?;
        named.sort_by(|a, b| a.0.cmp(&b.0));
        items = named.into_iter().map(|(_, stored)| stored).collect();
    }
    let items = if opts.selectors.is_empty() {
        items
    } else {
        let mut kept = Vec::new();
        for item in items {
            if opts.selectors.admits(&scope.desc, &item)? {
                kept.push(item);
            }
        }
        kept
    };
    Ok(ListResult {
        items,
        resource_version: revision,
        continue_token: None,
        remaining: None,
    })
}
