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
    /// Most commands in flight when falling back to one command per id.
    pub(crate) concurrency: usize,
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
    /// makes it refuse all), one command per id, at most
    /// [`Ops::concurrency`] of them in flight. `no such item` is
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
                // A semaphore rather than a stream combinator: the futures
                // stay `Send` for every lifetime, as the port's futures must.
                let permits = tokio::sync::Semaphore::new(self.concurrency.max(1));
                let permits = &permits;
                let each = all.iter().map(|id| async move {
                    // Never closed, so `acquire` cannot fail.
                    let _permit = permits.acquire().await.ok();
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::client::{ClientError, Row};
    use crate::driver::link::RouterLink;

    /// A router that refuses every batch (an id vanished) and records how
    /// many single-id commands it has in flight at most.
    #[derive(Debug, Default)]
    struct Counting {
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        singles: AtomicUsize,
    }

    impl Counting {
        async fn one(&self, ids: &[&str]) -> std::result::Result<(), LinkError> {
            if ids.len() > 1 {
                return Err(LinkError::Api(ClientError::Trap {
                    command: "/ip/hotspot/active/remove".into(),
                    message: "no such item (4)".into(),
                    category: Some(0),
                }));
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            // Stay in flight across several polls, so that an unbounded
            // fan-out would have every command in flight at once.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.singles.fetch_add(1, Ordering::SeqCst);
            if ids == ["*gone"] {
                return Err(LinkError::Api(ClientError::Trap {
                    command: "/ip/hotspot/active/remove".into(),
                    message: "no such item".into(),
                    category: Some(0),
                }));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl RouterLink for Counting {
        async fn print(&self, _: &str, _: &[&str], _: &[&str]) -> std::result::Result<Vec<Row>, LinkError> {
            Ok(Vec::new())
        }
        async fn add(&self, _: &str, _: &[(&str, &str)]) -> std::result::Result<String, LinkError> {
            Ok("*1".into())
        }
        async fn set(&self, _: &str, _: &str, _: &[(&str, &str)]) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn remove(&self, _: &str, ids: &[&str]) -> std::result::Result<(), LinkError> {
            self.one(ids).await
        }
        async fn command(&self, _: &str, _: &str, ids: &[&str]) -> std::result::Result<(), LinkError> {
            self.one(ids).await
        }
    }

    #[tokio::test]
    async fn the_one_by_one_fallback_keeps_at_most_the_concurrency_in_flight() {
        for (concurrency, verb) in [(3, "remove"), (1, "disable"), (8, "remove")] {
            let link = Arc::new(Counting::default());
            let ops = Ops {
                link: link.clone(),
                service: "router r1".into(),
                concurrency,
            };
            let ids: Vec<String> = (0..40)
                .map(|i| format!("*{i:X}"))
                .chain(["*gone".into()])
                .collect();
            let outcomes = ops
                .apply_many("/ip/hotspot/active", verb, ids.iter().map(String::as_str))
                .await;
            assert_eq!(outcomes.len(), 41);
            assert!(matches!(outcomes["*gone"], Outcome::Gone));
            assert_eq!(
                outcomes.values().filter(|o| matches!(o, Outcome::Done)).count(),
                40
            );
            assert_eq!(link.singles.load(Ordering::SeqCst), 41);
            let max = link.max_in_flight.load(Ordering::SeqCst);
            assert_eq!(
                max, concurrency,
                "{verb}: at most {concurrency} in flight, and as many as allowed"
            );
        }
    }
}
