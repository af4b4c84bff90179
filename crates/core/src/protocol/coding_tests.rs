//! The coding framework: the default one, and each kind of broken file named by its path.

use super::*;
use serde_json::{Value, json};

fn default_json() -> Value {
    serde_json::from_str(DEFAULT_PROTOCOL_JSON).unwrap()
}

/// The paths and messages of every problem with `value`.
fn problems(value: &Value) -> Vec<(String, String)> {
    match Protocol::parse_all(&value.to_string()) {
        Ok(_) => panic!("expected the protocol to be refused"),
        Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
    }
}

fn paths(value: &Value) -> Vec<String> {
    problems(value).into_iter().map(|(path, _)| path).collect()
}

#[test]
fn the_default_protocol_codes_with_kennedys_six_principles() {
    let coding = default_protocol().coding.as_ref().unwrap();
    assert_eq!(coding.recorded_group, "professionals");
    let classes: Vec<_> = coding
        .classes
        .iter()
        .map(|c| (c.label.as_str(), c.codes.len()))
        .collect();
    assert_eq!(
        classes,
        [
            ("Being attentive", 4),
            ("Encouraging initiatives", 4),
            ("Receiving initiatives", 4),
            ("Developing attuned interactions", 6),
            ("Guiding", 6),
            ("Deepening discussion", 6)
        ]
    );
    let waiting = coding.code("enc-waiting").unwrap();
    assert_eq!(waiting.kind, EventKind::State);
    assert_eq!(coding.code_for_key('A'), Some(waiting), "keys ignore case");
    assert_eq!(
        coding.code_for_key('f').map(|c| c.label.as_str()),
        Some("Naming positively what you see, think or feel")
    );
    assert_eq!(
        coding.code("gui-scaffolding").unwrap().kind,
        EventKind::State
    );
    assert_eq!(
        coding.code("rec-showing-heard").unwrap().kind,
        EventKind::Point
    );
    assert!(coding.code_for_key('m').is_none());
}

#[test]
fn the_default_rating_items_are_labelled_placeholders_on_a_0_to_3_scale() {
    let coding = default_protocol().coding.as_ref().unwrap();
    assert!(coding.has_placeholder_items());
    assert_eq!(coding.rating_items.len(), coding.classes.len());
    for (item, class) in coding.rating_items.iter().zip(&coding.classes) {
        assert!(item.placeholder);
        assert!(
            item.label.contains("(replace with VIG-SDS item)"),
            "{}",
            item.label
        );
        assert_eq!(item.class.as_deref(), Some(class.id.as_str()));
        assert_eq!((item.scale.min, item.scale.max), (0, 3));
        let anchors: Vec<_> = (0..=3)
            .map(|point| item.scale.anchor(point).unwrap().description.as_str())
            .collect();
        assert_eq!(anchors, ["Not evident", "Emerging", "Evident", "Strong"]);
    }
    assert!(coding.rating_item("placeholder-1").is_some());
}

#[test]
fn each_professional_shares_one_vig_review_and_one_other_meeting() {
    let coding = default_protocol().coding.as_ref().unwrap();
    let types: Vec<_> = coding
        .recording_types
        .iter()
        .map(|t| (t.id.as_str(), t.label.as_str(), t.per_professional))
        .collect();
    assert_eq!(
        types,
        [
            ("vig_shared_review", "VIG shared review", 1),
            ("non_vig_meeting", "Non-VIG meeting", 1)
        ]
    );
    assert!(coding.recording_type("non_vig_meeting").is_some());
}

#[test]
fn a_protocol_without_a_coding_section_is_valid_and_writes_back_without_one() {
    let mut value = default_json();
    value.as_object_mut().unwrap().remove("coding");
    let protocol = Protocol::parse(&value.to_string()).unwrap();
    assert_eq!(protocol.coding, None);
    let written = serde_json::to_value(&protocol).unwrap();
    assert!(written.get("coding").is_none());
}

