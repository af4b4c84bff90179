//! One folder per screen family.

pub mod child;
pub mod fieldwork;
pub mod home;
pub mod lock;
pub mod notebook;
pub mod settings;
pub mod sync;
