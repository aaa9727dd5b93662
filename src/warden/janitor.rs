//! The janitor: removes nodes that a cancelled or failed protected create may have left
//! behind, so dropping a future never leaks a node.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::{debug, warn};

use super::create::find_protected;
use super::handle::Warden;
use crate::error::Error;

/// Pause between janitor attempts while the session is unavailable.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// A pending protected create. Unless disarmed, dropping it hands the node's parent and
/// protected prefix to the janitor.
pub(crate) struct Abandoned {
    warden: Option<Warden>,
    parent: String,
    prefix: String,
    ephemeral: bool,
}

impl Abandoned {
    /// Starts tracking a protected create under `parent` with name prefix `prefix`.
    pub(crate) fn arm(warden: &Warden, parent: &str, prefix: &str, ephemeral: bool) -> Abandoned {
        Abandoned {
            warden: Some(warden.detached()),
            parent: parent.to_owned(),
            prefix: prefix.to_owned(),
            ephemeral,
        }
    }

    /// The create finished cleanly: nothing to clean up.
    pub(crate) fn disarm(&mut self) {
        self.warden = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(warden) = self.warden.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(parent = %self.parent, "no runtime to clean up an abandoned create");
            return;
        };
        warden
            .inner
            .metrics
            .janitor_backlog
            .fetch_add(1, Ordering::Relaxed);
        let parent = std::mem::take(&mut self.parent);
        let prefix = std::mem::take(&mut self.prefix);
        let ephemeral = self.ephemeral;
        runtime.spawn(async move {
            clean_up(&warden, &parent, &prefix, ephemeral).await;
            warden
                .inner
                .metrics
                .janitor_backlog
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Deletes the protected node (if any) until that succeeds or the warden closes. Requests on
/// one session are answered in order, so a create still in flight when the future was
/// dropped lands before the janitor looks.
async fn clean_up(warden: &Warden, parent: &str, prefix: &str, ephemeral: bool) {
    loop {
        if warden.is_closed() {
            return;
        }
        let attempt = async {
            let (client, _) = warden.connected_client().await?;
            match find_protected(&client, parent, prefix, ephemeral).await? {
                Some(path) => match client.delete(&path, None).await {
                    Ok(()) | Err(Error::NoNode) => {
                        debug!(%path, "janitor removed an abandoned node");
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                None => Ok(()),
            }
        };
        match attempt.await {
            Ok(()) => return,
            Err(Error::Closed) => return,
            Err(e) if !e.is_transient() => {
                // NoAuth and the like will not change by trying again.
                warn!(error = %e, %parent, %prefix, "janitor cannot remove an abandoned node");
                return;
            }
            Err(e) => {
                debug!(error = %e, %parent, "janitor will try again");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}
