//! [`Driver`] for zkwarden.

use std::future::Future;

use zkwarden::{Client, CreateMode, EventType, OneshotWatcher};

use crate::driver::{BenchError, BenchResult, Driver, SESSION_TIMEOUT};

/// A zkwarden session.
pub(crate) struct Ours {
    client: Client,
}

impl Driver for Ours {
    type Watch = OneshotWatcher;

    async fn open(connect: &str) -> BenchResult<Self> {
        let client = Client::builder(connect)
            .session_timeout(SESSION_TIMEOUT)
            .connect()
            .await
            .map_err(|e| BenchError::new(&format!("zkwarden: connecting to {connect}"), e))?;
        Ok(Ours { client })
    }

    async fn close(self) -> BenchResult<()> {
        self.client
            .close()
            .await
            .map_err(|e| BenchError::new("zkwarden: close", e))
    }

    fn get<'a>(&'a self, path: &'a str) -> impl Future<Output = BenchResult<usize>> + 'a {
        let reply = self.client.get_data(path);
        async move {
            match reply.await {
                Ok((data, _stat)) => Ok(data.len()),
                Err(e) => Err(BenchError::new("zkwarden: get_data", e)),
            }
        }
    }

    fn set<'a>(
        &'a self,
        path: &'a str,
        data: &'a [u8],
    ) -> impl Future<Output = BenchResult<()>> + 'a {
        let reply = self.client.set_data(path, data, None);
        async move {
            match reply.await {
                Ok(_stat) => Ok(()),
                Err(e) => Err(BenchError::new("zkwarden: set_data", e)),
            }
        }
    }

    fn create<'a>(
        &'a self,
        path: &'a str,
        data: &'a [u8],
    ) -> impl Future<Output = BenchResult<()>> + 'a {
        let reply = self.client.create(path, data, CreateMode::Persistent);
        async move {
            match reply.await {
                Ok(_path) => Ok(()),
                Err(e) => Err(BenchError::new("zkwarden: create", e)),
            }
        }
    }

    fn delete<'a>(&'a self, path: &'a str) -> impl Future<Output = BenchResult<()>> + 'a {
        let reply = self.client.delete(path, None);
        async move {
            reply
                .await
                .map_err(|e| BenchError::new("zkwarden: delete", e))
        }
    }

    async fn children(&self, path: &str) -> BenchResult<Vec<String>> {
        self.client
            .get_children(path)
            .await
            .map_err(|e| BenchError::new("zkwarden: get_children", e))
    }

    async fn get_and_watch(&self, path: &str) -> BenchResult<Self::Watch> {
        match self.client.get_data_and_watch(path).await {
            Ok((_data, _stat, watch)) => Ok(watch),
            Err(e) => Err(BenchError::new("zkwarden: get_data_and_watch", e)),
        }
    }

    async fn changed(watch: Self::Watch) -> BenchResult<()> {
        let event = watch
            .await
            .map_err(|e| BenchError::new("zkwarden: waiting for a watch", e))?;
        if event.event_type == EventType::NodeDataChanged {
            Ok(())
        } else {
            Err(BenchError::msg(format!(
                "zkwarden: expected NodeDataChanged, the watch fired {:?} on {}",
                event.event_type, event.path
            )))
        }
    }
}
