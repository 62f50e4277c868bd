//! Commands on one router in the engine's error family, and batched item
//! commands with one outcome per id.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use isp_core::{Error, Result};

use super::link::{LinkError, RouterLink};
use crate::client::Row;

/// What happened to one item of a batched `remove`/`disable`.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The router did it.
    Done,
    /// The router said `no such item`: someone else removed it already.
    Gone,
    /// The router refused or the connection failed.
    Failed(LinkError),
}

impl Outcome {
    /// `Done` or `Gone`.
    pub(crate) fn confirmed(&self) -> bool {
        !matches!(self, Outcome::Failed(_))
    }
}

/// One router: its link (API or REST) and its name for messages.
#[derive(Debug, Clone)]
pub(crate) struct Ops {
    pub(crate) link: Arc<dyn RouterLink>,
    /// `router main-office`.
    pub(crate) service: String,
}

impl Ops {
    /// The router's name alone, for the `router` field of log lines.
    pub(crate) fn name(&self) -> &str {
        self.service.strip_prefix("router ").unwrap_or(&self.service)
    }

    pub(crate) fn err(&self, e: LinkError) -> Error {
        e.into_error(&self.service)
    }

    pub(crate) fn protocol(&self, detail: impl Into<String>) -> Error {
        Error::Protocol {
            service: self.service.clone(),
            detail: detail.into(),
        }
    }

    pub(crate) async fn print(&self, menu: &str, proplist: &[&str], queries: &[&str]) -> Result<Vec<Row>> {
        self.link
            .print(menu, proplist, queries)
            .await
            .map_err(|e| self.err(e))
    }

    /// `print` only when `needed`; otherwise no rows and no command.
    pub(crate) async fn print_if(
        &self,
        needed: bool,
        menu: &str,
        proplist: &[&str],
        queries: &[&str],
    ) -> Result<Vec<Row>> {
        if needed {
            self.print(menu, proplist, queries).await
        } else {
            Ok(Vec::new())
        }
    }

    pub(crate) async fn add(&self, menu: &str, attributes: &[(&str, &str)]) -> Result<String> {
        let id = self.link.add(menu, attributes).await.map_err(|e| self.err(e))?;
        tracing::info!(router = %self.name(), menu, id = %id, "router item added");
        Ok(id)
    }

    pub(crate) async fn set(&self, menu: &str, id: &str, attributes: &[(&str, &str)]) -> Result<()> {
        self.link
            .set(menu, id, attributes)
            .await
            .map_err(|e| self.err(e))?;
        tracing::info!(router = %self.name(), menu, id, "router item changed");
        Ok(())
    }

    /// `<menu>/<verb>` on some ids, one request: `remove` or another command.
    pub(crate) async fn on_items(
        &self,
        menu: &str,
        verb: &str,
        ids: &[&str],
    ) -> std::result::Result<(), LinkError> {
        if verb == "remove" {
            self.link.remove(menu, ids).await
        } else {
            self.link.command(menu, verb, ids).await
        }
    }

    /// Runs `<menu>/<verb>` on every id: one command with the ids
    /// comma-separated; if the router refuses the batch (one id already gone
    /// makes it refuse all), one command per id. `no such item` is
    /// [`Outcome::Gone`].
    pub(crate) async fn apply_many<'a>(
        &self,
        menu: &str,
        verb: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> HashMap<String, Outcome> {
        let ids: BTreeSet<&str> = ids.into_iter().collect();
        let mut out = HashMap::new();
        if ids.is_empty() {
            return out;
        }
        let all: Vec<&str> = ids.iter().copied().collect();
        match self.on_items(menu, verb, &all).await {
            Ok(()) => {
                for id in &all {
                    out.insert((*id).to_owned(), Outcome::Done);
                }
            }
            Err(e) if e.is_no_such_item() && all.len() == 1 => {
                out.insert(all[0].to_owned(), Outcome::Gone);
            }
            Err(e) if e.is_refusal() && all.len() > 1 => {
                let each = all.iter().map(|id| async move {
                    let outcome = match self.on_items(menu, verb, &[id]).await {
                        Ok(()) => Outcome::Done,
                        Err(e) if e.is_no_such_item() => Outcome::Gone,
                        Err(e) => Outcome::Failed(e),
                    };
                    ((*id).to_owned(), outcome)
                });
                out.extend(futures::future::join_all(each).await);
            }
            Err(e) => {
                for id in &all {
                    out.insert((*id).to_owned(), Outcome::Failed(e.clone()));
                }
            }
        }
        let done = out.values().filter(|o| matches!(o, Outcome::Done)).count();
        let failed = out.values().filter(|o| !o.confirmed()).count();
        tracing::info!(router = %self.name(), menu, verb, done, gone = out.len() - done - failed, failed, "router items");
        out
    }

    /// [`Ops::apply_many`] where every id must be confirmed: returns how many
    /// were done or already gone, or the first failure.
    pub(crate) async fn apply_all<'a>(
        &self,
        menu: &str,
        verb: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<u32> {
        let outcomes = self.apply_many(menu, verb, ids).await;
        let mut confirmed = 0u32;
        for outcome in outcomes.into_values() {
            match outcome {
                Outcome::Done | Outcome::Gone => confirmed += 1,
                Outcome::Failed(e) => return Err(self.err(e)),
            }
        }
        Ok(confirmed)
    }
}
