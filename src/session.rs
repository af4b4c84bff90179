//! Profiles, unlocking and locking: the app's one source of truth for "who is using this
//! tablet, and is their vault open".
//!
//! While locked, no decrypted data and no vault key exist in memory: the unlocked [`Session`]
//! is held in one place only, and the screens that show decrypted data are unmounted when it
//! goes (their signals are disposed with them).

use std::rc::Rc;

use attune_core::{
    AutoLock, AutoLockMinutes, DeviceId, KdfParams, Profile, ProfileId, RecordStore, StoreError,
    Timestamp, Vault, VaultError, validate_name,
};
use leptos::prelude::*;

use crate::store::IdbStore;

/// The database listing this tablet's profiles (names and wrapped keys; no participant data).
const DIRECTORY_DB: &str = "attune-profiles";
const PROFILES_KEY: &str = "profiles";
const DEVICE_KEY: &str = "device_id";

/// The current time, from the browser (std's clock panics on wasm32).
pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// An unlocked vault: the profile, its key and its database.
pub struct Session {
    /// Who is working.
    pub profile: Profile,
    /// The vault key; zeroised when the session is dropped.
    pub vault: Vault,
    /// The profile's own database.
    pub store: IdbStore,
    /// The device id of this profile on this tablet: the `device` of every revision it
    /// makes, and the id it enrols with (each profile enrols on its own).
    pub device: DeviceId,
}

/// The list of profiles on this tablet, kept in its own small database.
pub struct Directory {
    db: IdbStore,
}

impl Directory {
    /// Opens the directory database.
    pub async fn open() -> Result<Directory, StoreError> {
        Ok(Directory {
            db: IdbStore::open(DIRECTORY_DB).await?,
        })
    }

    /// Every profile, oldest first.
    pub async fn profiles(&self) -> Result<Vec<Profile>, StoreError> {
        match self.db.get_meta(PROFILES_KEY).await? {
            None => Ok(Vec::new()),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Backend(format!("the profile list is unreadable: {e}"))),
        }
    }

    async fn save_profiles(&self, profiles: &[Profile]) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(profiles)
            .map_err(|e| StoreError::Backend(format!("cannot encode profiles: {e}")))?;
        self.db.put_meta(PROFILES_KEY, bytes).await
    }

    /// Adds or replaces a profile.
    pub async fn save_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        let mut profiles = self.profiles().await?;
        match profiles.iter_mut().find(|p| p.id == profile.id) {
            Some(existing) => *existing = profile.clone(),
            None => profiles.push(profile.clone()),
        }
        self.save_profiles(&profiles).await
    }

    /// This tablet's device id, created on first use.
    pub async fn device_id(&self) -> Result<DeviceId, StoreError> {
        let stored = self.db.get_meta(DEVICE_KEY).await?;
        if let Some(id) = stored
            .as_deref()
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|s| s.parse().ok())
        {
            return Ok(id);
        }
        let id = DeviceId::new(now());
        self.db
            .put_meta(DEVICE_KEY, id.to_string().into_bytes())
            .await?;
        Ok(id)
    }
}

/// The device id of a profile, kept in its own database.
///
/// The server enrols each device id once, so two fieldworkers sharing a tablet need one id
/// each: a new profile gets its own. A profile made before ids were per profile has
/// revisions made with the tablet's shared id, and keeps that id (only the first such
/// profile on a tablet can then enrol; the sync screen says so).
async fn profile_device_id(
    store: &IdbStore,
    dir: &Directory,
    new_profile: bool,
) -> Result<DeviceId, StoreError> {
    let stored = store.get_meta(DEVICE_KEY).await?;
    if let Some(id) = stored
        .as_deref()
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|s| s.parse().ok())
    {
        return Ok(id);
    }
    let id = if new_profile {
        DeviceId::new(now())
    } else {
        dir.device_id().await?
    };
    store
        .put_meta(DEVICE_KEY, id.to_string().into_bytes())
        .await?;
    Ok(id)
}

