//! Widgets shared by several features.

pub mod autosave;
pub mod autosave_text;
pub mod recorder;
pub mod save_indicator;
pub mod top_bar;
