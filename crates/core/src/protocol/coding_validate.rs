//! Checking a protocol's coding framework: every problem found, each with its path
//! (`coding.classes[2].codes[0].key`).

use std::collections::HashMap;

use super::Protocol;
use super::coding::{
    CodingFramework, MAX_RECORDINGS_PER_PROFESSIONAL, MAX_SCALE_POINTS, RatingScale, is_hex_colour,
    key_identity,
};
use super::validate::Validator;

impl CodingFramework {
    /// Checks the framework's rules (listed in `docs/protocol.md`, "Coding framework"),
    /// pushing each problem to `v`; `protocol` is the protocol it belongs to, for the group it
    /// names.
    pub(super) fn check(&self, protocol: &Protocol, v: &mut Validator) {
        v.not_empty("coding.title", &self.title);
        if protocol.group(&self.recorded_group).is_none() {
            v.push(
                "coding.recorded_group",
                format!("unknown group {:?}", self.recorded_group),
            );
        }
        self.check_classes(v);
        self.check_rating_items(v);
        self.check_recording_types(v);
    }

    fn check_classes(&self, v: &mut Validator) {
        if self.classes.is_empty() {
            v.push(
                "coding.classes",
                "a coding framework needs at least one code class",
            );
        }
        v.unique(
            "code class",
            self.classes
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("coding.classes[{i}].id"), c.id.as_str())),
        );
        v.unique(
            "code",
            self.classes.iter().enumerate().flat_map(|(i, class)| {
                class.codes.iter().enumerate().map(move |(j, code)| {
                    (
                        format!("coding.classes[{i}].codes[{j}].id"),
                        code.id.as_str(),
                    )
                })
            }),
        );
        // Keys are unique across the framework: one key press marks one code.
        let mut keys: HashMap<char, String> = HashMap::new();
        for (i, class) in self.classes.iter().enumerate() {
            let at = format!("coding.classes[{i}]");
            v.not_empty(&format!("{at}.label"), &class.label);
            if class.codes.is_empty() {
                v.push(
                    format!("{at}.codes"),
                    "a code class needs at least one code",
                );
            }
            for (j, code) in class.codes.iter().enumerate() {
                let at = format!("{at}.codes[{j}]");
                v.not_empty(&format!("{at}.label"), &code.label);
                let mut chars = code.key.chars();
                match (chars.next(), chars.next()) {
                    (Some(key), None) if !key.is_whitespace() && !key.is_control() => {
                        if let Some(first) = keys.get(&key_identity(key)) {
                            v.push(
                                format!("{at}.key"),
                                format!("key {:?} is already used by {first}", code.key),
                            );
                        } else {
                            keys.insert(key_identity(key), at.clone());
                        }
                    }
                    _ => v.push(
                        format!("{at}.key"),
                        format!(
                            "bad key {:?} (must be one character, not a space)",
                            code.key
                        ),
                    ),
                }
                if !is_hex_colour(&code.colour) {
                    v.push(
                        format!("{at}.colour"),
                        format!(
                            "bad colour {:?} (must be # and six hex digits, e.g. #1f77b4)",
                            code.colour
                        ),
                    );
                }
            }
        }
    }

    fn check_rating_items(&self, v: &mut Validator) {
        v.unique(
            "rating item",
            self.rating_items
                .iter()
                .enumerate()
                .map(|(k, item)| (format!("coding.rating_items[{k}].id"), item.id.as_str())),
        );
        for (k, item) in self.rating_items.iter().enumerate() {
            let at = format!("coding.rating_items[{k}]");
            v.not_empty(&format!("{at}.label"), &item.label);
            if let Some(class) = &item.class
                && self.class(class).is_none()
            {
                v.push(
                    format!("{at}.class"),
                    format!("unknown code class {class:?}"),
                );
            }
            item.scale.check(&format!("{at}.scale"), v);
        }
    }

    fn check_recording_types(&self, v: &mut Validator) {
        if self.recording_types.is_empty() {
            v.push(
                "coding.recording_types",
                "a coding framework needs at least one recording type",
            );
        }
        v.unique(
            "recording type",
            self.recording_types
                .iter()
                .enumerate()
                .map(|(r, kind)| (format!("coding.recording_types[{r}].id"), kind.id.as_str())),
        );
        for (r, kind) in self.recording_types.iter().enumerate() {
            let at = format!("coding.recording_types[{r}]");
            v.not_empty(&format!("{at}.label"), &kind.label);
            if !(1..=MAX_RECORDINGS_PER_PROFESSIONAL).contains(&kind.per_professional) {
                v.push(
                    format!("{at}.per_professional"),
                    format!(
                        "bad number {} (must be 1 to {MAX_RECORDINGS_PER_PROFESSIONAL})",
                        kind.per_professional
                    ),
                );
            }
        }
    }
}

impl RatingScale {
    /// A scale runs upwards over at most [`MAX_SCALE_POINTS`] points, with exactly one
    /// non-empty anchor for each point.
    fn check(&self, at: &str, v: &mut Validator) {
        let (min, max) = (self.min, self.max);
        // i128: `max - min` of two i64 cannot overflow there.
        let points = i128::from(max) - i128::from(min) + 1;
        if min >= max {
            v.push(
                at,
                format!("bad scale {min} to {max} (min must be below max)"),
            );
        } else if points > i128::from(MAX_SCALE_POINTS) {
            v.push(
                at,
                format!(
                    "the scale {min} to {max} has {points} points (at most {MAX_SCALE_POINTS})"
                ),
            );
        }
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for (a, anchor) in self.anchors.iter().enumerate() {
            let path = format!("{at}.anchors[{a}]");
            v.not_empty(&format!("{path}.description"), &anchor.description);
            if !self.contains(anchor.value) {
                v.push(
                    format!("{path}.value"),
                    format!(
                        "{} is not a point of the scale {min} to {max}",
                        anchor.value
                    ),
                );
            } else if let Some(first) = seen.get(&anchor.value) {
                v.push(
                    format!("{path}.value"),
                    format!(
                        "scale point {} already has an anchor at {at}.anchors[{first}]",
                        anchor.value
                    ),
                );
            } else {
                seen.insert(anchor.value, a);
            }
        }
        // Only a well-formed scale is walked point by point (it has at most 11).
        if min < max && points <= i128::from(MAX_SCALE_POINTS) {
            for point in min..=max {
                if !seen.contains_key(&point) {
                    v.push(
                        format!("{at}.anchors"),
                        format!("no anchor for scale point {point}"),
                    );
                }
            }
        }
    }
}
