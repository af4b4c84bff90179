//! Participants' real names: optional, and kept only on this tablet.
//!
//! A participant record is synced to the research server, so it holds only the pseudonymous
//! code. The names live in one value of the profile's database, sealed by the vault
//! ([`Vault::seal_device_value`](attune_core::Vault::seal_device_value)): a map from
//! participant id to name that no sync ever reads. Clearing a name removes it from the map.

use std::collections::BTreeMap;

use attune_core::ParticipantId;

use crate::records::{load_device_value, save_device_value};
use crate::session::Session;

/// The key of the sealed value in the profile's database (also bound into the sealing).
const NAMES_KEY: &str = "participant_names";

/// The longest name kept (the form allows as much).
pub const MAX_NAME_CHARS: usize = 80;

/// Every participant name on this tablet, by participant.
#[derive(Clone, Default)]
pub struct Names(BTreeMap<ParticipantId, String>);

impl Names {
    /// The participant's name, if one is kept.
    pub fn get(&self, id: ParticipantId) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }
}

/// Reads the names of the open profile.
pub async fn load(session: &Session) -> Result<Names, String> {
    let names = load_device_value(session, NAMES_KEY, "the participants' names").await?;
    Ok(Names(names.unwrap_or_default()))
}

/// Sets a participant's name (`None` or blank: removes it), sealed, in one strict write.
pub async fn set(session: &Session, id: ParticipantId, name: Option<&str>) -> Result<(), String> {
    let name = name
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| name.chars().take(MAX_NAME_CHARS).collect::<String>());
    // Read, change, write: names are changed one at a time, from one form.
    let mut names = load(session).await?;
    match name {
        Some(name) => names.0.insert(id, name),
        None => names.0.remove(&id),
    };
    save_device_value(session, NAMES_KEY, &names.0).await
}
