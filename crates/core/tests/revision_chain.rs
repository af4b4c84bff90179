//! Revision chains: building, hashing, encoding and verifying, including property tests.

use attune_core::{
    Authorship, ChainError, ContentHash, DecodeError, DeviceId, Kind, Links, ParticipantId,
    ProfileId, ProtocolRef, RecordId, Revision, Timestamp, VisitId, latest, verify_chain,
};
use proptest::prelude::*;

const T0: i64 = 1_750_000_000_000;

fn by(offset: i64) -> Authorship {
    Authorship {
        device: DeviceId::from_bytes([1; 16]),
        author: ProfileId::from_bytes([2; 16]),
        time: Timestamp(T0 + offset),
    }
}

fn links() -> Links {
    Links {
        participant: Some(ParticipantId::from_bytes([3; 16])),
        visit: Some(VisitId::from_bytes([4; 16])),
        protocol: Some(ProtocolRef {
            id: "vig-evaluation".into(),
            version: 2,
        }),
    }
}

fn chain(bodies: &[Vec<u8>]) -> Vec<Revision> {
    let record = RecordId::from_bytes([5; 16]);
    let mut revisions = vec![Revision::first(
        record,
        Kind::InterviewNote,
        links(),
        bodies[0].clone(),
        by(0),
    )];
    for (offset, body) in (1..).zip(&bodies[1..]) {
        let previous = revisions.last().expect("not empty");
        revisions.push(previous.next(body.clone(), by(offset)).expect("in range"));
    }
    revisions
}

fn three() -> Vec<Revision> {
    chain(&[b"one".to_vec(), b"two".to_vec(), b"three".to_vec()])
}

#[test]
fn a_first_revision_is_numbered_one_with_no_parent_and_a_valid_hash() {
    let first = &three()[0];
    assert_eq!(first.rev, 1);
    assert_eq!(first.parent_hash, None);
    assert!(first.hash_is_valid());
    assert_eq!(first.links(), links());
    assert_eq!(first.authorship(), by(0));
}

#[test]
fn editing_keeps_the_links_and_points_at_the_parent() {
    let revisions = three();
    assert_eq!(revisions[1].rev, 2);
    assert_eq!(revisions[1].parent_hash, Some(revisions[0].hash));
    assert_eq!(revisions[2].parent_hash, Some(revisions[1].hash));
    assert_eq!(revisions[2].links(), links());
    assert_eq!(revisions[2].kind, Kind::InterviewNote);
    assert_eq!(latest(&revisions).map(|r| r.rev), Some(3));
    assert_eq!(latest(&[]), None);
}

#[test]
fn every_field_changes_the_hash() {
    let base = three().remove(1);
    let mutations: [fn(&mut Revision); 12] = [
        |r| r.record_id = RecordId::from_bytes([9; 16]),
        |r| r.rev += 1,
        |r| r.parent_hash = None,
        |r| r.kind = Kind::Reflection,
        |r| r.participant = None,
        |r| r.visit = None,
        |r| r.protocol = None,
        |r| r.protocol.as_mut().expect("set").version += 1,
        |r| r.body.push(b'!'),
        |r| r.device = DeviceId::from_bytes([9; 16]),
        |r| r.author = ProfileId::from_bytes([9; 16]),
        |r| r.time = Timestamp(r.time.0 + 1),
    ];
    for mutate in mutations {
        let mut changed = base.clone();
        mutate(&mut changed);
        assert_ne!(changed.compute_hash(), base.hash, "{changed:?}");
        assert!(!changed.hash_is_valid());
    }
}

#[test]
fn the_hash_is_stable_across_versions() {
    // The encoding is a data format: if this hash changes, every stored revision stops
    // verifying. The expected value was computed independently (Python, from the table in
    // the `record` module documentation).
    let revision = Revision::first(
        RecordId::from_bytes([5; 16]),
        Kind::Consent,
        links(),
        br#"{"agree":true}"#.to_vec(),
        by(0),
    );
    assert_eq!(
        revision.hash.to_hex(),
        "c91971201103f3ad2c40650d90ee6e8386c0df847a8566b90f6c0e74cde87f08"
    );
}

#[test]
fn a_revision_roundtrips_through_its_canonical_bytes() {
    for revision in three() {
        assert_eq!(Revision::from_bytes(&revision.to_bytes()), Ok(revision));
    }
    let bare = Revision::first(
        RecordId::from_bytes([5; 16]),
        Kind::Visit,
        Links::default(),
        Vec::new(),
        by(-T0 - 1),
    );
    assert_eq!(Revision::from_bytes(&bare.to_bytes()), Ok(bare));
}

