use super::*;
use serde_json::{Value, json};

/// The default protocol as a JSON value, to break on purpose.
fn default_json() -> Value {
    serde_json::from_str(DEFAULT_PROTOCOL_JSON).unwrap()
}

/// Parses `value` expecting errors; returns them as `path: message` lines.
fn problems(value: &Value) -> Vec<ProtocolError> {
    match Protocol::parse_all(&serde_json::to_string_pretty(value).unwrap()) {
        Ok(_) => panic!("expected the protocol to be refused"),
        Err(errors) => errors,
    }
}

fn paths(errors: &[ProtocolError]) -> Vec<&str> {
    errors.iter().map(|error| error.path.as_str()).collect()
}

/// The default protocol with another version and first interview question.
fn updated(version: u32, question: &str) -> String {
    let mut value = default_json();
    value["version"] = json!(version);
    value["interview_guides"][0]["sections"][0]["questions"][0]["text"] = json!(question);
    serde_json::to_string(&value).unwrap()
}

#[test]
fn a_newer_version_of_the_same_protocol_is_accepted_as_an_update() {
    let current = default_protocol();
    let update = current
        .check_update(&updated(current.version + 1, "What brought you to VIG?"))
        .unwrap();
    assert_eq!(update.version, current.version + 1);
    assert_eq!(
        update.interview_guides[0].sections[0].questions[0].text,
        "What brought you to VIG?"
    );
}

#[test]
fn an_update_that_is_older_the_same_another_study_or_invalid_is_refused() {
    let current = default_protocol();
    assert_eq!(
        current.check_update(&updated(current.version, "same version")),
        Err(UpdateRefused::NotNewer {
            version: current.version,
            current: current.version
        })
    );
    let mut other = default_json();
    other["id"] = json!("another-study");
    other["version"] = json!(current.version + 1);
    assert!(matches!(
        current.check_update(&other.to_string()),
        Err(UpdateRefused::OtherProtocol { id, .. }) if id == "another-study"
    ));
    let mut invalid = default_json();
    invalid["version"] = json!(current.version + 1);
    invalid["groups"][0]["target"] = json!(0);
    match current.check_update(&invalid.to_string()) {
        Err(UpdateRefused::Invalid(error)) => assert_eq!(error.path, "groups[0].target"),
        other => panic!("expected an invalid update, got {other:?}"),
    }
}

#[test]
fn an_update_that_rewords_a_consent_form_must_give_it_a_new_version() {
    let current = default_protocol();
    let mut reworded = default_json();
    reworded["version"] = json!(current.version + 1);
    reworded["consent_forms"][0]["items"][0]["text"] = json!("Reworded.");
    let form_id = current.consent_forms[0].id.clone();
    assert!(matches!(
        current.check_update(&reworded.to_string()),
        Err(UpdateRefused::ConsentFormChanged { form_id: id, .. }) if id == form_id
    ));
    reworded["consent_forms"][0]["version"] = json!("2.0, 2027-01-01");
    assert!(current.check_update(&reworded.to_string()).is_ok());
}

#[test]
fn a_form_has_at_most_one_item_of_each_role() {
    let mut value = default_json();
    value["consent_forms"][2]["items"][0]["role"] = json!("quotes");
    let errors = problems(&value);
    assert_eq!(paths(&errors), ["consent_forms[2].items[4].role"]);
    assert_eq!(
        errors[0].message,
        "a form can have only one quotes item (the first is consent_forms[2].items[0])"
    );
    // Several plain items are fine; roles may repeat across forms.
    let mut value = default_json();
    value["consent_forms"][1]["items"][0]["role"] = json!("filming");
    assert!(Protocol::parse(&value.to_string()).is_ok());
    let mut value = default_json();
    value["consent_forms"][0]["items"][0]["role"] = json!("filmed");
    let error = Protocol::parse(&value.to_string()).unwrap_err();
    assert!(
        error.message.contains("unknown variant `filmed`"),
        "{error}"
    );
}