#[test]
fn duplicate_keys_and_ids_are_named_where_they_repeat() {
    let mut value = default_json();
    // "Q" is the same key as "q" (the first code of the first class).
    value["coding"]["classes"][2]["codes"][0]["key"] = json!("Q");
    value["coding"]["classes"][3]["codes"][1]["id"] = json!("enc-waiting");
    value["coding"]["classes"][4]["id"] = json!("guiding-x");
    value["coding"]["classes"][5]["id"] = json!("guiding-x");
    value["coding"]["rating_items"][1]["id"] = json!("placeholder-1");
    value["coding"]["rating_items"][4]["class"] = json!("being-attentive");
    value["coding"]["rating_items"][5]["class"] = json!("being-attentive");
    value["coding"]["recording_types"][1]["id"] = json!("vig_shared_review");
    let problems = problems(&value);
    let paths: Vec<_> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "coding.classes[5].id",
            "coding.classes[3].codes[1].id",
            "coding.classes[2].codes[0].key",
            "coding.rating_items[1].id",
            "coding.recording_types[1].id",
        ]
    );
    assert_eq!(
        problems[2].1,
        "key \"Q\" is already used by coding.classes[0].codes[0]"
    );
    assert!(
        problems[1]
            .1
            .contains("also at coding.classes[1].codes[0].id")
    );
}

#[test]
fn a_key_must_be_one_character_and_a_colour_six_hex_digits() {
    let mut value = default_json();
    value["coding"]["classes"][0]["codes"][0]["key"] = json!("ab");
    value["coding"]["classes"][0]["codes"][1]["key"] = json!(" ");
    value["coding"]["classes"][0]["codes"][2]["key"] = json!("");
    value["coding"]["classes"][1]["codes"][0]["colour"] = json!("red");
    value["coding"]["classes"][1]["codes"][1]["colour"] = json!("#12345g");
    value["coding"]["classes"][1]["codes"][2]["colour"] = json!("#1234567");
    value["coding"]["classes"][1]["codes"][3]["colour"] = json!("#ABCDEF");
    let problems = problems(&value);
    let paths: Vec<_> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "coding.classes[0].codes[0].key",
            "coding.classes[0].codes[1].key",
            "coding.classes[0].codes[2].key",
            "coding.classes[1].codes[0].colour",
            "coding.classes[1].codes[1].colour",
            "coding.classes[1].codes[2].colour",
        ],
        "upper-case hex is a colour too"
    );
    assert!(problems[0].1.contains("bad key \"ab\""));
    assert!(problems[3].1.contains("bad colour \"red\""));
}

#[test]
fn an_empty_framework_or_class_is_refused() {
    let mut value = default_json();
    value["coding"]["classes"][3]["codes"] = json!([]);
    value["coding"]["classes"][4]["label"] = json!(" ");
    value["coding"]["recording_types"] = json!([]);
    assert_eq!(
        paths(&value),
        [
            "coding.classes[3].codes",
            "coding.classes[4].label",
            "coding.recording_types"
        ]
    );
    let mut value = default_json();
    value["coding"]["classes"] = json!([]);
    value["coding"]["rating_items"] = json!([]);
    assert_eq!(paths(&value), ["coding.classes"]);
}

#[test]
fn a_scale_runs_upwards_with_one_anchor_per_point() {
    let mut value = default_json();
    value["coding"]["rating_items"][0]["scale"]["min"] = json!(3);
    value["coding"]["rating_items"][0]["scale"]["max"] = json!(3);
    value["coding"]["rating_items"][1]["scale"]["max"] = json!(4);
    value["coding"]["rating_items"][2]["scale"]["anchors"][3]["value"] = json!(2);
    value["coding"]["rating_items"][3]["scale"]["anchors"][0]["value"] = json!(7);
    value["coding"]["rating_items"][4]["scale"]["anchors"][1]["description"] = json!("");
    value["coding"]["rating_items"][5]["scale"]["max"] = json!(20);
    let problems = problems(&value);
    let found: Vec<_> = problems
        .iter()
        .map(|(path, message)| format!("{path}: {message}"))
        .collect();
    assert_eq!(
        found,
        [
            "coding.rating_items[0].scale: bad scale 3 to 3 (min must be below max)",
            "coding.rating_items[0].scale.anchors[0].value: 0 is not a point of the scale 3 to 3",
            "coding.rating_items[0].scale.anchors[1].value: 1 is not a point of the scale 3 to 3",
            "coding.rating_items[0].scale.anchors[2].value: 2 is not a point of the scale 3 to 3",
            "coding.rating_items[1].scale.anchors: no anchor for scale point 4",
            "coding.rating_items[2].scale.anchors[3].value: scale point 2 already has an anchor at coding.rating_items[2].scale.anchors[2]",
            "coding.rating_items[2].scale.anchors: no anchor for scale point 3",
            "coding.rating_items[3].scale.anchors[0].value: 7 is not a point of the scale 0 to 3",
            "coding.rating_items[3].scale.anchors: no anchor for scale point 0",
            "coding.rating_items[4].scale.anchors[1].description: must not be empty",
            "coding.rating_items[5].scale: the scale 0 to 20 has 21 points (at most 11)",
        ]
    );
}

