//! `webauthn.rs` against ceremonies made by real browsers and authenticators: the vectors of
//! py_webauthn's test suite (github.com/duo-labs/py_webauthn, BSD-3-Clause), origin
//! `http://localhost:5000`, RP id `localhost`.

use serde_json::{Value, json};

use super::{B64URL, CredentialKey, EDDSA, ES256, Expected, cose_key};
use super::{verify_assertion, verify_registration};
use crate::team::cbor;
use base64::Engine as _;

const ORIGIN: &str = "http://localhost:5000";

fn expected(challenge: &str) -> Expected<'_> {
    Expected {
        challenge,
        origin: ORIGIN,
        rp_id: "localhost",
        user_verification: false,
    }
}

fn key(cose: &str) -> CredentialKey {
    let bytes = B64URL.decode(cose).unwrap();
    cose_key(&cbor::decode(&bytes).unwrap()).unwrap()
}

fn assertion(id: &str, auth: &str, client: &str, signature: &str, handle: Option<&str>) -> Value {
    json!({
        "id": id, "rawId": id, "type": "public-key", "clientExtensionResults": {},
        "response": {
            "authenticatorData": auth, "clientDataJSON": client, "signature": signature,
            "userHandle": handle,
        },
    })
}

#[test]
fn a_none_attestation_from_a_browser_registers_its_es256_key() {
    let id =
        "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w";
    let credential = json!({
        "id": id, "rawId": id, "type": "public-key", "clientExtensionResults": {},
        "response": {
            "attestationObject": "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjESZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2NFAAAAFwAAAAAAAAAAAAAAAAAAAAAAQPctcQPE5oNRRJk_nO_371mf7qE7qIodzr0eOf6ACvnMB1oQG165dqutoi1U44shGezu5_gkTjmOPeJO0N8a7P-lAQIDJiABIVggSFbUJF-42Ug3pdM8rDRFu_N5oiVEysPDB6n66r_7dZAiWCDUVnB39FlGypL-qAoIO9xWHtJygo2jfDmHl-_eKFRLDA",
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiVHdON240V1R5R0tMYzRaWS1xR3NGcUtuSE00bmdscXN5VjBJQ0psTjJUTzlYaVJ5RnRya2FEd1V2c3FsLWdrTEpYUDZmbkYxTWxyWjUzTW00UjdDdnciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",
        },
    });
    let challenge =
        "TwN7n4WTyGKLc4ZY-qGsFqKnHM4nglqsyV0ICJlN2TO9XiRyFtrkaDwUvsql-gkLJXP6fnF1MlrZ53Mm4R7Cvw";
    let registered = verify_registration(&credential, &expected(challenge)).unwrap();
    assert_eq!(registered.id, B64URL.decode(id).unwrap());
    assert_eq!(registered.sign_count, 23);
    assert_eq!(
        registered.key,
        key(
            "pQECAyYgASFYIEhW1CRfuNlIN6XTPKw0RbvzeaIlRMrDwwep-uq_-3WQIlgg1FZwd_RZRsqS_qgKCDvcVh7ScoKNo3w5h5fv3ihUSww"
        )
    );
    assert_eq!(registered.key.algorithm, ES256);
    // Another origin, RP id or challenge is refused.
    let wrong = Expected {
        origin: "https://localhost:5000",
        ..expected(challenge)
    };
    assert!(
        verify_registration(&credential, &wrong)
            .unwrap_err()
            .0
            .contains("origin")
    );
    let wrong = Expected {
        rp_id: "example.org",
        ..expected(challenge)
    };
    assert!(verify_registration(&credential, &wrong).is_err());
    assert!(verify_registration(&credential, &expected("AAAA")).is_err());
}

