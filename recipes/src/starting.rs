//! The check every recipe's `start()` makes before it spawns anything (the convention is in
//! the [crate docs](crate#constructing-recipes)).

use zkwarden::{Error, Result, Warden};

/// Whether a recipe keeping its nodes at `path` can start on `warden`: the path is valid (as
/// the prefix of sequential names when `sequential`) and the warden is not closed. Checked
/// up front so that a recipe that could never work says so from `start()`, instead of a
/// background task that gives up silently.
///
/// # Errors
/// [`Error::InvalidPath`] for an invalid path; [`Error::Closed`] for a closed warden.
pub(crate) fn check(warden: &Warden, path: &str, sequential: bool) -> Result<()> {
    zkwarden::client::path::validate_path(path, sequential)?;
    if warden.is_closed() {
        return Err(Error::Closed);
    }
    Ok(())
}
