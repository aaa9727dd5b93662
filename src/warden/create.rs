//! Creating nodes under supervision: protected creates that find their own node after a lost
//! reply, idempotent creates, and creating missing parents.

use std::borrow::Cow;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::handle::Warden;
use super::janitor::Abandoned;
use super::retry_loop::OpClass;
use crate::client::path::{join, split_parent};
use crate::client::{Client, CreateOptions};
use crate::error::{Error, Result};
use crate::proto::{Acl, CreateMode};

/// The prefix Apache Curator puts before the GUID of a protected node.
pub const PROTECTED_PREFIX: &str = "_c_";

/// How missing parents are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentMode {
    /// As persistent nodes.
    Persistent,
    /// As container nodes, which the server deletes once they are empty.
    Container,
}

/// A create, configured with the builder methods and run by awaiting it.
///
/// * Plain (the default): retried after ambiguous failures only when that cannot make two
///   nodes. A non-sequential create that is retried after its reply was lost may return
///   `NodeExists` for the node it made itself; a sequential one is not retried after an
///   ambiguous failure and returns `ConnectionLoss` (it might have made a node). Use
///   [`protected`](CreateBuilder::protected) when that matters.
/// * [`protected`](CreateBuilder::protected): the name gets a `_c_<uuid>-` prefix (Apache
///   Curator's format); after a lost reply the create looks for a child with that prefix and
///   returns it instead of making a second node (for ephemerals, only one owned by the current
///   session). If the future is dropped midway, the warden's janitor deletes any node it made.
/// * [`idempotent`](CreateBuilder::idempotent): `NodeExists` with the same data counts as
///   success.
/// * [`parents`](CreateBuilder::parents): missing parents are created first.
#[must_use = "a create does nothing until awaited"]
pub struct CreateBuilder<'w> {
    warden: &'w Warden,
    path: String,
    data: Vec<u8>,
    options: CreateOptions,
    protected: bool,
    idempotent: bool,
    parents: Option<ParentMode>,
}

impl Warden {
    /// Starts a create of `path` holding `data` (persistent, open ACL until configured).
    pub fn create(&self, path: &str, data: &[u8]) -> CreateBuilder<'_> {
        CreateBuilder {
            warden: self,
            path: path.to_owned(),
            data: data.to_vec(),
            options: CreateOptions::new(CreateMode::Persistent),
            protected: false,
            idempotent: false,
            parents: None,
        }
    }
}

impl<'w> CreateBuilder<'w> {
    /// The creation mode.
    pub fn mode(mut self, mode: CreateMode) -> Self {
        self.options.mode = mode;
        self
    }

    /// The ACL.
    pub fn acl(mut self, acl: impl Into<Cow<'static, [Acl]>>) -> Self {
        self.options.acl = acl.into();
        self
    }

    /// The time to live (TTL modes only).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = Some(ttl);
        self
    }

    /// Mode, ACL and TTL at once.
    pub fn options(mut self, options: CreateOptions) -> Self {
        self.options = options;
        self
    }

    /// Makes the create protected (see the type's docs).
    pub fn protected(mut self) -> Self {
        self.protected = true;
        self
    }

    /// Treats an existing node with identical data as success.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Creates missing parents first, as `mode` nodes with the same ACL.
    pub fn parents(mut self, mode: ParentMode) -> Self {
        self.parents = Some(mode);
        self
    }

    async fn execute(self) -> Result<String> {
        let CreateBuilder {
            warden,
            path,
            data,
            options,
            protected,
            idempotent,
            parents,
        } = self;
        options.validate()?;
        crate::client::path::validate_path(&path, options.mode.is_sequential())?;
        let (parent, name) = split_parent(&path);
        if protected {
            return create_protected(warden, parent, name, &data, &options, parents).await;
        }
        let class = if options.mode.is_sequential() {
            OpClass::NonIdempotent
        } else {
            OpClass::Idempotent
        };
        let created = warden
            .run(class, "create", &path, |client| {
                create_once(client, path.clone(), data.clone(), options.clone(), parents)
            })
            .await;
        match created {
            Err(Error::NodeExists) if idempotent => {
                let (existing, _) = warden.get_data(&path).await?;
                if existing[..] == data[..] {
                    Ok(path)
                } else {
                    Err(Error::NodeExists)
                }
            }
            other => other,
        }
    }
}