#[test]
fn a_huge_scale_is_refused_without_walking_it() {
    let mut value = default_json();
    value["coding"]["rating_items"][0]["scale"]["min"] = json!(i64::MIN);
    value["coding"]["rating_items"][0]["scale"]["max"] = json!(i64::MAX);
    let found = problems(&value);
    assert_eq!(found[0].0, "coding.rating_items[0].scale");
    assert!(found[0].1.contains("points (at most 11)"), "{}", found[0].1);
}

#[test]
fn unknown_references_are_named() {
    let mut value = default_json();
    value["coding"]["recorded_group"] = json!("practitioners");
    value["coding"]["rating_items"][2]["class"] = json!("attending");
    value["coding"]["recording_types"][0]["per_professional"] = json!(0);
    let problems = problems(&value);
    let found: Vec<_> = problems
        .iter()
        .map(|(path, message)| format!("{path}: {message}"))
        .collect();
    assert_eq!(
        found,
        [
            "coding.recorded_group: unknown group \"practitioners\"",
            "coding.rating_items[2].class: unknown code class \"attending\"",
            "coding.recording_types[0].per_professional: bad number 0 (must be 1 to 20)",
        ]
    );
}

#[test]
fn a_misspelt_or_unknown_event_kind_is_named_with_its_path() {
    let mut value = default_json();
    value["coding"]["classes"][1]["codes"][2]["kind"] = json!("interval");
    let error = Protocol::parse(&serde_json::to_string_pretty(&value).unwrap()).unwrap_err();
    assert_eq!(error.path, "coding.classes[1].codes[2].kind");
    assert!(
        error.message.contains("unknown variant `interval`"),
        "{error}"
    );

    let mut value = default_json();
    value["coding"]["classes"][0]["codes"][0]["color"] = json!("#000000");
    let error = Protocol::parse(&serde_json::to_string_pretty(&value).unwrap()).unwrap_err();
    assert_eq!(error.path, "coding.classes[0].codes[0].color");
    assert!(error.message.contains("unknown field `color`"), "{error}");
}

#[test]
fn the_example_in_the_protocol_docs_is_a_valid_framework() {
    let docs = include_str!("../../../../docs/protocol.md");
    let start = docs
        .find("```json\n\"coding\": ")
        .expect("docs/protocol.md shows a coding section");
    let body = &docs[start + "```json\n\"coding\": ".len()..];
    let example = &body[..body.find("```").expect("the example ends")];
    let mut value = default_json();
    value["coding"] = serde_json::from_str(example).expect("the example is JSON");
    let protocol = Protocol::parse(&value.to_string()).unwrap();
    let coding = protocol.coding.unwrap();
    assert_eq!(coding.classes[0].codes.len(), 2);
    assert!(!coding.has_placeholder_items());
}

#[test]
fn two_coders_ratings_on_a_protocol_scale_give_a_weighted_kappa() {
    use crate::agreement::{Weighting, cohen_kappa};
    let item = &default_protocol().coding.as_ref().unwrap().rating_items[0];
    let scale: Vec<i64> = item.scale.points().collect();
    assert_eq!(scale, [0, 1, 2, 3]);
    let first = [Some(0), Some(1), Some(2), Some(3), None];
    let second = [Some(0), Some(2), Some(2), Some(3), Some(1)];
    let result = cohen_kappa(&scale, &first, &second, Weighting::Quadratic).unwrap();
    assert_eq!((result.units, result.dropped), (4, 1));
    // By hand: one disagreement of one point (weight 1/9) in four pairs gives an observed
    // disagreement of 1/36; the margins give an expected one of 10/36: kappa 1 - 1/10.
    assert!((result.value.unwrap() - 0.9).abs() < 1e-9, "{result}");
}