/// Why a profile could not be created or unlocked, in words for the fieldworker.
pub fn explain_vault_error(error: &VaultError) -> String {
    match error {
        VaultError::WrongPassphrase => {
            "That passphrase is not right. Check it and try again.".into()
        }
        VaultError::PassphraseTooShort { minimum } => {
            format!("Use a passphrase of at least {minimum} characters.")
        }
        other => format!("The vault could not be opened: {other}"),
    }
}

/// What the app shows: the lock screen, or the unlocked app.
#[derive(Clone)]
pub enum LockState {
    /// Reading the profile list.
    Loading,
    /// The lock screen, with the tablet's profiles (none on first run).
    Locked(Vec<Profile>),
    /// A vault is open.
    Unlocked(Rc<Session>),
    /// Storage cannot be used at all (private mode, blocked by the browser).
    Unavailable(String),
}

/// The app-wide session state, provided as context.
#[derive(Clone, Copy)]
pub struct Sessions {
    state: RwSignal<LockState, LocalStorage>,
    auto_lock: StoredValue<Option<AutoLock>, LocalStorage>,
    auto_lock_minutes: RwSignal<AutoLockMinutes>,
}

impl Sessions {
    /// Reads the profile list and provides the session state to the app.
    pub fn provide() -> Sessions {
        let sessions = Sessions {
            state: RwSignal::new_local(LockState::Loading),
            auto_lock: StoredValue::new_local(None),
            auto_lock_minutes: RwSignal::new(AutoLockMinutes::DEFAULT),
        };
        provide_context(sessions);
        leptos::task::spawn_local(async move { sessions.show_lock_screen().await });
        sessions.watch_activity();
        sessions
    }

    /// The state, reactively.
    pub fn state(&self) -> LockState {
        self.state.get()
    }

    /// The open session, if any (not reactive).
    pub fn current(&self) -> Option<Rc<Session>> {
        match self.state.get_untracked() {
            LockState::Unlocked(session) => Some(session),
            _ => None,
        }
    }

    async fn show_lock_screen(&self) {
        let next = match Directory::open().await {
            Ok(dir) => match dir.profiles().await {
                Ok(profiles) => LockState::Locked(profiles),
                Err(e) => LockState::Unavailable(e.to_string()),
            },
            Err(e) => LockState::Unavailable(format!(
                "This browser does not let Attune store data ({e}). Private browsing blocks it."
            )),
        };
        self.state.set(next);
    }

    /// Creates a profile with its own vault, and opens it.
    pub async fn create_profile(&self, name: &str, passphrase: &str) -> Result<(), String> {
        let dir = Directory::open().await.map_err(|e| e.to_string())?;
        let existing = dir.profiles().await.map_err(|e| e.to_string())?;
        let name = validate_name(name, &existing).map_err(|e| e.to_string())?;
        let (vault, wrapped_key) =
            Vault::create(passphrase, KdfParams::DEFAULT).map_err(|e| explain_vault_error(&e))?;
        let profile = Profile {
            id: ProfileId::new(now()),
            name,
            wrapped_key,
            created: now(),
            auto_lock: AutoLockMinutes::DEFAULT,
            child_pin: None,
        };
        dir.save_profile(&profile)
            .await
            .map_err(|e| e.to_string())?;
        self.open(dir, profile, vault, true).await
    }

    /// Unlocks a profile with its passphrase.
    pub async fn unlock(&self, profile: &Profile, passphrase: &str) -> Result<(), String> {
        let vault =
            Vault::unlock(passphrase, &profile.wrapped_key).map_err(|e| explain_vault_error(&e))?;
        let dir = Directory::open().await.map_err(|e| e.to_string())?;
        self.open(dir, profile.clone(), vault, false).await
    }

