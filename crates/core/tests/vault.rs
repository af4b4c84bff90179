//! The vault: passphrase wrapping, sealing bodies, revisions and blob chunks.

use attune_core::{
    Authorship, BlobId, ContentHash, DeviceId, KdfParams, Kind, Links, ParticipantId, ProfileId,
    RecordId, Revision, StoredRevision, Strength, Timestamp, Vault, VaultError, VisitId,
    WrappedVaultKey, passphrase_strength,
};

/// Small Argon2id parameters so the tests run fast; real vaults use `KdfParams::DEFAULT`.
const FAST: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};
const PASSPHRASE: &str = "kettle river lamp";

fn new_vault() -> (Vault, WrappedVaultKey) {
    Vault::create(PASSPHRASE, FAST).expect("vault created")
}

fn record(n: u8) -> RecordId {
    RecordId::from_bytes([n; 16])
}

fn revision() -> Revision {
    Revision::first(
        record(1),
        Kind::InterviewNote,
        Links::default(),
        b"she said the video helped".to_vec(),
        Authorship {
            device: DeviceId::from_bytes([1; 16]),
            author: ProfileId::from_bytes([2; 16]),
            time: Timestamp(1_750_000_000_000),
        },
    )
}

fn is_refused(result: &Result<Vec<u8>, VaultError>) -> bool {
    matches!(
        result,
        Err(VaultError::Tampered | VaultError::Corrupt | VaultError::UnsupportedVersion(_))
    )
}

#[test]
fn a_sealed_body_opens_with_the_same_vault() {
    let (vault, _) = new_vault();
    let sealed = vault
        .seal_body(record(1), 3, Kind::Consent, b"yes to all")
        .expect("sealed");
    assert!(!sealed.windows(10).any(|w| w == b"yes to all"));
    assert_eq!(
        vault.open_body(record(1), 3, Kind::Consent, &sealed),
        Ok(b"yes to all".to_vec())
    );
}

#[test]
fn sealing_twice_gives_different_bytes() {
    let (vault, _) = new_vault();
    let a = vault
        .seal_body(record(1), 1, Kind::Consent, b"same")
        .expect("sealed");
    let b = vault
        .seal_body(record(1), 1, Kind::Consent, b"same")
        .expect("sealed");
    assert_ne!(a, b);
}

#[test]
fn an_empty_body_roundtrips() {
    let (vault, _) = new_vault();
    let sealed = vault
        .seal_body(record(1), 1, Kind::Visit, b"")
        .expect("sealed");
    assert_eq!(
        vault.open_body(record(1), 1, Kind::Visit, &sealed),
        Ok(Vec::new())
    );
}

#[test]
fn flipping_any_byte_of_a_sealed_body_is_detected() {
    let (vault, _) = new_vault();
    let sealed = vault
        .seal_body(record(1), 1, Kind::InterviewNote, b"notes about the visit")
        .expect("sealed");
    for position in 0..sealed.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut altered = sealed.clone();
            altered[position] ^= mask;
            let opened = vault.open_body(record(1), 1, Kind::InterviewNote, &altered);
            assert!(
                is_refused(&opened),
                "byte {position} ^ {mask:#x}: {opened:?}"
            );
        }
    }
}