impl<'w> IntoFuture for CreateBuilder<'w> {
    type Output = Result<String>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<String>> + Send + 'w>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

/// One create attempt, creating missing parents when asked.
async fn create_once(
    client: Client,
    path: String,
    data: Vec<u8>,
    options: CreateOptions,
    parents: Option<ParentMode>,
) -> Result<String> {
    match client.create(&path, &data, options.clone()).await {
        Err(Error::NoNode) if parents.is_some() => {
            let mode = match parents {
                Some(ParentMode::Container) => CreateMode::Container,
                _ => CreateMode::Persistent,
            };
            create_parents(&client, &path, options.acl.clone(), mode).await?;
            client.create(&path, &data, options).await
        }
        other => other,
    }
}

/// Creates every missing ancestor of `path`.
pub(crate) async fn create_parents(
    client: &Client,
    path: &str,
    acl: Cow<'static, [Acl]>,
    mode: CreateMode,
) -> Result<()> {
    let mut ancestor = String::with_capacity(path.len());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for segment in segments.iter().take(segments.len().saturating_sub(1)) {
        ancestor.push('/');
        ancestor.push_str(segment);
        match client
            .create(&ancestor, b"", CreateOptions::new(mode).acl(acl.clone()))
            .await
        {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A random (version 4) UUID in its usual text form.
pub(crate) fn new_uuid() -> String {
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        *b = fastrand::u8(..);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

async fn create_protected(
    warden: &Warden,
    parent: &str,
    name: &str,
    data: &[u8],
    options: &CreateOptions,
    parents: Option<ParentMode>,
) -> Result<String> {
    let prefix = format!("{PROTECTED_PREFIX}{}-", new_uuid());
    let full = join(parent, &format!("{prefix}{name}"));
    // If this future is dropped before it finishes, the janitor removes what it may have made.
    let mut abandoned = Abandoned::arm(warden, parent, &prefix, options.mode.is_ephemeral());
    let attempted = Arc::new(AtomicBool::new(false));
    let result = warden
        .run(OpClass::Idempotent, "create_protected", &full, |client| {
            let attempted = attempted.clone();
            let full = full.clone();
            let parent = parent.to_owned();
            let prefix = prefix.clone();
            let data = data.to_vec();
            let options = options.clone();
            async move {
                if attempted.swap(true, Ordering::SeqCst) {
                    // A previous attempt may have succeeded without us hearing: look first.
                    if let Some(found) =
                        find_protected(&client, &parent, &prefix, options.mode.is_ephemeral())
                            .await?
                    {
                        return Ok(found);
                    }
                }
                match create_once(client.clone(), full, data, options.clone(), parents).await {
                    Err(Error::NodeExists) => {
                        // Only a previous attempt of ours can have made this exact name.
                        find_protected(&client, &parent, &prefix, options.mode.is_ephemeral())
                            .await?
                            .ok_or(Error::NodeExists)
                    }
                    other => other,
                }
            }
        })
        .await;
    match &result {
        Ok(_) => abandoned.disarm(),
        // Certainly nothing was made. `NotConnected` speaks only for the last attempt: an
        // earlier one may have made the node before its reply was lost.
        Err(e)
            if e.is_invalid_request()
                || (e.is_not_applied() && !attempted.load(Ordering::SeqCst))
                || matches!(
                    e,
                    Error::NoNode
                        | Error::NoAuth
                        | Error::InvalidAcl
                        | Error::NoChildrenForEphemerals
                ) =>
        {
            abandoned.disarm()
        }
        // Anything else may have left a node behind: let the janitor look.
        Err(_) => {}
    }
    result
}

/// Finds the child of `parent` whose name starts with `prefix` (for ephemerals, owned by the
/// current session).
pub(crate) async fn find_protected(
    client: &Client,
    parent: &str,
    prefix: &str,
    ephemeral: bool,
) -> Result<Option<String>> {
    let children = match client.get_children(parent).await {
        Ok(children) => children,
        Err(Error::NoNode) => return Ok(None),
        Err(e) => return Err(e),
    };
    for child in children.iter().filter(|c| c.starts_with(prefix)) {
        let path = join(parent, child);
        if !ephemeral {
            return Ok(Some(path));
        }
        if let Some(stat) = client.exists(&path).await? {
            if stat.ephemeral_owner == client.session_id().0 {
                return Ok(Some(path));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_curators() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(&id[14..15], "4");
        assert_ne!(new_uuid(), id);
    }
}