#[test]
fn re_consent_versions_name_other_versions_once_each() {
    let mut value = default_json();
    let version = value["consent_forms"][2]["version"].clone();
    value["consent_forms"][2]["reconsent_versions"] =
        json!(["1.0, 2026-09-01", "", version, "1.0, 2026-09-01"]);
    let errors = problems(&value);
    assert_eq!(
        paths(&errors),
        [
            "consent_forms[2].reconsent_versions[1]",
            "consent_forms[2].reconsent_versions[2]",
            "consent_forms[2].reconsent_versions[3]"
        ]
    );
    assert!(errors[1].message.contains("this form's own version"));
    assert!(
        errors[2]
            .message
            .contains("already listed at consent_forms[2].reconsent_versions[0]")
    );
    value["consent_forms"][2]["reconsent_versions"] = json!(["1.0, 2026-09-01"]);
    let protocol = Protocol::parse(&value.to_string()).unwrap();
    assert_eq!(
        protocol.consent_forms[2].reconsent_versions,
        ["1.0, 2026-09-01"]
    );
}

#[test]
fn a_form_without_re_consent_versions_serialises_as_before() {
    let form = default_protocol().consent_form_for("carers").unwrap();
    let json = serde_json::to_value(form).unwrap();
    assert!(json.get("reconsent_versions").is_none());
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("reconsent_versions");
    assert_eq!(serde_json::from_value::<ConsentForm>(old).unwrap(), *form);
}

#[test]
fn an_update_that_asks_for_re_consent_is_taken_and_republishing_the_form_is_still_refused() {
    let current = default_protocol();
    let mut update = default_json();
    update["version"] = json!(current.version + 1);
    let old_version = update["consent_forms"][2]["version"].clone();
    update["consent_forms"][2]["version"] = json!("2.0, 2027-01-01");
    update["consent_forms"][2]["items"][0]["text"] = json!("Changed: needs re-consent.");
    update["consent_forms"][2]["reconsent_versions"] = json!([old_version]);
    let taken = current.check_update(&update.to_string()).unwrap();
    assert_eq!(
        taken.consent_form_for("carers").unwrap().reconsent_versions,
        [old_version.as_str().unwrap()]
    );
    // The changed form under the old version is still refused.
    update["consent_forms"][2]["version"] = old_version;
    update["consent_forms"][2]["reconsent_versions"] = json!([]);
    assert!(matches!(
        current.check_update(&update.to_string()),
        Err(UpdateRefused::ConsentFormChanged { .. })
    ));
}

#[test]
fn the_default_protocol_is_the_vig_study() {
    let protocol = default_protocol();
    assert_eq!(protocol.validate(), Ok(()));
    assert_eq!(
        protocol.reference(),
        ProtocolRef {
            id: "vig-evaluation".into(),
            version: 1
        }
    );
    let targets: Vec<_> = protocol
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.code_prefix.as_str(), g.target))
        .collect();
    assert_eq!(
        targets,
        [
            ("professionals", "P", 12),
            ("managers", "M", 6),
            ("carers", "C", 9),
            ("children", "K", 10)
        ]
    );
    let children = protocol.group("children").unwrap();
    assert!(children.takes_part_in_activities);
    assert_eq!(children.consent_form, None);
    assert_eq!(children.links_to.as_deref(), Some("carers"));
    assert_eq!(
        protocol.group("professionals").unwrap().links_to.as_deref(),
        Some("managers")
    );
    assert!(
        protocol.group_by_prefix('R').is_none(),
        "practice recordings are not a participant group: they are in `coding`"
    );
    let kinds: Vec<_> = protocol.activities.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            ActivityKind::FeelingsFaces,
            ActivityKind::CardSort,
            ActivityKind::Drawing,
            ActivityKind::ThreeHouses,
            ActivityKind::MagicWand
        ]
    );
    let places: Vec<_> = protocol.place_types.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        places,
        ["home", "family-centre", "school", "office", "online"]
    );
}

