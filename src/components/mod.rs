//! Widgets shared by several features.

pub mod top_bar;
