//! The fetch transport of the sync engine (filled in when the engine lands).
