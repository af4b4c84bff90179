//! WebAuthn verification.
