//! A minimal CBOR (RFC 8949) reader for WebAuthn.