#[test]
fn assertions_from_real_authenticators_verify_es256_and_eddsa() {
    let es256 = assertion(
        "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
        "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAATg",
        "eyJjaGFsbGVuZ2UiOiJ4aTMwR1BHQUZZUnhWRHBZMXNNMTBEYUx6VlFHNjZudi1fN1JVYXpIMHZJMll2RzhMWWdERW52TjVmWlpOVnV2RUR1TWk5dGUzVkxxYjQyTjBma0xHQSIsImNsaWVudEV4dGVuc2lvbnMiOnt9LCJoYXNoQWxnb3JpdGhtIjoiU0hBLTI1NiIsIm9yaWdpbiI6Imh0dHA6Ly9sb2NhbGhvc3Q6NTAwMCIsInR5cGUiOiJ3ZWJhdXRobi5nZXQifQ",
        "MEUCIGisVZOBapCWbnJJvjelIzwpixxIwkjCCb5aCHafQu68AiEA88v-2pJNNApPFwAKFiNuf82-2hBxYW5kGwVweeoxCwo",
        None,
    );
    let challenge =
        "xi30GPGAFYRxVDpY1sM10DaLzVQG66nv-_7RUazH0vI2YvG8LYgDEnvN5fZZNVuvEDuMi9te3VLqb42N0fkLGA";
    let es256_key = key(
        "pQECAyYgASFYIIeDTe-gN8A-zQclHoRnGFWN8ehM1b7yAsa8I8KIvmplIlgg4nFGT5px8o6gpPZZhO01wdy9crDSA_Ngtkx0vGpvPHI",
    );
    let checked = verify_assertion(&es256, &expected(challenge), &es256_key).unwrap();
    assert_eq!(checked.sign_count, 78);
    // The same assertion with another key, or with user verification required, is refused.
    let other_key = key(
        "pQECAyYgASFYIOQ5TKpXJR2cV76Wgfge9BkLkEhLxVjhFjM1jKHYOcqpIlggaiNy1blt3OU8Hsmg041HUYP7eajgL7fk3nSuTEjYCwU",
    );
    let refused = verify_assertion(&es256, &expected(challenge), &other_key).unwrap_err();
    assert!(refused.0.contains("signature"), "{refused}");
    let uv = Expected {
        user_verification: true,
        ..expected(challenge)
    };
    assert!(
        verify_assertion(&es256, &uv, &es256_key)
            .unwrap_err()
            .0
            .contains("verify the user")
    );

    let eddsa = assertion(
        "fq9Nj0nS24B5y6Pkw_h3-9GEAEA3-0LBPxE2zvTdLjDqtSeCSNYFe9VMRueSpAZxT3YDc6L1lWXdQNwI-sVNYrefEcRR1Nsb_0jpHE955WEtFud2xxZg3MvoLMxHLet63i5tajd1fHtP7I-00D6cehM8ZWlLp2T3s9lfZgVIFcA",
        "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAABw",
        "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiZVo0ZWVBM080ank1Rkl6cURhU0o2SkROR3UwYkJjNXpJMURqUV9rTHNvMVdOcWtHNms1bUNZZjFkdFFoVlVpQldaV2xaa3pSNU1GZWVXQ3BKUlVOWHciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",
        "RRWV8mYDRvK7YdQgdtZD4pJ2dh1D_IWZ_D6jsZo6FHJBoenbj0CVT5nA20vUzlRhN4R6dOEUHmUwP1F8eRBhBg",
        None,
    );
    let eddsa_key = key("pAEBAycgBiFYIMz6_SUFLiDid2Yhlq0YboyJ-CDrIrNpkPUGmJp4D3Dp");
    assert_eq!(eddsa_key.algorithm, EDDSA);
    let challenge =
        "eZ4eeA3O4jy5FIzqDaSJ6JDNGu0bBc5zI1DjQ_kLso1WNqkG6k5mCYf1dtQhVUiBWZWlZkzR5MFeeWCpJRUNXw";
    let checked = verify_assertion(&eddsa, &expected(challenge), &eddsa_key).unwrap();
    assert_eq!(checked.sign_count, 7);

    // With a user handle (a discoverable passkey) and a large counter.
    let handled = assertion(
        "AXmOjWWZH67pgl5_gAbKVBqoL2dyHHGEWZLspIsCwULG0hZ3HyuGgvkaRcSOLq9W72XtegcvFYXIdlafrilbtVnx2Q14gNbfSQQP2sgNEAif4MjHtGpeVB0BfFawCs85Y3XY_j4sxthVnyTY_Q",
        "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFYN-Mog",
        "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiNnpyU1JYOEN4d1BTWEVBclh5WEwydHBiNnJCN1N0YXIwckxWSWo1cnZmNzRtWktGNWlyNzE1WG1nejV0QV9HeUhleE40b1hmclE4ODlBclZDTGFSZEEiLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",
        "MEUCIQDBqeI274exaKWGQz37g7yo1--TVcZSCcYVftZ1AnEJkQIgNw-nlx-_U9rVfFfER8oX6BlYZTuPFyGaL_wCDY23s0E",
        Some("TldNMFlqYzNOVFF0WW1NNE5DMDBaakprTFRrME9EVXROR05rTnpreVkyTTROVEUz"),
    );
    let challenge =
        "6zrSRX8CxwPSXEArXyXL2tpb6rB7Star0rLVIj5rvf74mZKF5ir715Xmgz5tA_GyHexN4oXfrQ889ArVCLaRdA";
    let handled_key = key(
        "pQECAyYgASFYIFm1Py-FzzFOuwXbRbTr95SiDxuB1BkZsEEJxFhquzqkIlggL1U1T713Jo_2muzhXvpbwRNdoAs8CYK6PflvY1MBdCI",
    );
    let checked = verify_assertion(&handled, &expected(challenge), &handled_key).unwrap();
    assert_eq!(checked.sign_count, 1_625_263_266);
    let claim = super::assertion_claim(&handled).unwrap();
    assert_eq!(
        claim.user_handle.as_deref(),
        Some("TldNMFlqYzNOVFF0WW1NNE5DMDBaakprTFRrME9EVXROR05rTnpreVkyTTROVEUz")
    );
}

