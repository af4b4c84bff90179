//! The tables of the children's activities: responses, the cards in them, and assents.

use super::super::{Item, Study};
use super::table::{Table, Type, codes, opt_time, provenance, provenance_cells, time};
use crate::fieldwork::{
    ActivityResponseBody, AssentAnswer, ResponseStatus, SORT_COLUMNS, card_label,
};

/// The responses in order: participant, visit, the protocol's activity and prompt order.
pub(super) fn ordered_responses<'s>(
    study: &'s Study<'_>,
) -> Vec<&'s Item<'s, ActivityResponseBody>> {
    let mut responses: Vec<_> = study.responses.iter().collect();
    let order = |r: &Item<'_, ActivityResponseBody>| {
        (
            study.code_of(r),
            r.visit_id(),
            r.protocol_order(),
            r.body.time,
        )
    };
    responses.sort_by_cached_key(|r| order(r));
    responses
}

pub(super) fn activity_codes(study: &Study<'_>) -> Type {
    codes(
        study
            .protocol
            .activities
            .iter()
            .map(|a| (a.id.as_str(), a.title.as_str())),
    )
}

pub(super) fn activity_responses(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "activity_responses.csv",
        "activity_responses",
        "One row per activity prompt a child answered, skipped or stopped at: the prompt's \
         words, the answer's codes and words, and what the child said.",
    );
    t.text("response_id", "The response record's id.")
        .text("participant_id", "The child's id.")
        .text("participant_code", "The child's code.")
        .text("visit_id", "The visit's id.")
        .column("activity_id", activity_codes(study), "The activity.")
        .text("activity_title", "The activity's title.")
        .column(
            "prompt_number",
            Type::Integer,
            "The prompt's place in the activity, from 1.",
        )
        .text("prompt_id", "The prompt's id.")
        .text("prompt_text", "The words read aloud to the child.")
        .column(
            "status",
            codes(ResponseStatus::ALL.map(|s| (s.code(), s.label()))),
            "How the prompt ended.",
        )
        .text(
            "answer_codes",
            "The answer as card ids, e.g. \"friends; school\" or \"good: friends\" (card sort).",
        )
        .text(
            "answer_words",
            "The answer in words, as the fieldworker saw it.",
        )
        .column("answered_at", Type::DateTime, "When the child answered.")
        .text(
            "child_said",
            "The fieldworker's notes of what the child said.",
        )
        .text(
            "picture_file",
            "A drawing, as a PNG file relative to this folder.",
        );
    provenance(&mut t);
    for r in ordered_responses(study) {
        let activity = r
            .protocol
            .activity(&r.body.activity_id)
            .or_else(|| study.protocol.activity(&r.body.activity_id));
        let prompt = activity.and_then(|a| {
            a.prompts
                .iter()
                .position(|p| p.id == r.body.prompt_id)
                .map(|i| (i + 1, &a.prompts[i]))
        });
        let mut row = vec![
            r.id(),
            r.participant_id(),
            study.code_of(r),
            r.visit_id(),
            r.body.activity_id.clone(),
            activity.map(|a| a.title.clone()).unwrap_or_default(),
            prompt.map(|(n, _)| n.to_string()).unwrap_or_default(),
            r.body.prompt_id.clone(),
            prompt.map(|(_, p)| p.text.clone()).unwrap_or_default(),
            r.body.status().code().to_owned(),
            r.body.answer_codes(),
            r.body.answer_words(activity),
            time(r.body.time),
            r.body.notes.clone().unwrap_or_default(),
            r.record.file.clone().unwrap_or_default(),
        ];
        row.extend(provenance_cells(r));
        t.row(row);
    }
    t
}

pub(super) fn card_choices(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "card_choices.csv",
        "card_choices",
        "One row per card in a child's answer: faces and cards picked (with their order) and \
         the card sort's placements.",
    );
    t.text(
        "response_id",
        "The response (activity_responses.csv) the card belongs to.",
    )
    .text("participant_code", "The child's code.")
    .column("activity_id", activity_codes(study), "The activity.")
    .text("prompt_id", "The prompt's id.")
    .text("card_id", "The card's id.")
    .text("card_label", "The card's words.")
    .column(
        "position",
        Type::Integer,
        "Its place in the order the child chose, from 1 (empty in the card sort).",
    )
    .column(
        "sort_column",
        codes(SORT_COLUMNS),
        "Where the child put it in the card sort (empty otherwise).",
    );
    for r in ordered_responses(study) {
        let activity = r
            .protocol
            .activity(&r.body.activity_id)
            .or_else(|| study.protocol.activity(&r.body.activity_id));
        for choice in r.body.card_choices() {
            t.row(vec![
                r.id(),
                study.code_of(r),
                r.body.activity_id.clone(),
                r.body.prompt_id.clone(),
                choice.card.clone(),
                card_label(activity, &choice.card),
                choice.position.map(|p| p.to_string()).unwrap_or_default(),
                choice.column.unwrap_or_default(),
            ]);
        }
    }
    t
}

pub(super) fn assents(study: &Study<'_>) -> Table {
    let mut t = Table::new(
        "assents.csv",
        "assents",
        "One row per time a child was asked whether they wanted to go on: at the start of \
         child mode and before each activity.",
    );
    t.text("assent_id", "The assent record's id.")
        .text("participant_id", "The child's id.")
        .text("participant_code", "The child's code.")
        .text("visit_id", "The visit's id.")
        .text(
            "activity_id",
            "The activity about to start (empty: the start of child mode).",
        )
        .text("activity_title", "The activity's title.")
        .column(
            "answer",
            codes(
                [AssentAnswer::Yes, AssentAnswer::NotSure, AssentAnswer::No].map(|a| {
                    let code = match a {
                        AssentAnswer::Yes => "yes",
                        AssentAnswer::NotSure => "not_sure",
                        AssentAnswer::No => "no",
                    };
                    (code, a.label())
                }),
            ),
            "What the child chose (only yes lets the activity go on).",
        )
        .column("answered_at", Type::DateTime, "When the child answered.");
    provenance(&mut t);
    let mut assents: Vec<_> = study.assents.iter().collect();
    assents.sort_by_cached_key(|a| (study.code_of(a), a.body.time, a.revision().record_id));
    for a in assents {
        let code = match a.body.answer {
            AssentAnswer::Yes => "yes",
            AssentAnswer::NotSure => "not_sure",
            AssentAnswer::No => "no",
        };
        let activity = a.body.activity.clone().unwrap_or_default();
        let mut row = vec![
            a.id(),
            a.participant_id(),
            study.code_of(a),
            a.visit_id(),
            activity.clone(),
            a.protocol
                .activity(&activity)
                .map(|x| x.title.clone())
                .unwrap_or_default(),
            code.to_owned(),
            opt_time(a.body.time.or(Some(a.revision().time))),
        ];
        row.extend(provenance_cells(a));
        t.row(row);
    }
    t
}