#[test]
fn truncated_or_extended_sealed_bytes_are_refused() {
    let (vault, _) = new_vault();
    let sealed = vault
        .seal_body(record(1), 1, Kind::InterviewNote, b"notes")
        .expect("sealed");
    for len in 0..sealed.len() {
        let opened = vault.open_body(record(1), 1, Kind::InterviewNote, &sealed[..len]);
        assert!(is_refused(&opened), "length {len}: {opened:?}");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(
        vault.open_body(record(1), 1, Kind::InterviewNote, &longer),
        Err(VaultError::Tampered)
    );
    assert_eq!(
        vault.open_body(record(1), 1, Kind::InterviewNote, &[]),
        Err(VaultError::Corrupt)
    );
    assert_eq!(
        vault.open_body(record(1), 1, Kind::InterviewNote, &sealed[..20]),
        Err(VaultError::Corrupt)
    );
}

#[test]
fn a_body_moved_to_another_record_revision_or_kind_does_not_open() {
    let (vault, _) = new_vault();
    let sealed = vault
        .seal_body(record(1), 2, Kind::InterviewNote, b"notes")
        .expect("sealed");
    for (other_record, rev, kind) in [
        (record(2), 2, Kind::InterviewNote),
        (record(1), 1, Kind::InterviewNote),
        (record(1), 3, Kind::InterviewNote),
        (record(1), 2, Kind::Reflection),
    ] {
        assert_eq!(
            vault.open_body(other_record, rev, kind, &sealed),
            Err(VaultError::Tampered),
            "{other_record} {rev} {kind}"
        );
    }
}

#[test]
fn another_vault_cannot_open_the_data() {
    let (vault, _) = new_vault();
    let (other, _) = new_vault();
    let sealed = vault
        .seal_body(record(1), 1, Kind::Consent, b"x")
        .expect("sealed");
    assert_eq!(
        other.open_body(record(1), 1, Kind::Consent, &sealed),
        Err(VaultError::Tampered)
    );
}

#[test]
fn device_values_are_bound_to_their_name_and_open_only_with_their_vault() {
    let (vault, _) = new_vault();
    let sealed = vault
        .seal_device_value("participant-names", b"Alex Example")
        .expect("sealed");
    assert!(!sealed.windows(4).any(|w| w == b"Alex"));
    assert_eq!(
        vault.open_device_value("participant-names", &sealed),
        Ok(b"Alex Example".to_vec())
    );
    assert_eq!(
        vault.open_device_value("enrolment", &sealed),
        Err(VaultError::Tampered)
    );
    let (other, _) = new_vault();
    assert_eq!(
        other.open_device_value("participant-names", &sealed),
        Err(VaultError::Tampered)
    );
}

#[test]
fn blob_chunks_are_bound_to_their_blob_and_position() {
    let (vault, _) = new_vault();
    let (audio, photo) = (BlobId::from_bytes([1; 16]), BlobId::from_bytes([2; 16]));
    let sealed = vault.seal_chunk(audio, 4, b"opus frames").expect("sealed");
    assert_eq!(
        vault.open_chunk(audio, 4, &sealed),
        Ok(b"opus frames".to_vec())
    );
    assert_eq!(
        vault.open_chunk(audio, 5, &sealed),
        Err(VaultError::Tampered)
    );
    assert_eq!(
        vault.open_chunk(photo, 4, &sealed),
        Err(VaultError::Tampered)
    );
    // A chunk cannot pass for a record body either (different domain).
    let as_body = vault.open_body(RecordId::from_bytes([1; 16]), 4, Kind::Attachment, &sealed);
    assert_eq!(as_body, Err(VaultError::Tampered));
    for position in 0..sealed.len() {
        let mut altered = sealed.clone();
        altered[position] ^= 0x01;
        assert!(
            is_refused(&vault.open_chunk(audio, 4, &altered)),
            "byte {position}"
        );
    }
}

#[test]
fn a_sealed_revision_stores_only_index_fields_in_clear_and_opens_whole() {
    let (vault, _) = new_vault();
    let revision = revision();
    let stored = vault.seal_revision(&revision).expect("sealed");
    assert_eq!(stored.record_id, revision.record_id);
    assert_eq!(stored.rev, 1);
    assert_eq!(stored.hash, revision.hash);
    assert!(!stored.synced);
    assert!(!stored.sealed.windows(5).any(|w| w == b"video"));
    assert_eq!(vault.open_revision(&stored), Ok(revision));
}

#[test]
fn altering_a_clear_index_field_of_a_stored_revision_is_detected() {
    let (vault, _) = new_vault();
    let stored = vault.seal_revision(&revision()).expect("sealed");
    let mutations: [fn(&mut StoredRevision); 8] = [
        |s| s.record_id = record(9),
        |s| s.rev = 2,
        |s| s.parent_hash = Some(ContentHash::sha256(b"x")),
        |s| s.kind = Kind::Reflection,
        |s| s.participant = Some(ParticipantId::from_bytes([7; 16])),
        |s| s.visit = Some(VisitId::from_bytes([7; 16])),
        |s| s.time = Timestamp(0),
        |s| s.hash = ContentHash::sha256(b"x"),
    ];
    for mutate in mutations {
        let mut altered = stored.clone();
        mutate(&mut altered);
        assert_eq!(
            vault.open_revision(&altered),
            Err(VaultError::Tampered),
            "{altered:?}"
        );
    }
    // The sync flag is store state, not content.
    let mut synced = stored.clone();
    synced.synced = true;
    assert!(vault.open_revision(&synced).is_ok());
}

#[test]
fn a_revision_that_does_not_match_its_hash_is_not_sealed() {
    let (vault, _) = new_vault();
    let mut revision = revision();
    revision.body.push(b'!');
    assert_eq!(
        vault.seal_revision(&revision).map(|_| ()),
        Err(VaultError::InvalidRevision)
    );
}

#[test]
fn the_right_passphrase_unlocks_the_same_key() {
    let (vault, wrapped) = new_vault();
    let sealed = vault
        .seal_body(record(1), 1, Kind::Consent, b"kept")
        .expect("sealed");
    let unlocked = Vault::unlock(PASSPHRASE, &wrapped).expect("unlocked");
    assert_eq!(
        unlocked.open_body(record(1), 1, Kind::Consent, &sealed),
        Ok(b"kept".to_vec())
    );
}

#[test]
fn a_wrong_passphrase_is_a_typed_error() {
    let (_, wrapped) = new_vault();
    for wrong in ["kettle river lamb", "", "Kettle river lamp"] {
        assert_eq!(
            Vault::unlock(wrong, &wrapped).map(|_| ()),
            Err(VaultError::WrongPassphrase)
        );
    }
}

#[test]
fn rewrapping_changes_the_passphrase_without_touching_the_data() {
    let (vault, old_wrapped) = new_vault();
    let sealed = vault
        .seal_body(record(1), 1, Kind::Consent, b"old data")
        .expect("sealed");
    let stronger = KdfParams {
        m_kib: 512,
        t: 2,
        p: 1,
    };
    let new_wrapped = vault
        .rewrap("a brand new passphrase", stronger)
        .expect("rewrapped");
    assert_eq!(new_wrapped.kdf, stronger);

    let unlocked = Vault::unlock("a brand new passphrase", &new_wrapped).expect("unlocked");
    assert_eq!(
        unlocked.open_body(record(1), 1, Kind::Consent, &sealed),
        Ok(b"old data".to_vec())
    );
    assert_eq!(
        Vault::unlock(PASSPHRASE, &new_wrapped).map(|_| ()),
        Err(VaultError::WrongPassphrase)
    );
    // The old wrapped key is what the app replaces; it still holds the old passphrase.
    assert!(Vault::unlock(PASSPHRASE, &old_wrapped).is_ok());
}

#[test]
fn lowered_kdf_parameters_or_an_altered_wrapped_key_do_not_unlock() {
    let (_, wrapped) = new_vault();
    let mut cheaper = wrapped.clone();
    cheaper.kdf.m_kib = 128;
    assert_eq!(
        Vault::unlock(PASSPHRASE, &cheaper).map(|_| ()),
        Err(VaultError::WrongPassphrase)
    );
    let mut other_salt = wrapped.clone();
    other_salt.salt[0] ^= 1;
    assert_eq!(
        Vault::unlock(PASSPHRASE, &other_salt).map(|_| ()),
        Err(VaultError::WrongPassphrase)
    );
    let mut flipped = wrapped.clone();
    flipped.ciphertext[0] ^= 1;
    assert_eq!(
        Vault::unlock(PASSPHRASE, &flipped).map(|_| ()),
        Err(VaultError::WrongPassphrase)
    );
    let mut future = wrapped.clone();
    future.version = 2;
    assert_eq!(
        Vault::unlock(PASSPHRASE, &future).map(|_| ()),
        Err(VaultError::UnsupportedVersion(2))
    );
}

#[test]
fn unreasonable_kdf_parameters_are_refused_before_any_work() {
    let (_, wrapped) = new_vault();
    for kdf in [
        KdfParams {
            m_kib: 256,
            t: 0,
            p: 1,
        },
        KdfParams {
            m_kib: 256,
            t: 1,
            p: 0,
        },
        KdfParams {
            m_kib: 4,
            t: 1,
            p: 1,
        },
        KdfParams {
            m_kib: u32::MAX,
            t: 1,
            p: 1,
        },
        KdfParams {
            m_kib: 256,
            t: 1_000_000,
            p: 1,
        },
    ] {
        let crafted = WrappedVaultKey {
            kdf,
            ..wrapped.clone()
        };
        assert!(
            matches!(
                Vault::unlock(PASSPHRASE, &crafted),
                Err(VaultError::InvalidKdfParams(_))
            ),
            "{kdf:?}"
        );
        assert!(matches!(
            Vault::create(PASSPHRASE, kdf),
            Err(VaultError::InvalidKdfParams(_))
        ));
    }
}

#[test]
fn a_short_new_passphrase_is_refused() {
    assert_eq!(
        Vault::create("short", FAST).map(|_| ()),
        Err(VaultError::PassphraseTooShort { minimum: 10 })
    );
    let (vault, _) = new_vault();
    assert_eq!(
        vault.rewrap("123456789", FAST).map(|_| ()),
        Err(VaultError::PassphraseTooShort { minimum: 10 })
    );
    assert_eq!(Vault::minimum_passphrase_len(), 10);
    assert_eq!(passphrase_strength("123456789").strength, Strength::Weak);
}

#[test]
fn the_wrapped_key_survives_json_and_shows_its_parameters() {
    let (_, wrapped) = new_vault();
    let json = serde_json::to_string(&wrapped).expect("json");
    assert!(
        json.contains(r#""kdf":{"m_kib":256,"t":1,"p":1}"#),
        "{json}"
    );
    let back: WrappedVaultKey = serde_json::from_str(&json).expect("parsed");
    assert_eq!(back, wrapped);
    assert!(Vault::unlock(PASSPHRASE, &back).is_ok());
}

#[test]
fn the_default_parameters_unlock() {
    // 64 MiB, 3 passes: slow in debug builds without argon2's opt-level override.
    let (vault, wrapped) = Vault::create(PASSPHRASE, KdfParams::default()).expect("created");
    assert_eq!(
        wrapped.kdf,
        KdfParams {
            m_kib: 65536,
            t: 3,
            p: 1
        }
    );
    let sealed = vault
        .seal_body(record(1), 1, Kind::Consent, b"x")
        .expect("sealed");
    let unlocked = Vault::unlock(PASSPHRASE, &wrapped).expect("unlocked");
    assert_eq!(
        unlocked.open_body(record(1), 1, Kind::Consent, &sealed),
        Ok(b"x".to_vec())
    );
}

#[test]
fn the_vault_never_prints_its_key() {
    let (vault, _) = new_vault();
    assert_eq!(format!("{vault:?}"), "Vault(<unlocked>)");
}
