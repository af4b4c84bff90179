//! Participants' real names: optional, and kept only on this tablet.
//!
//! A participant record is synced to the research server, so it holds only the pseudonymous
//! code. The names live in one value of the profile's database, sealed by the vault
//! ([`Vault::seal_device_value`](attune_core::Vault::seal_device_value)): a map from
//! participant id to name that no sync ever reads. Clearing a name removes it from the map.

use std::collections::BTreeMap;

use attune_core::ParticipantId;

use crate::records::explain;
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
    let Some(sealed) = session
        .store
        .get_meta(NAMES_KEY)
        .await
        .map_err(|e| explain(&e))?
    else {
        return Ok(Names::default());
    };
    let bytes = session
        .vault
        .open_device_value(NAMES_KEY, &sealed)
        .map_err(|e| format!("the participants' names could not be opened: {e}"))?;
    let map = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the participants' names could not be read: {e}"))?;
    Ok(Names(map))
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
    let bytes = serde_json::to_vec(&names.0).map_err(|e| e.to_string())?;
    let sealed = session
        .vault
        .seal_device_value(NAMES_KEY, &bytes)
        .map_err(|e| e.to_string())?;
    session
        .store
        .put_meta(NAMES_KEY, sealed)
        .await
        .map_err(|e| explain(&e))
}
