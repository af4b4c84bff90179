//! A software passkey authenticator for the console tests: a P-256 (ES256) or Ed25519
//! (EdDSA) key that makes what a browser and a real authenticator would send, byte for byte
//! in the same CTAP2 canonical CBOR: a `none` attestation object on registration, and
//! assertions signed over authenticatorData || SHA-256(clientDataJSON) on sign-in, as
//! `PublicKeyCredential.toJSON()` gives them. [`Client`] says what the browser reports, so a
//! test can lie about one thing (origin, challenge, RP id, flags, counter, signature).
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const AT: u8 = 0x40;

/// The key kinds of passkeys the server takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Es256,
    EdDsa,
}

enum Key {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("random");
    bytes
}

/// What the browser and authenticator report; [`Client::honest`] tells the truth.
#[derive(Clone, Debug)]
pub struct Client {
    pub origin: String,
    /// `None`: `webauthn.create` / `webauthn.get` as the ceremony wants.
    pub kind: Option<String>,
    /// `None`: the challenge of the options.
    pub challenge: Option<String>,
    /// `None`: the options' RP id (or the origin's host for sign-in without `rpId`).
    pub rp_id: Option<String>,
    pub flags: u8,
    /// `None`: the authenticator's own counter, one more each signature.
    pub counter: Option<u32>,
    pub break_signature: bool,
}

impl Client {
    pub fn honest(origin: &str) -> Self {
        Client {
            origin: origin.to_owned(),
            kind: None,
            challenge: None,
            rp_id: None,
            flags: UP | UV,
            counter: None,
            break_signature: false,
        }
    }
}

/// One passkey on a software authenticator.
pub struct Authenticator {
    key: Key,
    pub credential_id: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
    pub counter: u32,
}

impl Authenticator {
    pub fn new(alg: Alg) -> Self {
        let key = match alg {
            Alg::Es256 => loop {
                if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random::<32>()) {
                    break Key::P256(key);
                }
            },
            Alg::EdDsa => Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&random::<32>())),
        };
        Authenticator {
            key,
            credential_id: random::<16>().to_vec(),
            user_handle: None,
            counter: 0,
        }
    }

    /// The COSE key, canonical CBOR (keys 1, 3, -1, -2, -3).
    fn cose_key(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.key {
            Key::P256(key) => {
                let point = key.verifying_key().to_sec1_bytes();
                head(&mut out, 5, 5);
                out.extend([0x01, 0x02, 0x03, 0x26, 0x20, 0x01]);
                out.push(0x21);
                bytes(&mut out, &point[1..33]);
                out.push(0x22);
                bytes(&mut out, &point[33..65]);
            }
            Key::Ed25519(key) => {
                head(&mut out, 5, 4);
                out.extend([0x01, 0x01, 0x03, 0x27, 0x20, 0x06]);
                out.push(0x21);
                bytes(&mut out, key.verifying_key().as_bytes());
            }
        }
        out
    }

    fn next_counter(&mut self, client: &Client) -> u32 {
        self.counter += 1;
        client.counter.unwrap_or(self.counter)
    }

    fn client_data(&self, kind: &str, challenge: &str, client: &Client) -> Vec<u8> {
        // Serialised as browsers do: type, challenge, origin, crossOrigin.
        format!(
            r#"{{"type":"{}","challenge":"{}","origin":"{}","crossOrigin":false}}"#,
            client.kind.as_deref().unwrap_or(kind),
            client.challenge.as_deref().unwrap_or(challenge),
            client.origin
        )
        .into_bytes()
    }

    /// `navigator.credentials.create({publicKey: options})`, then `toJSON()`.
    pub fn register(&mut self, options: &Value, client: &Client) -> Value {
        let rp_id = client
            .rp_id
            .clone()
            .unwrap_or_else(|| options["rp"]["id"].as_str().expect("rp.id").to_owned());
        let challenge = options["challenge"].as_str().expect("challenge");
        self.user_handle = Some(
            B64.decode(options["user"]["id"].as_str().expect("user.id"))
                .expect("user.id base64url"),
        );
        let mut auth = Vec::new();
        auth.extend(Sha256::digest(rp_id.as_bytes()));
        auth.push(client.flags | AT);
        auth.extend(self.next_counter(client).to_be_bytes());
        auth.extend([0; 16]); // AAGUID: zero with "none" attestation.
        let id_length = u16::try_from(self.credential_id.len()).expect("id length");
        auth.extend(id_length.to_be_bytes());
        auth.extend(&self.credential_id);
        auth.extend(self.cose_key());
        let mut object = Vec::new();
        head(&mut object, 5, 3);
        text(&mut object, "fmt");
        text(&mut object, "none");
        text(&mut object, "attStmt");
        head(&mut object, 5, 0);
        text(&mut object, "authData");
        bytes(&mut object, &auth);
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", challenge, client)),
                "attestationObject": B64.encode(object),
                "transports": ["internal"],
            },
        })
    }

    /// `navigator.credentials.get({publicKey: options})`, then `toJSON()`.
    pub fn sign_in(&mut self, options: &Value, client: &Client) -> Value {
        let rp_id = client
            .rp_id
            .clone()
            .unwrap_or_else(|| options["rpId"].as_str().expect("rpId").to_owned());
        let challenge = options["challenge"].as_str().expect("challenge");
        let mut auth = Vec::new();
        auth.extend(Sha256::digest(rp_id.as_bytes()));
        auth.push(client.flags);
        auth.extend(self.next_counter(client).to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge, client);
        let mut signed = auth.clone();
        signed.extend(Sha256::digest(&client_data));
        let mut signature = match &self.key {
            Key::P256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(&signed);
                signature.to_der().to_bytes().to_vec()
            }
            Key::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(&signed).to_bytes().to_vec()
            }
        };
        if client.break_signature {
            let last = signature.len() - 2;
            signature[last] ^= 0x01;
        }
        let id = B64.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "authenticatorData": B64.encode(auth),
                "signature": B64.encode(signature),
                "userHandle": self.user_handle.as_ref().map(|handle| B64.encode(handle)),
            },
        })
    }
}

/// A CBOR head: major type and argument, in the shortest form (canonical CBOR).
fn head(out: &mut Vec<u8>, major: u8, n: usize) {
    let major = major << 5;
    match u64::try_from(n).expect("length") {
        n @ 0..=23 => out.push(major | u8::try_from(n).expect("small")),
        n @ 24..=0xff => out.extend([major | 24, u8::try_from(n).expect("u8")]),
        n @ 0x100..=0xffff => {
            out.push(major | 25);
            out.extend(u16::try_from(n).expect("u16").to_be_bytes());
        }
        n => {
            out.push(major | 26);
            out.extend(u32::try_from(n).expect("u32").to_be_bytes());
        }
    }
}

fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    head(out, 2, data.len());
    out.extend(data);
}

fn text(out: &mut Vec<u8>, data: &str) {
    head(out, 3, data.len());
    out.extend(data.as_bytes());
}