    async fn open(
        &self,
        dir: Directory,
        profile: Profile,
        vault: Vault,
        new_profile: bool,
    ) -> Result<(), String> {
        let store = IdbStore::open(&profile.database_name())
            .await
            .map_err(|e| e.to_string())?;
        let device = profile_device_id(&store, &dir, new_profile)
            .await
            .map_err(|e| e.to_string())?;
        // Reading the outbox proves the database answers before we say "unlocked".
        store.count_unsynced().await.map_err(|e| e.to_string())?;
        let session = Session {
            profile,
            vault,
            store,
            device,
        };
        // Before any screen opens: the study protocol this profile received by sync.
        if let Err(message) = crate::protocol::load(&session).await {
            leptos::logging::warn!("using the built-in study protocol: {message}");
        }
        self.auto_lock
            .set_value(Some(AutoLock::new(session.profile.auto_lock, now())));
        self.auto_lock_minutes.set(session.profile.auto_lock);
        self.state.set(LockState::Unlocked(Rc::new(session)));
        Ok(())
    }

    /// The open profile as saved now (not the session's copy: settings such as the child-mode
    /// PIN may have changed since unlocking), and the directory holding it.
    async fn saved_profile(&self) -> Result<(Directory, Profile), String> {
        let session = self.current().ok_or("Locked")?;
        let dir = Directory::open().await.map_err(|e| e.to_string())?;
        let profile = dir
            .profiles()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|p| p.id == session.profile.id)
            .unwrap_or_else(|| session.profile.clone());
        Ok((dir, profile))
    }

    /// Changes the auto-lock time of the open profile and keeps it.
    pub async fn set_auto_lock(&self, minutes: AutoLockMinutes) -> Result<(), String> {
        let (dir, mut profile) = self.saved_profile().await?;
        profile.auto_lock = minutes;
        dir.save_profile(&profile)
            .await
            .map_err(|e| e.to_string())?;
        self.auto_lock
            .set_value(Some(AutoLock::new(minutes, now())));
        self.auto_lock_minutes.set(minutes);
        Ok(())
    }

    /// Sets (or with `None` removes) the PIN for leaving child mode, kept as a hash.
    pub async fn set_child_pin(&self, pin: Option<&str>) -> Result<(), String> {
        let (dir, mut profile) = self.saved_profile().await?;
        profile.child_pin = match pin {
            Some(pin) => {
                attune_core::pin::check_pin(pin)?;
                Some(attune_core::pin::ChildPin::new(pin).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        dir.save_profile(&profile).await.map_err(|e| e.to_string())
    }

    /// The open profile's child-mode PIN as saved now (`None`: none set).
    pub async fn child_pin(&self) -> Result<Option<attune_core::pin::ChildPin>, String> {
        Ok(self.saved_profile().await?.1.child_pin)
    }

    /// The open profile's auto-lock time, reactively.
    pub fn auto_lock_minutes(&self) -> AutoLockMinutes {
        self.auto_lock_minutes.get()
    }

    /// Counts as activity for auto-lock (a recording in progress, for example).
    pub fn activity(&self) {
        self.auto_lock.update_value(|lock| {
            if let Some(lock) = lock {
                lock.activity(now());
            }
        });
    }

    /// Locks: drops the vault key and every decrypted screen, and shows the lock screen.
    pub fn lock(&self) {
        self.auto_lock.set_value(None);
        self.state.set(LockState::Loading);
        crate::protocol::reset();
        let sessions = *self;
        leptos::task::spawn_local(async move { sessions.show_lock_screen().await });
    }

    /// Counts touches and key presses as activity, and locks when the profile's time has
    /// passed without any, including after the tablet slept (checked on wake).
    fn watch_activity(&self) {
        let sessions = *self;
        let touch = move || sessions.activity();
        let _ = window_event_listener(leptos::ev::pointerdown, move |_| touch());
        let _ = window_event_listener(leptos::ev::keydown, move |_| touch());
        let check = move || {
            let due = sessions
                .auto_lock
                .with_value(|l| l.is_some_and(|l| l.should_lock(now())));
            if due {
                sessions.lock();
            }
        };
        let _ = window_event_listener(leptos::ev::visibilitychange, move |_| check());
        let _ = window_event_listener(leptos::ev::focus, move |_| check());
        let _ = set_interval_with_handle(check, std::time::Duration::from_secs(10));
    }
}

/// The session state provided by [`Sessions::provide`].
pub fn use_sessions() -> Sessions {
    expect_context::<Sessions>()
}