#[test]
fn keys_of_other_algorithms_or_off_the_curve_are_refused() {
    // An RS256 key (from the same suite).
    let rsa = B64URL
        .decode("pAEDAzkBACBZAQDfV20epzvQP-HtcdDpX-cGzdOxy73WQEvsU7Dnr9UWJophEfpngouvgnRLXaEUn_d8HGkp_HIx8rrpkx4BVs6X_B6ZjhLlezjIdJbLbVeb92BaEsmNn1HW2N9Xj2QM8cH-yx28_vCjf82ahQ9gyAr552Bn96G22n8jqFRQKdVpO-f-bvpvaP3IQ9F5LCX7CUaxptgbog1SFO6FI6ob5SlVVB00lVXsaYg8cIDZxCkkENkGiFPgwEaZ7995SCbiyCpUJbMqToLMgojPkAhWeyktu7TlK6UBWdJMHc3FPAIs0lH_2_2hKS-mGI1uZAFVAfW1X-mzKL0czUm2P1UlUox7IUMBAAE")
        .unwrap();
    let refused = cose_key(&cbor::decode(&rsa).unwrap()).unwrap_err();
    assert!(refused.0.contains("ES256"), "{refused}");
    // An ES256 key whose point is not on P-256 (y changed).
    let mut point = B64URL
        .decode("pQECAyYgASFYIIeDTe-gN8A-zQclHoRnGFWN8ehM1b7yAsa8I8KIvmplIlgg4nFGT5px8o6gpPZZhO01wdy9crDSA_Ngtkx0vGpvPHI")
        .unwrap();
    let last = point.len() - 1;
    point[last] ^= 1;
    let refused = cose_key(&cbor::decode(&point).unwrap()).unwrap_err();
    assert!(refused.0.contains("not a point"), "{refused}");
}

#[test]
fn every_corruption_of_a_real_attestation_is_an_error_never_a_panic() {
    let object = B64URL
        .decode("o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjESZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2NFAAAAFwAAAAAAAAAAAAAAAAAAAAAAQPctcQPE5oNRRJk_nO_371mf7qE7qIodzr0eOf6ACvnMB1oQG165dqutoi1U44shGezu5_gkTjmOPeJO0N8a7P-lAQIDJiABIVggSFbUJF-42Ug3pdM8rDRFu_N5oiVEysPDB6n66r_7dZAiWCDUVnB39FlGypL-qAoIO9xWHtJygo2jfDmHl-_eKFRLDA")
        .unwrap();
    let client = "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiVHdON240V1R5R0tMYzRaWS1xR3NGcUtuSE00bmdscXN5VjBJQ0psTjJUTzlYaVJ5RnRya2FEd1V2c3FsLWdrTEpYUDZmbkYxTWxyWjUzTW00UjdDdnciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9";
    let challenge =
        "TwN7n4WTyGKLc4ZY-qGsFqKnHM4nglqsyV0ICJlN2TO9XiRyFtrkaDwUvsql-gkLJXP6fnF1MlrZ53Mm4R7Cvw";
    let id =
        "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w";
    let with = |bytes: &[u8]| {
        json!({
            "id": id, "type": "public-key",
            "response": {"attestationObject": B64URL.encode(bytes), "clientDataJSON": client},
        })
    };
    assert!(verify_registration(&with(&object), &expected(challenge)).is_ok());
    for at in 0..object.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bent = object.clone();
            bent[at] ^= flip;
            // Either refused or (a flag bit nobody checks) accepted: never a panic.
            let _ = verify_registration(&with(&bent), &expected(challenge));
        }
        assert!(verify_registration(&with(&object[..at]), &expected(challenge)).is_err());
    }
}
