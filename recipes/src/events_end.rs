//! Event channels that end with the task that feeds them.
//!
//! A recipe's background task holds the only strong sender of its event channel; the handle
//! keeps a weak one to subscribe with. When the task stops (its warden closed, or the handle
//! was dropped), every subscriber reads what is still buffered and then the end of the stream,
//! instead of waiting for events that can no longer come.

use tokio::sync::broadcast;

/// A subscription to `events` from now on: one that ends at once when the task feeding
/// `events` has stopped.
pub(crate) fn subscribe<T: Clone>(events: &broadcast::WeakSender<T>) -> broadcast::Receiver<T> {
    match events.upgrade() {
        Some(sender) => sender.subscribe(),
        None => {
            // The sender goes at once: the receiver reports the channel closed.
            let (_, receiver) = broadcast::channel(1);
            receiver
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_ends_after_what_was_buffered_once_the_sender_is_gone() {
        let (sender, _) = broadcast::channel(4);
        let weak = sender.downgrade();
        let mut receiver = subscribe(&weak);
        sender.send(1).unwrap();
        drop(sender);
        assert_eq!(receiver.try_recv(), Ok(1));
        assert_eq!(
            receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        );
        let mut late = subscribe(&weak);
        assert_eq!(late.try_recv(), Err(broadcast::error::TryRecvError::Closed));
    }
}
