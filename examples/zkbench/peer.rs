//! [`Driver`] for the `zookeeper-client` crate, the peer we compare against.

use std::future::Future;

use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, EventType, OneshotWatcher};

use crate::driver::{BenchError, BenchResult, Driver, SESSION_TIMEOUT};

/// Persistent nodes open to everyone, as zkwarden's `CreateMode::Persistent` makes them.
const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

/// A `zookeeper-client` session.
pub(crate) struct Peer {
    client: Client,
}

impl Driver for Peer {
    type Watch = OneshotWatcher;

    async fn open(connect: &str) -> BenchResult<Self> {
        let client = Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .connect(connect)
            .await
            .map_err(|e| BenchError::new(&format!("peer: connecting to {connect}"), e))?;
        Ok(Peer { client })
    }

    async fn close(self) -> BenchResult<()> {
        // The peer closes its session when the last handle goes; its state watcher tells when
        // the server has confirmed.
        let mut states = self.client.state_watcher();
        drop(self.client);
        let mut state = states.peek_state();
        while !state.is_terminated() {
            state = states.changed().await;
        }
        match state {
            zookeeper_client::SessionState::Closed => Ok(()),
            other => Err(BenchError::msg(format!(
                "peer: session ended as {other:?} instead of Closed"
            ))),
        }
    }

    fn get<'a>(&'a self, path: &'a str) -> impl Future<Output = BenchResult<usize>> + 'a {
        let reply = self.client.get_data(path);
        async move {
            match reply.await {
                Ok((data, _stat)) => Ok(data.len()),
                Err(e) => Err(BenchError::new("peer: get_data", e)),
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
                Err(e) => Err(BenchError::new("peer: set_data", e)),
            }
        }
    }

    fn create<'a>(
        &'a self,
        path: &'a str,
        data: &'a [u8],
    ) -> impl Future<Output = BenchResult<()>> + 'a {
        let reply = self.client.create(path, data, &PERSISTENT);
        async move {
            match reply.await {
                Ok(_stat_and_sequence) => Ok(()),
                Err(e) => Err(BenchError::new("peer: create", e)),
            }
        }
    }

    fn delete<'a>(&'a self, path: &'a str) -> impl Future<Output = BenchResult<()>> + 'a {
        let reply = self.client.delete(path, None);
        async move { reply.await.map_err(|e| BenchError::new("peer: delete", e)) }
    }

    async fn children(&self, path: &str) -> BenchResult<Vec<String>> {
        self.client
            .list_children(path)
            .await
            .map_err(|e| BenchError::new("peer: list_children", e))
    }

    async fn get_and_watch(&self, path: &str) -> BenchResult<Self::Watch> {
        match self.client.get_and_watch_data(path).await {
            Ok((_data, _stat, watch)) => Ok(watch),
            Err(e) => Err(BenchError::new("peer: get_and_watch_data", e)),
        }
    }

    async fn changed(watch: Self::Watch) -> BenchResult<()> {
        let event = watch.changed().await;
        if event.event_type == EventType::NodeDataChanged {
            Ok(())
        } else {
            Err(BenchError::msg(format!(
                "peer: expected NodeDataChanged, the watch fired {:?} ({:?}) on {}",
                event.event_type, event.session_state, event.path
            )))
        }
    }
}
