//! A child's answer drawn as the child saw it: the same pictograms as child mode, the chosen
//! face in its row, the card-sort board with each card in its column, the cards picked or
//! ranked in their order, the drawing as drawn. The answer in words stays beside it, for
//! screen readers and for quoting.

use attune_core::fieldwork::{ActivityResponseBody, CardChoice, SORT_COLUMNS};
use attune_core::pictures::svg;
use attune_core::protocol::{Activity, ActivityKind, Card};
use leptos::prelude::*;

/// A pictogram with its label, marked when chosen.
fn card_view(card: &Card, chosen: bool, number: Option<u32>) -> impl IntoView + use<> {
    let class = if chosen {
        "picture-card chosen"
    } else {
        "picture-card"
    };
    view! {
        <figure class=class>
            {number.map(|n| view! { <span class="rank" aria-hidden="true">{n}</span> })}
            <span class="pictogram" inner_html=svg(&card.picture)></span>
            <figcaption>{card.label.clone()}</figcaption>
        </figure>
    }
}

/// The activity's cards by id (a card the protocol no longer has is left out: the words
/// still name it).
fn cards_of<'a>(
    activity: &'a Activity,
    choices: &'a [CardChoice],
) -> Vec<(&'a Card, &'a CardChoice)> {
    choices
        .iter()
        .filter_map(|choice| activity.card(&choice.card).map(|card| (card, choice)))
        .collect()
}

/// The answer as pictures, or nothing for an answer with no cards (a drawing, a skip).
pub fn pictures(activity: Option<&Activity>, response: &ActivityResponseBody) -> Option<AnyView> {
    let activity = activity?;
    if !response.answered() || activity.cards.is_empty() {
        return None;
    }
    let choices = response.card_choices();
    if choices.is_empty() && response.answer.get("placement").is_none() {
        return None;
    }
    let single = response.answer.get("card").is_some();
    let view = if response.answer.get("placement").is_some() {
        board(activity, &choices)
    } else if single && activity.kind == ActivityKind::FeelingsFaces {
        // The whole row of faces, as on the child's screen, with the one chosen.
        let chosen = choices.first().map(|c| c.card.clone());
        view! {
            <div class="picture-row faces" data-testid="answer-pictures">
                {activity.cards.iter().map(|card| card_view(card, chosen.as_deref() == Some(card.id.as_str()), None)).collect_view()}
            </div>
        }
        .into_any()
    } else {
        // Cards picked, ranked or put in a house, in the order chosen.
        let ranked = !single && choices.len() > 1;
        view! {
            <div class="picture-row" data-testid="answer-pictures">
                {cards_of(activity, &choices).into_iter().map(|(card, choice)| {
                    card_view(card, true, if ranked { choice.position } else { None })
                }).collect_view()}
            </div>
        }
        .into_any()
    };
    Some(view)
}

/// The card sort's board: Good / Not sure / Not good, each card where the child left it, and
/// the cards not placed.
fn board(activity: &Activity, choices: &[CardChoice]) -> AnyView {
    let columns = SORT_COLUMNS.iter().map(|(id, name)| {
        let placed: Vec<&Card> = cards_of(activity, choices)
            .into_iter()
            .filter(|(_, choice)| choice.column.as_deref() == Some(*id))
            .map(|(card, _)| card)
            .collect();
        view! {
            <div class=format!("sort-column sort-{id}")>
                <h4>{*name}</h4>
                {if placed.is_empty() {
                    view! { <p class="muted">"None"</p> }.into_any()
                } else {
                    placed.into_iter().map(|card| card_view(card, false, None)).collect_view().into_any()
                }}
            </div>
        }
    });
    let left: Vec<&Card> = activity
        .cards
        .iter()
        .filter(|card| !choices.iter().any(|c| c.card == card.id))
        .collect();
    view! {
        <div class="sort-board" data-testid="answer-pictures">{columns.collect_view()}</div>
        {(!left.is_empty()).then(|| view! {
            <p class="muted">"Not placed:"</p>
            <div class="picture-row">{left.into_iter().map(|card| card_view(card, false, None)).collect_view()}</div>
        })}
    }
    .into_any()
}
