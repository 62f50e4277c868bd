//! The few operations the driver needs from a router, over either protocol:
//! the API [`Client`] or the [`RestClient`]. Everything menu-level (what to
//! print, what to remove, ownership checks) is written once over this trait.

use async_trait::async_trait;
use isp_core::Error;

use crate::client::{map_ros_error, Client, ClientError, Row};
use crate::rest::{map_rest_error, RestClient, RestError};

/// A failure of either transport, kept as is (`Clone`, so one failure can be
/// reported for several targets) until it is mapped for the engine.
#[derive(Debug, Clone)]
pub(crate) enum LinkError {
    /// From the API client.
    Api(ClientError),
    /// From the REST client.
    Rest(RestError),
}

impl LinkError {
    /// The object is gone (`no such item`, 404).
    pub(crate) fn is_no_such_item(&self) -> bool {
        match self {
            LinkError::Api(e) => e.is_no_such_item(),
            LinkError::Rest(e) => e.is_no_such_item(),
        }
    }

    /// A duplicate (`already have ...`, `... already exists`).
    pub(crate) fn is_already_exists(&self) -> bool {
        match self {
            LinkError::Api(e) => e.is_already_exists(),
            LinkError::Rest(e) => e.is_already_exists(),
        }
    }

    /// The router refused the command itself (a `!trap`, a 4xx with a
    /// RouterOS detail), as opposed to connection trouble.
    pub(crate) fn is_refusal(&self) -> bool {
        match self {
            LinkError::Api(e) => matches!(e, ClientError::Trap { .. }),
            LinkError::Rest(e) => e.is_refusal(),
        }
    }

    /// The engine's error, through the transport's one mapping.
    pub(crate) fn into_error(self, service: &str) -> Error {
        match self {
            LinkError::Api(e) => map_ros_error(service, e),
            LinkError::Rest(e) => map_rest_error(service, e),
        }
    }
}

impl From<ClientError> for LinkError {
    fn from(e: ClientError) -> Self {
        LinkError::Api(e)
    }
}

impl From<RestError> for LinkError {
    fn from(e: RestError) -> Self {
        LinkError::Rest(e)
    }
}

/// print / add / set / remove / other item commands on one router.
#[async_trait]
pub(crate) trait RouterLink: Send + Sync + std::fmt::Debug {
    /// Items of `menu` matching API-style `queries` (`name=alice`), with only
    /// the `proplist` properties.
    async fn print(&self, menu: &str, proplist: &[&str], queries: &[&str]) -> Result<Vec<Row>, LinkError>;
    /// Adds an item; returns its `.id`.
    async fn add(&self, menu: &str, attributes: &[(&str, &str)]) -> Result<String, LinkError>;
    /// Changes one item.
    async fn set(&self, menu: &str, id: &str, attributes: &[(&str, &str)]) -> Result<(), LinkError>;
    /// Removes items (one request for all of them).
    async fn remove(&self, menu: &str, ids: &[&str]) -> Result<(), LinkError>;
    /// Another command on items (`disable`, `enable`), one request for all of them.
    async fn command(&self, menu: &str, verb: &str, ids: &[&str]) -> Result<(), LinkError>;
}

#[async_trait]
impl RouterLink for Client {
    async fn print(&self, menu: &str, proplist: &[&str], queries: &[&str]) -> Result<Vec<Row>, LinkError> {
        Ok(Client::print(self, menu, proplist, queries).await?)
    }

    async fn add(&self, menu: &str, attributes: &[(&str, &str)]) -> Result<String, LinkError> {
        Ok(Client::add(self, menu, attributes).await?)
    }

    async fn set(&self, menu: &str, id: &str, attributes: &[(&str, &str)]) -> Result<(), LinkError> {
        Ok(Client::set(self, menu, &[id], attributes).await?)
    }

    async fn remove(&self, menu: &str, ids: &[&str]) -> Result<(), LinkError> {
        Ok(self.on_items(menu, "remove", ids, &[]).await?)
    }

    async fn command(&self, menu: &str, verb: &str, ids: &[&str]) -> Result<(), LinkError> {
        Ok(self.on_items(menu, verb, ids, &[]).await?)
    }
}

#[async_trait]
impl RouterLink for RestClient {
    async fn print(&self, menu: &str, proplist: &[&str], queries: &[&str]) -> Result<Vec<Row>, LinkError> {
        Ok(RestClient::print(self, menu, proplist, queries).await?)
    }

    async fn add(&self, menu: &str, attributes: &[(&str, &str)]) -> Result<String, LinkError> {
        Ok(RestClient::add(self, menu, attributes).await?)
    }

    async fn set(&self, menu: &str, id: &str, attributes: &[(&str, &str)]) -> Result<(), LinkError> {
        Ok(RestClient::set(self, menu, id, attributes).await?)
    }

    async fn remove(&self, menu: &str, ids: &[&str]) -> Result<(), LinkError> {
        Ok(RestClient::remove(self, menu, ids).await?)
    }

    async fn command(&self, menu: &str, verb: &str, ids: &[&str]) -> Result<(), LinkError> {
        RestClient::command(self, menu, verb, ids, &[]).await?;
        Ok(())
    }
}