#[test]
fn each_adult_group_signs_its_own_form_with_the_right_items() {
    let protocol = default_protocol();
    let ids = |group: &str| -> Vec<String> {
        let form = protocol.consent_form_for(group).unwrap();
        form.items.iter().map(|item| item.id.clone()).collect()
    };
    let common = [
        "information-sheet",
        "voluntary",
        "audio-recording",
        "confidentiality",
        "safeguarding-limits",
        "withdrawal",
        "future-use",
    ];
    for group in ["professionals", "managers", "carers"] {
        let form = protocol.consent_form_for(group).unwrap();
        for id in common {
            assert!(form.item(id).is_some(), "{group} form lacks {id}");
        }
        assert_eq!(ids(group).last().map(String::as_str), Some("take-part"));
        assert!(form.withdrawal_deadline.is_some());
        let audio = form.item_with_role(ConsentRole::AudioRecording).unwrap();
        assert!(!audio.required, "no to audio means a notes-only interview");
        assert!(!form.item("future-use").unwrap().required);
        let required: Vec<_> = form
            .items
            .iter()
            .filter(|item| item.required)
            .map(|item| item.id.as_str())
            .collect();
        assert_eq!(
            required,
            [
                "information-sheet",
                "voluntary",
                "confidentiality",
                "safeguarding-limits",
                "withdrawal",
                "take-part"
            ]
        );
    }
    for group in ["professionals", "managers", "carers"] {
        let form = protocol.consent_form_for(group).unwrap();
        let quotes = form.item_with_role(ConsentRole::Quotes).unwrap();
        assert_eq!(quotes.id, "quotes");
        assert!(!quotes.required, "no to quotes still lets them take part");
        assert!(form.reconsent_versions.is_empty());
    }
    let filming = protocol
        .consent_form_for("carers")
        .unwrap()
        .item_with_role(ConsentRole::Filming)
        .unwrap();
    assert_eq!(filming.id, "filming");
    assert!(!filming.required);
    for group in ["professionals", "managers"] {
        let form = protocol.consent_form_for(group).unwrap();
        assert!(form.item_with_role(ConsentRole::Filming).is_none());
    }
    assert!(ids("carers").contains(&"child-invitation".to_string()));
    assert!(!ids("professionals").contains(&"child-invitation".to_string()));
    assert!(ids("professionals").contains(&"practice-recordings".to_string()));
    assert!(!ids("carers").contains(&"practice-recordings".to_string()));
    assert_eq!(ids("managers").len(), 9);
    assert!(protocol.consent_form_for("children").is_none());
}

#[test]
fn adults_get_their_topic_guide_and_children_get_activities() {
    let protocol = default_protocol();
    let carers = protocol.guide_for("carers").unwrap();
    assert_eq!(
        carers.question("being-filmed").map(|q| q.text.as_str()),
        Some("What was it like being filmed?")
    );
    assert!(
        protocol
            .guide_for("professionals")
            .unwrap()
            .question("beyond-vig")
            .is_some()
    );
    assert!(
        protocol
            .guide_for("managers")
            .unwrap()
            .question("sustainability")
            .is_some()
    );
    assert!(protocol.guide_for("children").is_none());
    assert!(protocol.guide_for("nobody").is_none());

    let sort = protocol.activity("card-sort").unwrap();
    let labels: Vec<_> = sort.cards.iter().map(|c| c.label.as_str()).collect();
    for label in [
        "Being filmed",
        "Watching my video",
        "The worker visiting",
        "Playing with my grown-up",
        "Talking about the video",
    ] {
        assert!(labels.contains(&label), "card sort lacks {label}");
    }
    assert_eq!(sort.card("being-filmed").unwrap().picture, "camera");
    let wand = protocol.activity("magic-wand").unwrap();
    assert_eq!(wand.cards.len(), 9, "the diamond ranks up to 9 cards");
    assert_eq!(protocol.activity("three-houses").unwrap().prompts.len(), 3);
    assert!(!protocol.assent.intro.is_empty());
    assert!(!protocol.safeguarding.steps.is_empty());
}

#[test]
fn the_default_protocol_writes_back_to_the_same_protocol() {
    let json = serde_json::to_string(default_protocol()).unwrap();
    assert_eq!(&Protocol::parse(&json).unwrap(), default_protocol());
}

#[test]
fn a_missing_field_is_named_with_its_path_and_line() {
    let mut value = default_json();
    value["groups"][2].as_object_mut().unwrap().remove("target");
    let errors = problems(&value);
    assert_eq!(paths(&errors), ["groups[2].target"]);
    assert!(errors[0].message.contains("missing field `target`"));
    assert!(errors[0].message.contains("line "), "{}", errors[0].message);

    let mut value = default_json();
    value.as_object_mut().unwrap().remove("title");
    assert_eq!(paths(&problems(&value)), ["title"]);

    let mut value = default_json();
    value["safeguarding"]
        .as_object_mut()
        .unwrap()
        .remove("contact");
    assert_eq!(paths(&problems(&value)), ["safeguarding.contact"]);

    let mut value = default_json();
    value["interview_guides"][1]["sections"][0]["questions"][2]
        .as_object_mut()
        .unwrap()
        .remove("text");
    assert_eq!(
        paths(&problems(&value)),
        ["interview_guides[1].sections[0].questions[2].text"]
    );
}

