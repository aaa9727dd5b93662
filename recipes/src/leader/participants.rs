//! Listing who takes part in an election, read from the nodes' data as Curator does.

use zkwarden::{Error, Result, Warden};

use super::naming::{join, sort_by_sequence};

/// One participant of an election, as its node describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Participant {
    /// The participant id: the node's data read as UTF-8 (invalid bytes replaced). Curator
    /// participants write the id given to `LeaderLatch`/`LeaderSelector`.
    pub id: String,
    /// Whether this participant's node heads the queue. A leader may still be about to
    /// learn that it lost its session; only its own [`Leadership`](super::Leadership) says
    /// whether it may act.
    pub is_leader: bool,
    /// The full path of the participant's node.
    pub node: String,
}

/// The participants queued under `parent` on `marker` nodes, the leader first. Nodes that
/// vanish while being read are left out.
pub(crate) async fn list(warden: &Warden, parent: &str, marker: &str) -> Result<Vec<Participant>> {
    let children = match warden.get_children(parent).await {
        Ok(children) => children,
        Err(Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let nodes: Vec<String> = sort_by_sequence(children, marker)
        .iter()
        .map(|name| join(parent, name))
        .collect();
    // Every node read at once (pipelined), not one round trip each.
    let reads = warden.get_data_batch(&nodes).await;
    let mut participants = Vec::new();
    for (node, read) in nodes.into_iter().zip(reads) {
        match read {
            Ok((data, _)) => participants.push(Participant {
                id: String::from_utf8_lossy(&data).into_owned(),
                is_leader: participants.is_empty(),
                node,
            }),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(participants)
}

/// The first participant that still exists, if any.
pub(crate) async fn leader(
    warden: &Warden,
    parent: &str,
    marker: &str,
) -> Result<Option<Participant>> {
    let children = match warden.get_children(parent).await {
        Ok(children) => children,
        Err(Error::NoNode) => return Ok(None),
        Err(e) => return Err(e),
    };
    for name in sort_by_sequence(children, marker) {
        let node = join(parent, &name);
        match warden.get_data(&node).await {
            Ok((data, _)) => {
                return Ok(Some(Participant {
                    id: String::from_utf8_lossy(&data).into_owned(),
                    is_leader: true,
                    node,
                }));
            }
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}