#[test]
fn altered_or_truncated_bytes_do_not_decode() {
    let revision = &three()[1];
    let bytes = revision.to_bytes();
    for len in 0..bytes.len() {
        assert!(Revision::from_bytes(&bytes[..len]).is_err(), "prefix {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Revision::from_bytes(&longer),
        Err(DecodeError::TrailingBytes)
    );
    let mut altered = bytes.clone();
    let last_body_byte = bytes.len() - 33;
    altered[last_body_byte] ^= 1;
    assert_eq!(
        Revision::from_bytes(&altered),
        Err(DecodeError::HashMismatch)
    );
}

#[test]
fn the_body_is_never_printed() {
    let revision = Revision::first(
        RecordId::from_bytes([5; 16]),
        Kind::InterviewNote,
        links(),
        b"my son was upset".to_vec(),
        by(0),
    );
    let printed = format!("{revision:?}");
    assert!(!printed.contains("upset"));
    assert!(printed.contains("<16 bytes>"));
}

#[test]
fn the_body_reads_back_as_json() {
    let revision = Revision::first(
        RecordId::from_bytes([5; 16]),
        Kind::Consent,
        links(),
        serde_json::to_vec(&serde_json::json!({"items": [true, false]})).expect("json"),
        by(0),
    );
    let body: serde_json::Value = revision.body_json().expect("valid json");
    assert_eq!(body["items"][1], false);
}

#[test]
fn an_empty_chain_or_a_chain_without_revision_one_is_refused() {
    assert_eq!(verify_chain(&[]), Err(ChainError::Empty));
    let revisions = three();
    assert_eq!(
        verify_chain(&revisions[1..]),
        Err(ChainError::OutOfOrder {
            position: 0,
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn revisions_of_another_record_or_kind_break_the_chain() {
    let mut revisions = three();
    let other = chain(&[b"x".to_vec(), b"y".to_vec()]);
    let mut foreign = other[1].clone();
    foreign.record_id = RecordId::from_bytes([6; 16]);
    foreign.parent_hash = Some(revisions[0].hash);
    foreign.hash = foreign.compute_hash();
    revisions[1] = foreign;
    assert_eq!(
        verify_chain(&revisions),
        Err(ChainError::OtherRecord { rev: 2 })
    );

    let mut revisions = three();
    revisions[2].kind = Kind::Reflection;
    revisions[2].hash = revisions[2].compute_hash();
    assert_eq!(
        verify_chain(&revisions),
        Err(ChainError::KindChanged { rev: 3 })
    );
}

#[test]
fn the_last_possible_revision_cannot_be_followed() {
    let mut last = three().remove(0);
    last.rev = u32::MAX;
    assert_eq!(last.next(Vec::new(), by(1)), Err(ChainError::RevisionLimit));
}

fn bodies() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..12)
}

proptest! {
    #[test]
    fn chains_built_by_editing_always_verify(bodies in bodies()) {
        let revisions = chain(&bodies);
        prop_assert_eq!(verify_chain(&revisions), Ok(()));
        prop_assert_eq!(latest(&revisions).map(|r| r.rev), Some(revisions.len() as u32));
        for revision in &revisions {
            let decoded = Revision::from_bytes(&revision.to_bytes());
            prop_assert_eq!(decoded.as_ref(), Ok(revision));
        }
    }

    #[test]
    fn any_reordering_is_detected(bodies in bodies(), seed in any::<u64>()) {
        prop_assume!(bodies.len() >= 2);
        let revisions = chain(&bodies);
        let mut shuffled = revisions.clone();
        // A permutation that is not the identity: rotate a random window by one.
        let len = shuffled.len();
        let start = (seed as usize) % (len - 1);
        let end = start + 2 + (seed as usize / len) % (len - start - 1);
        shuffled[start..end].rotate_left(1);
        prop_assert_ne!(&shuffled, &revisions);
        prop_assert!(verify_chain(&shuffled).is_err());
    }

    #[test]
    fn a_dropped_revision_is_detected(bodies in bodies(), index in any::<prop::sample::Index>()) {
        prop_assume!(bodies.len() >= 2);
        let mut revisions = chain(&bodies);
        // Dropping the last one leaves a valid, shorter chain; any other gap is detected.
        let dropped = index.index(revisions.len() - 1);
        revisions.remove(dropped);
        prop_assert!(verify_chain(&revisions).is_err());
    }

    #[test]
    fn an_altered_parent_hash_is_detected(
        bodies in bodies(),
        index in any::<prop::sample::Index>(),
        byte in 0usize..32,
        bit in 0u8..8,
    ) {
        let mut revisions = chain(&bodies);
        let target = index.index(revisions.len());
        let revision = &mut revisions[target];
        let mut parent = revision.parent_hash.map_or([0; 32], |hash| *hash.as_bytes());
        parent[byte] ^= 1 << bit;
        revision.parent_hash = Some(ContentHash::from_bytes(parent));
        // Whether or not the hash is recomputed, the chain no longer links up.
        prop_assert!(verify_chain(&revisions).is_err());
        revisions[target].hash = revisions[target].compute_hash();
        prop_assert!(verify_chain(&revisions).is_err());
    }

    #[test]
    fn an_altered_body_is_detected(
        bodies in bodies(),
        index in any::<prop::sample::Index>(),
        change in prop_oneof![
            (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(at, mask)| (Some(at), mask)),
            Just((None, 0u8)),
        ],
    ) {
        let mut revisions = chain(&bodies);
        let target = index.index(revisions.len());
        let body = &mut revisions[target].body;
        match change {
            (Some(at), mask) if !body.is_empty() => {
                let at = at.index(body.len());
                body[at] ^= mask;
            }
            // Empty body, or the "append a byte" case.
            _ => body.push(0),
        }
        prop_assert_eq!(
            verify_chain(&revisions),
            Err(ChainError::HashMismatch { rev: revisions[target].rev })
        );
    }
}