#[test]
fn a_misspelt_field_is_refused_and_named() {
    let mut value = default_json();
    let group = value["groups"][1].as_object_mut().unwrap();
    let target = group.remove("target").unwrap();
    group.insert("tagret".into(), target);
    let errors = problems(&value);
    assert_eq!(paths(&errors), ["groups[1].tagret"]);
    assert!(errors[0].message.contains("unknown field `tagret`"));

    let mut value = default_json();
    value["activities"][1]["cards"][0]["pictures"] = json!("camera");
    assert_eq!(
        paths(&problems(&value)),
        ["activities[1].cards[0].pictures"]
    );

    let mut value = default_json();
    value["colour"] = json!("blue");
    assert_eq!(paths(&problems(&value)), ["colour"]);
}

#[test]
fn a_wrong_type_or_unknown_kind_is_named() {
    let mut value = default_json();
    value["groups"][0]["target"] = json!("twelve");
    assert_eq!(paths(&problems(&value)), ["groups[0].target"]);

    let mut value = default_json();
    value["activities"][3]["kind"] = json!("four_houses");
    let errors = problems(&value);
    assert_eq!(paths(&errors), ["activities[3].kind"]);
    assert!(errors[0].message.contains("four_houses"));

    let mut value = default_json();
    value["consent_forms"][0]["items"][2]["role"] = json!("audio");
    assert_eq!(paths(&problems(&value)), ["consent_forms[0].items[2].role"]);
}

#[test]
fn broken_json_is_reported_with_its_line() {
    let error = Protocol::parse("{\n  \"id\": \"x\",\n  \"version\": 1,\n  oops\n}").unwrap_err();
    assert!(error.message.contains("line 4"), "{error}");
    let error = Protocol::parse("").unwrap_err();
    assert_eq!(error.path, "");
    assert_eq!(error.to_string(), error.message);
}

#[test]
fn duplicate_ids_are_refused_wherever_they_are() {
    let mut value = default_json();
    value["groups"][3]["id"] = json!("carers");
    value["consent_forms"][1]["id"] = json!("consent-professionals");
    value["consent_forms"][2]["items"][1]["id"] = json!("information-sheet");
    value["interview_guides"][2]["id"] = json!("guide-managers");
    value["interview_guides"][0]["sections"][1]["id"] = json!("role");
    // A question id reused in another section of the same guide.
    value["interview_guides"][0]["sections"][2]["questions"][0]["id"] = json!("role-caseload");
    value["activities"][4]["id"] = json!("drawing");
    value["activities"][0]["prompts"][1]["id"] = json!("being-filmed");
    value["activities"][1]["cards"][7]["id"] = json!("camera-card");
    value["activities"][1]["cards"][6]["id"] = json!("camera-card");
    value["place_types"][4]["id"] = json!("home");
    let errors = problems(&value);
    let expected = [
        "groups[3].id",
        "consent_forms[1].id",
        "consent_forms[2].items[1].id",
        "interview_guides[2].id",
        "interview_guides[0].sections[1].id",
        "interview_guides[0].sections[2].questions[0].id",
        "activities[4].id",
        "activities[0].prompts[1].id",
        "activities[1].cards[7].id",
        "place_types[4].id",
    ];
    for path in expected {
        let error = errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("no error at {path}: {errors:#?}"));
        assert!(error.message.contains("duplicate"), "{error}");
    }
    let group = errors.iter().find(|e| e.path == "groups[3].id").unwrap();
    assert_eq!(
        group.to_string(),
        "groups[3].id: duplicate group id \"carers\" (also at groups[2].id)"
    );
    // Ids only need to be unique where they are looked up: the same card id in two
    // activities, or a question id in two guides, is fine.
    assert!(
        default_protocol()
            .activity("card-sort")
            .unwrap()
            .card("being-filmed")
            .is_some()
    );
}

#[test]
fn references_to_unknown_groups_forms_and_guides_are_refused() {
    let mut value = default_json();
    value["groups"][3]["links_to"] = json!("parents");
    value["groups"][2]["consent_form"] = json!("consent-parents");
    value["groups"][1]["interview_guide"] = json!("guide-bosses");
    value["groups"][0]["links_to"] = json!("professionals");
    let errors = problems(&value);
    assert_eq!(
        paths(&errors),
        [
            "groups[0].links_to",
            "groups[1].interview_guide",
            "groups[2].consent_form",
            "groups[3].links_to"
        ]
    );
    assert_eq!(errors[3].message, "unknown group \"parents\"");
    assert!(errors[0].message.contains("itself"));
}

