//! The blob store suite: one set of checks every backend ([`BlobStore`]) must pass, run on the
//! blob folder and on an S3 bucket (s3s-fs). `open` gives a new client of the same storage each
//! time, as a restarted or second server process would have.

use attune_server::blobs::{AppendError, BlobState, BlobStore};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    attune_core::hex::encode(&Sha256::digest(bytes))
}

/// Distinct bytes per check, so the checks share no upload.
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 31 + u64::from(seed) * 7) as u8)
        .collect()
}

async fn append(
    store: &BlobStore,
    name: &str,
    whole: &[u8],
    range: std::ops::Range<usize>,
) -> Result<BlobState, AppendError> {
    let _lock = store.lock(name).await;
    store
        .append(
            name,
            whole.len() as u64,
            range.start as u64,
            whole[range].to_vec().into(),
        )
        .await
}

/// Runs every check against the storage `open` connects to.
pub async fn run(open: impl Fn() -> BlobStore) {
    appends_at_offsets_and_completes(&open()).await;
    a_wrong_offset_is_refused_with_the_held_offset(&open()).await;
    a_hash_mismatch_discards_the_upload(&open()).await;
    a_complete_blob_is_whole_and_takes_no_more(&open()).await;
    the_state_survives_a_new_client(&open).await;
    two_clients_append_alternately_to_one_upload(&open).await;
    a_whole_upload_left_incomplete_is_finished(&open).await;
    an_unknown_upload_is_empty(&open()).await;
}

async fn appends_at_offsets_and_completes(store: &BlobStore) {
    let whole = bytes(1, 2500);
    let name = sha(&whole);
    assert_eq!(store.state(&name).await.unwrap(), BlobState::Partial(0));
    let held = append(store, &name, &whole, 0..1000).await.unwrap();
    assert_eq!(held, BlobState::Partial(1000));
    assert_eq!(store.state(&name).await.unwrap(), BlobState::Partial(1000));
    assert_eq!(store.read(&name).await.unwrap(), None, "not whole yet");
    let held = append(store, &name, &whole, 1000..2000).await.unwrap();
    assert_eq!(held, BlobState::Partial(2000));
    let done = append(store, &name, &whole, 2000..2500).await.unwrap();
    assert_eq!(done, BlobState::Complete);
    assert_eq!(store.state(&name).await.unwrap(), BlobState::Complete);
    assert_eq!(store.read(&name).await.unwrap(), Some(whole));
}

async fn a_wrong_offset_is_refused_with_the_held_offset(store: &BlobStore) {
    let whole = bytes(2, 3000);
    let name = sha(&whole);
    append(store, &name, &whole, 0..1000).await.unwrap();
    for wrong in [0, 500, 1001, 2000] {
        let refused = append(store, &name, &whole, wrong..wrong + 500).await;
        assert!(
            matches!(refused, Err(AppendError::OffsetMismatch(1000))),
            "offset {wrong}: {refused:?}"
        );
    }
    assert_eq!(store.state(&name).await.unwrap(), BlobState::Partial(1000));
    let done = append(store, &name, &whole, 1000..3000).await.unwrap();
    assert_eq!(done, BlobState::Complete);
    assert_eq!(store.read(&name).await.unwrap(), Some(whole));
}

async fn a_hash_mismatch_discards_the_upload(store: &BlobStore) {
    let right = bytes(3, 1500);
    let name = sha(&right);
    let mut wrong = right.clone();
    wrong[1400] ^= 1;
    append(store, &name, &wrong, 0..1000).await.unwrap();
    let refused = append(store, &name, &wrong, 1000..1500).await;
    assert!(
        matches!(refused, Err(AppendError::HashMismatch)),
        "{refused:?}"
    );
    assert_eq!(store.state(&name).await.unwrap(), BlobState::Partial(0));
    assert_eq!(store.read(&name).await.unwrap(), None);
    // The device starts again from 0 with the right bytes.
    append(store, &name, &right, 0..700).await.unwrap();
    let done = append(store, &name, &right, 700..1500).await.unwrap();
    assert_eq!(done, BlobState::Complete);
    assert_eq!(store.read(&name).await.unwrap(), Some(right));
}

async fn a_complete_blob_is_whole_and_takes_no_more(store: &BlobStore) {
    let whole = bytes(4, 1200);
    let name = sha(&whole);
    let done = append(store, &name, &whole, 0..1200).await.unwrap();
    assert_eq!(done, BlobState::Complete);
    for offset in [0, 600, 1200] {
        let late = append(store, &name, &whole, offset..1200).await;
        assert!(
            matches!(late, Err(AppendError::Complete)),
            "offset {offset}: {late:?}"
        );
    }
    assert_eq!(store.read(&name).await.unwrap(), Some(whole));
}

