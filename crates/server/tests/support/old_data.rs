//! Sealed, signed participant-record envelopes made as an old tablet made them, for the
//! tests of databases from before a migration (SQLite and PostgreSQL).

use attune_core::{
    Authorship, DeviceId, DeviceKey, Envelope, Kind, Links, ProfileId, RecordId, Revision,
    StudyKeyPair, Timestamp, seal_envelope,
};

pub struct OldDevice {
    pub id: DeviceId,
    pub key: DeviceKey,
}

impl OldDevice {
    pub fn new() -> Self {
        Self {
            id: DeviceId::new(Timestamp(1)),
            key: DeviceKey::generate().unwrap(),
        }
    }

    pub fn participant(&self, body: &str) -> Revision {
        Revision::first(
            RecordId::new(Timestamp(1)),
            Kind::Participant,
            Links::default(),
            body.as_bytes().to_vec(),
            Authorship {
                device: self.id,
                author: ProfileId::new(Timestamp(1)),
                time: Timestamp(2),
            },
        )
    }

    pub fn seal(&self, revision: &Revision, code: &str) -> Envelope {
        let study = StudyKeyPair::generate();
        seal_envelope(revision, Some(code.into()), &study.public_key(), &self.key).unwrap()
    }
}