#[test]
fn a_target_of_zero_or_a_million_is_refused() {
    for bad in [0, 1_000_000] {
        let mut value = default_json();
        value["groups"][2]["target"] = json!(bad);
        let errors = problems(&value);
        assert_eq!(paths(&errors), ["groups[2].target"]);
        assert!(errors[0].message.starts_with("bad target"), "{}", errors[0]);
    }
    for fine in [1, 10_000] {
        let mut value = default_json();
        value["groups"][2]["target"] = json!(fine);
        assert!(Protocol::parse(&value.to_string()).is_ok());
    }
    let mut value = default_json();
    value["groups"][2]["target"] = json!(-3);
    assert_eq!(paths(&problems(&value)), ["groups[2].target"]);
}

#[test]
fn a_code_prefix_must_be_one_unused_capital_letter() {
    for bad in ["", "c", "CC", "1", "É", " C"] {
        let mut value = default_json();
        value["groups"][2]["code_prefix"] = json!(bad);
        let errors = problems(&value);
        assert_eq!(paths(&errors), ["groups[2].code_prefix"], "{bad:?}");
        assert!(errors[0].message.contains("bad code prefix"));
    }
    let mut value = default_json();
    value["groups"][3]["code_prefix"] = json!("C");
    let errors = problems(&value);
    assert_eq!(paths(&errors), ["groups[3].code_prefix"]);
    assert!(errors[0].message.contains("already used by groups[2]"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut value = default_json();
    value["id"] = json!("");
    value["version"] = json!(0);
    value["title"] = json!(" ");
    value["groups"][0]["target"] = json!(0);
    value["groups"][1]["code_prefix"] = json!("m");
    value["consent_forms"][1]["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .for_each(|item| item["required"] = json!(false));
    value["consent_forms"][2]["items"][0]["role"] = json!("audio_recording");
    value["activities"][2]["prompts"] = json!([]);
    value["activities"][1]["cards"] = json!([{ "id": "only", "label": "Only", "picture": "x" }]);
    let errors = problems(&value);
    assert_eq!(
        paths(&errors),
        [
            "id",
            "version",
            "title",
            "groups[0].target",
            "groups[1].code_prefix",
            "consent_forms[1].items",
            "consent_forms[2].items[2].role",
            "activities[1].cards",
            "activities[2].prompts",
        ],
        "{errors:#?}"
    );
    // `parse` stops at the first.
    assert_eq!(Protocol::parse(&value.to_string()).unwrap_err().path, "id");
}

#[test]
fn codes_start_at_01_and_follow_the_highest_used() {
    assert_eq!(next_code("C", &[]), "C01");
    assert_eq!(next_code("C", &["C01"]), "C02");
    // Other groups' codes and junk do not count.
    assert_eq!(next_code("C", &["K07", "P03", "C", "Cx1", "carer"]), "C01");
    // Gaps are not filled: C02 may have been given out and lost.
    assert_eq!(next_code("C", &["C01", "C03"]), "C04");
    assert_eq!(next_code("K", &["K10", "K02"]), "K11");
}

#[test]
fn a_withdrawn_participants_code_is_never_given_again() {
    // C03 withdrew; their code stays in the list and is not reused.
    let codes = ["C01", "C02", "C03"];
    assert_eq!(next_code("C", &codes), "C04");
}

#[test]
fn codes_grow_to_three_digits_after_99() {
    assert_eq!(next_code("P", &["P98"]), "P99");
    assert_eq!(next_code("P", &["P99"]), "P100");
    assert_eq!(next_code("P", &["P100", "P07"]), "P101");
}

#[test]
fn codes_split_into_group_letter_and_number() {
    assert_eq!(parse_code("C07"), Some(('C', 7)));
    assert_eq!(parse_code("K100"), Some(('K', 100)));
    assert_eq!(parse_code("c07"), None);
    assert_eq!(parse_code("C"), None);
    assert_eq!(parse_code("C7a"), None);
    assert_eq!(parse_code("CC07"), None);
    assert_eq!(parse_code(""), None);
    let protocol = default_protocol();
    assert_eq!(
        protocol.group_of_code("K03").map(|g| g.id.as_str()),
        Some("children")
    );
    assert_eq!(
        protocol.group_by_prefix('M').map(|g| g.id.as_str()),
        Some("managers")
    );
    assert!(protocol.group_of_code("R01").is_none());
}