async fn the_state_survives_a_new_client(open: &impl Fn() -> BlobStore) {
    let whole = bytes(5, 2000);
    let name = sha(&whole);
    {
        let first = open();
        append(&first, &name, &whole, 0..800).await.unwrap();
    }
    let restarted = open();
    assert_eq!(
        restarted.state(&name).await.unwrap(),
        BlobState::Partial(800)
    );
    let refused = append(&restarted, &name, &whole, 0..800).await;
    assert!(
        matches!(refused, Err(AppendError::OffsetMismatch(800))),
        "{refused:?}"
    );
    let done = append(&restarted, &name, &whole, 800..2000).await.unwrap();
    assert_eq!(done, BlobState::Complete);
    assert_eq!(open().state(&name).await.unwrap(), BlobState::Complete);
    assert_eq!(open().read(&name).await.unwrap(), Some(whole));
}

async fn two_clients_append_alternately_to_one_upload(open: &impl Fn() -> BlobStore) {
    let whole = bytes(6, 5000);
    let name = sha(&whole);
    let (a, b) = (open(), open());
    let pieces: Vec<_> = (0..5).map(|i| i * 1000..(i + 1) * 1000).collect();
    for (i, piece) in pieces.into_iter().enumerate() {
        let (this, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let end = piece.end as u64;
        let answered = append(this, &name, &whole, piece.clone()).await.unwrap();
        if end < 5000 {
            assert_eq!(answered, BlobState::Partial(end));
            // The other client sees what this one was acknowledged, and refuses a resend.
            assert_eq!(other.state(&name).await.unwrap(), BlobState::Partial(end));
            let resent = append(other, &name, &whole, piece).await;
            assert!(
                matches!(resent, Err(AppendError::OffsetMismatch(held)) if held == end),
                "{resent:?}"
            );
        } else {
            assert_eq!(answered, BlobState::Complete);
        }
    }
    assert_eq!(a.read(&name).await.unwrap(), Some(whole.clone()));
    assert_eq!(b.read(&name).await.unwrap(), Some(whole));
}

/// All the bytes held, the upload not complete (the final write failed after the last piece:
/// here, the pieces were appended under a longer length, so none of them completed it).
async fn a_whole_upload_left_incomplete_is_finished(open: &impl Fn() -> BlobStore) {
    let whole = bytes(7, 3000);
    let name = sha(&whole);
    let longer = [whole.as_slice(), &[0]].concat();
    for piece in [0..1000, 1000..3000] {
        let held = append(&open(), &name, &longer, piece.clone())
            .await
            .unwrap();
        assert_eq!(held, BlobState::Partial(piece.end as u64));
    }
    // A new client (another process) sees it whole and not complete, and finishes it.
    let other = open();
    assert_eq!(other.state(&name).await.unwrap(), BlobState::Partial(3000));
    let finished = {
        let _lock = other.lock(&name).await;
        other.finish(&name, 3000).await.unwrap()
    };
    assert_eq!(finished, BlobState::Complete);
    assert_eq!(open().state(&name).await.unwrap(), BlobState::Complete);
    assert_eq!(open().read(&name).await.unwrap(), Some(whole.clone()));
    // Finishing again: already complete.
    let again = open().finish(&name, 3000).await;
    assert!(matches!(again, Err(AppendError::Complete)), "{again:?}");

    // Whole bytes that do not match the name are discarded, not kept.
    let wrong = bytes(8, 500);
    let named = sha(&bytes(9, 500));
    append(&open(), &named, &[wrong.as_slice(), &[0]].concat(), 0..500)
        .await
        .unwrap();
    let refused = open().finish(&named, 500).await;
    assert!(
        matches!(refused, Err(AppendError::HashMismatch)),
        "{refused:?}"
    );
    assert_eq!(open().state(&named).await.unwrap(), BlobState::Partial(0));
    assert_eq!(open().read(&named).await.unwrap(), None);
}

async fn an_unknown_upload_is_empty(store: &BlobStore) {
    let name = sha(b"never uploaded");
    assert_eq!(store.state(&name).await.unwrap(), BlobState::Partial(0));
    assert_eq!(store.read(&name).await.unwrap(), None);
}
