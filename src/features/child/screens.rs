//! The child screens: assent, the re-check before each activity, one screen per prompt,
//! and thank-you with the fieldworker's way out.

use attune_core::fieldwork::{ActivityResponseBody, AssentAnswer};
use attune_core::protocol::{Activity, ActivityKind, Card};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use wasm_bindgen::prelude::*;

use super::{
    ChildMode, Ending, Screen, attach_drawing, column_at, save_assent, save_response, say, screens,
    trap_history, use_child,
};
use crate::records::Chain;
use crate::session::use_sessions;
use attune_core::pictures::svg;

/// A pictogram, decorative (the button around it carries the name).
fn pic(name: &str) -> impl IntoView + use<> {
    view! { <span class="pic" aria-hidden="true" inner_html=svg(name)></span> }
}

/// Child mode: whatever the address, this is what shows while it is on.
#[component]
pub fn ChildRoot() -> impl IntoView {
    let child = use_child();
    let sessions = use_sessions();
    let error = RwSignal::new(None::<String>);
    // Every screen adds a history entry, so the back button stays here.
    Effect::new(move |_| {
        child.0.track();
        trap_history();
    });
    let keys = window_event_listener(leptos::ev::keydown, |ev| {
        // Browser shortcuts that would leave (Alt+Left, Backspace navigation) do nothing.
        if ev.alt_key() && (ev.key() == "ArrowLeft" || ev.key() == "ArrowRight") {
            ev.prevent_default();
        }
    });
    on_cleanup(move || keys.remove());
    let screen = Memo::new(move |_| {
        child.get().map(|m| match m.ending {
            Some(_) => Screen::End,
            None => screens(m.protocol())
                .get(m.step)
                .copied()
                .unwrap_or(Screen::End),
        })
    });
    let step = Memo::new(move |_| child.get().map(|m| m.step).unwrap_or_default());
    let report = move |r: Result<(), String>| {
        if let Err(message) = r {
            error.try_set(Some(format!("Not saved: {message}")));
        }
    };
    let stop = move || {
        let Some(mode) = child.current() else { return };
        if let Some(Screen::Prompt(a, p)) = screen.get_untracked() {
            let activity = &mode.protocol().activities[a];
            let (aid, pid) = (activity.id.clone(), activity.prompts[p].id.clone());
            leptos::task::spawn_local(async move {
                report(save_response(sessions, &mode, &aid, &pid, |b| b.stopped = true).await);
                child.end(Ending::Stopped);
            });
        } else {
            child.end(Ending::Stopped);
        }
    };
    let skip = move || {
        let Some(mode) = child.current() else { return };
        let list = screens(mode.protocol());
        match screen.get_untracked() {
            Some(Screen::Assent) => child.end(Ending::Declined),
            Some(Screen::Recheck(a)) => {
                // Skipping an activity: on to the next activity's question.
                let next = list
                    .iter()
                    .position(|s| matches!(s, Screen::Recheck(n) if *n > a))
                    .unwrap_or(list.len());
                child.go(next);
            }
            Some(Screen::Prompt(a, p)) => {
                let activity = &mode.protocol().activities[a];
                let (aid, pid) = (activity.id.clone(), activity.prompts[p].id.clone());
                leptos::task::spawn_local(async move {
                    report(save_response(sessions, &mode, &aid, &pid, |b| b.skipped = true).await);
                    child.go(mode.step + 1);
                });
            }
            _ => {}
        }
    };
    view! {
        // No long-press or right-click menu on child screens (save picture, open in a tab).
        <div class="child" data-testid="child-mode" on:contextmenu=|ev| ev.prevent_default()>
            {move || {
                // Rebuilt on every step, so each screen speaks when it appears.
                step.track();
                let screen = screen.get()?;
                let mode = child.current()?;
                Some(match screen {
                    Screen::End => view! { <EndScreen mode=mode /> }.into_any(),
                    other => view! {
                        <div class="child-screen">
                            <button type="button" class="child-stop" aria-label="Stop" on:click=move |_| stop()>
                                {pic("stop")}
                            </button>
                            {match other {
                                Screen::Assent => view! { <AssentScreen mode=mode recheck=None report=report /> }.into_any(),
                                Screen::Recheck(a) => view! { <AssentScreen mode=mode recheck=Some(a) report=report /> }.into_any(),
                                Screen::Prompt(a, p) => view! { <PromptScreen mode=mode activity=a prompt=p report=report /> }.into_any(),
                                Screen::End => ().into_any(),
                            }}
                            <button type="button" class="child-skip" aria-label="Skip" on:click=move |_| skip()>
                                {pic("skip")}
                            </button>
                        </div>
                    }.into_any(),
                })
            }}
            <Show when=move || error.get().is_some()>
                <p class="child-error" role="alert">{move || error.get()}</p>
            </Show>
        </div>
    }
}

/// The words on screen (for the fieldworker) and the replay button.
#[component]
fn Said(texts: Vec<String>) -> impl IntoView {
    say(&texts);
    let again = texts.clone();
    view! {
        <div class="child-said">
            <button type="button" class="child-hear" aria-label="Hear it again" on:click=move |_| say(&again)>
                {pic("speaker")}
            </button>
            <div class="child-text">
                {texts.into_iter().map(|t| view! { <p>{t}</p> }).collect_view()}
            </div>
        </div>
    }
}

/// Yes / not sure / no: the first assent, or the re-check before activity `recheck`.
#[component]
fn AssentScreen(
    mode: ChildMode,
    recheck: Option<usize>,
    report: impl Fn(Result<(), String>) + Copy + 'static,
) -> impl IntoView {
    let child = use_child();
    let sessions = use_sessions();
    let protocol = mode.protocol();
    let texts = match recheck {
        None => {
            let mut t = protocol.assent.intro.clone();
            t.push(protocol.assent.question.clone());
            t
        }
        Some(_) => vec![protocol.assent.recheck.clone()],
    };
    let activity = recheck.map(|a| protocol.activities[a].id.clone());
    let busy = RwSignal::new(false);
    let answer = move |answer: AssentAnswer| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let mode = mode.clone();
        let activity = activity.clone();
        leptos::task::spawn_local(async move {
            report(save_assent(sessions, &mode, answer, activity).await);
            match super::after_assent(&screens(mode.protocol()), mode.step, answer) {
                Some(next) => child.go(next),
                None => child.end(Ending::Declined),
            }
        });
    };
    let answer_yes = answer.clone();
    let answer_unsure = answer.clone();
    let answer_no = answer;
    view! {
        <Said texts=texts />
        <div class="child-choices three" role="group" aria-label="Your answer">
            <button type="button" class="child-choice yes" aria-label="Yes" on:click=move |_| answer_yes(AssentAnswer::Yes)>
                {pic("yes")}<span>"Yes"</span>
            </button>
            <button type="button" class="child-choice not-sure" aria-label="Not sure" on:click=move |_| answer_unsure(AssentAnswer::NotSure)>
                {pic("not-sure")}<span>"Not sure"</span>
            </button>
            <button type="button" class="child-choice no" aria-label="No" on:click=move |_| answer_no(AssentAnswer::No)>
                {pic("no")}<span>"No"</span>
            </button>
        </div>
    }
}

/// One prompt of an activity.
#[component]
fn PromptScreen(
    mode: ChildMode,
    activity: usize,
    prompt: usize,
    report: impl Fn(Result<(), String>) + Copy + 'static,
) -> impl IntoView {
    let child = use_child();
    let sessions = use_sessions();
    let act: &'static Activity = &mode.protocol().activities[activity];
    let prompt_id = act.prompts[prompt].id.clone();
    let texts = vec![act.prompts[prompt].text.clone()];
    let busy = RwSignal::new(false);
    // The response record of this prompt, loaded once: the answer so far is kept in it as the
    // child goes (card sort, three houses, the diamond), and Done saves through the same
    // record, so saves follow one another.
    let slot = {
        let (mode, prompt_id) = (mode.clone(), prompt_id.clone());
        LocalResource::new(move || {
            let (mode, prompt_id) = (mode.clone(), prompt_id.clone());
            async move { super::response_slot(sessions, &mode, &act.id, &prompt_id).await }
        })
    };
    let live = StoredValue::new_local(None::<(Chain, Option<ActivityResponseBody>)>);
    let save_live = {
        let prompt_id = prompt_id.clone();
        move |answer: serde_json::Value, in_progress: bool| {
            let (chain, base) = live.get_value()?;
            let mut body = base.unwrap_or_else(|| {
                ActivityResponseBody::skipped(&act.id, &prompt_id, crate::session::now())
            });
            body.skipped = false;
            body.stopped = false;
            body.in_progress = in_progress;
            body.time = crate::session::now();
            body.answer = answer;
            Some(async move { chain.save(sessions, &body).await.map(|_| ()) })
        }
    };
    let progress: Done = {
        let save_live = save_live.clone();
        std::rc::Rc::new(move |answer: serde_json::Value| {
            if let Some(saving) = save_live(answer, true) {
                leptos::task::spawn_local(async move { report(saving.await) });
            }
        })
    };
    // Saves the answer and moves on.
    let done = {
        let mode = mode.clone();
        let prompt_id = prompt_id.clone();
        move |answer: serde_json::Value| {
            if busy.get_untracked() {
                return;
            }
            busy.set(true);
            let mode = mode.clone();
            let prompt_id = prompt_id.clone();
            let through_live = save_live(answer.clone(), false);
            leptos::task::spawn_local(async move {
                let saved = match through_live {
                    Some(saving) => saving.await,
                    None => {
                        save_response(sessions, &mode, &act.id, &prompt_id, |b| {
                            b.answer = answer;
                            b.skipped = false;
                        })
                        .await
                    }
                };
                report(saved);
                child.go(mode.step + 1);
            });
        }
    };
    let done: Done = std::rc::Rc::new(done);
    // Arena handles, so the view's closure below captures only `Copy + Send` values.
    let handlers = StoredValue::new_local((done, progress));
    let report = StoredValue::new_local(report);
    let body = move || {
        let found = slot.get()?;
        let initial = match found {
            Ok((chain, existing)) => {
                let initial = existing.as_ref().map(|b| b.answer.clone());
                live.set_value(Some((chain, existing)));
                initial.filter(|a| !a.is_null())
            }
            Err(message) => {
                report.with_value(|report| report(Err(message)));
                None
            }
        };
        let (done, progress) = handlers.get_value();
        let report = report.get_value();
        Some(match act.kind {
            ActivityKind::FeelingsFaces => {
                view! { <PickOne cards=act.cards.clone() done=done class="faces" /> }.into_any()
            }
            ActivityKind::MagicWand if prompt_id != "diamond" => {
                view! { <PickOne cards=act.cards.clone() done=done class="cards" /> }.into_any()
            }
            ActivityKind::MagicWand => view! {
                <PickMany cards=act.cards.clone() done=done progress=progress initial=initial ranked=true house=None />
            }
            .into_any(),
            ActivityKind::ThreeHouses => {
                let house = ["house-good", "house-worries", "house-dreams"]
                    .get(prompt)
                    .copied();
                view! { <PickMany cards=act.cards.clone() done=done progress=progress initial=initial ranked=false house=house /> }
                    .into_any()
            }
            ActivityKind::CardSort => {
                view! { <CardSort cards=act.cards.clone() done=done progress=progress initial=initial /> }.into_any()
            }
            ActivityKind::Drawing => view! {
                <DrawingPad mode=mode.clone() activity=act.id.clone() prompt=prompt_id.clone() done=done report=report />
            }
            .into_any(),
        })
    };
    view! {
        <Said texts=texts />
        <div class="child-activity" data-activity=act.id.clone()>{body}</div>
    }
}

type Done = std::rc::Rc<dyn Fn(serde_json::Value)>;

fn card_button(card: &Card, chosen: Signal<Option<String>>, on: impl Fn() + 'static) -> AnyView {
    let label = card.label.clone();
    let name = card.label.clone();
    view! {
        <button type="button" class="child-card" aria-label=name
            on:click=move |_| on()>
            {pic(&card.picture)}
            <span class="card-label">{label}</span>
            {move || chosen.get().map(|c| view! { <span class="badge" aria-hidden="true">{c}</span> })}
        </button>
    }
    .into_any()
}

/// Tap one picture: a feeling face, or the magic wand's one card.
#[component]
fn PickOne(cards: Vec<Card>, done: Done, class: &'static str) -> impl IntoView {
    view! {
        <div class=format!("child-cards {class}")>
            {cards.iter().map(|card| {
                let id = card.id.clone();
                let done = done.clone();
                card_button(card, Signal::derive(|| None), move || done(serde_json::json!({ "card": id })))
            }).collect_view()}
        </div>
    }
}

/// Tap several pictures (again to take one back), then the big tick. Ranked: numbered in the
/// order tapped, 1 the most important.
#[component]
fn PickMany(
    cards: Vec<Card>,
    done: Done,
    progress: Done,
    initial: Option<serde_json::Value>,
    ranked: bool,
    house: Option<&'static str>,
) -> impl IntoView {
    // The cards picked so far, after a reload.
    let start: Vec<String> = initial
        .as_ref()
        .and_then(|a| a.get("cards"))
        .and_then(|c| c.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let chosen = RwSignal::new(start);
    let pictures: Vec<(String, String)> = cards
        .iter()
        .map(|c| (c.id.clone(), c.picture.clone()))
        .collect();
    // The diamond fills from the top as cards are tapped: 1, 2 3, 4 5 6, 7 8, 9.
    let diamond = ranked.then(|| {
        view! {
            <div class="diamond" aria-hidden="true">
                {[0usize..1, 1..3, 3..6, 6..8, 8..9].into_iter().map(|row| {
                    let pictures = pictures.clone();
                    view! {
                        <div class="diamond-row">
                            {row.map(|i| {
                                let pictures = pictures.clone();
                                view! {
                                    <span class="diamond-slot">
                                        {move || chosen.with(|c| c.get(i).and_then(|id| {
                                            pictures.iter().find(|(x, _)| x == id).map(|(_, p)| pic(p))
                                        }))}
                                    </span>
                                }
                            }).collect_view()}
                        </div>
                    }
                }).collect_view()}
            </div>
        }
    });
    view! {
        {house.map(|h| view! { <div class="child-house">{pic(h)}</div> })}
        {diamond}
        <div class="child-cards cards">
            {cards.iter().map(|card| {
                let id = card.id.clone();
                let id2 = card.id.clone();
                let badge = Signal::derive(move || {
                    chosen.with(|c| c.iter().position(|x| *x == id2).map(|i| if ranked { (i + 1).to_string() } else { "\u{2713}".into() }))
                });
                let progress = progress.clone();
                card_button(card, badge, move || {
                    chosen.update(|c| {
                        if let Some(i) = c.iter().position(|x| *x == id) { c.remove(i); } else { c.push(id.clone()); }
                    });
                    // Kept as each card is tapped: a tablet that dies here loses nothing.
                    progress(serde_json::json!({ "cards": chosen.get_untracked() }));
                })
            }).collect_view()}
        </div>
        <button type="button" class="child-done" aria-label="Done"
            on:click=move |_| done(serde_json::json!({ "cards": chosen.get_untracked() }))>
            {pic("done")}
        </button>
    }
}

const COLUMNS: [(&str, &str, &str); 3] = [
    ("good", "Good", "face-happy"),
    ("not-sure", "Not sure", "question-mark"),
    ("not-good", "Not good", "face-sad"),
];

/// Cards onto Good / Not sure / Not good: tap a card then a column, or drag it; placed cards
/// can be moved again. Keeps the final placement and every move in order.
#[component]
fn CardSort(
    cards: Vec<Card>,
    done: Done,
    progress: Done,
    initial: Option<serde_json::Value>,
) -> impl IntoView {
    // The cards placed so far and their moves, after a reload.
    let pairs = |key: &str| -> Vec<(String, String)> {
        match initial.as_ref().and_then(|a| a.get(key)) {
            Some(serde_json::Value::Object(map)) => map
                .iter()
                .filter_map(|(c, col)| Some((c.clone(), col.as_str()?.to_string())))
                .collect(),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|m| {
                    Some((
                        m.get(0)?.as_str()?.to_string(),
                        m.get(1)?.as_str()?.to_string(),
                    ))
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let progress = StoredValue::new_local(progress);
    let placement = RwSignal::new(pairs("placement"));
    let moves = RwSignal::new(pairs("moves"));
    let answer = move || {
        let placed: serde_json::Map<String, serde_json::Value> = placement
            .get_untracked()
            .into_iter()
            .map(|(c, col)| (c, serde_json::Value::String(col)))
            .collect();
        serde_json::json!({ "placement": placed, "moves": moves.get_untracked() })
    };
    let selected = RwSignal::new(None::<String>);
    let drag = StoredValue::new(None::<(String, f64, f64)>);
    let place = move |card: String, column: String| {
        if placement.with_untracked(|p| p.iter().any(|(c, col)| *c == card && *col == column)) {
            return;
        }
        placement.update(|p| {
            p.retain(|(c, _)| *c != card);
            p.push((card.clone(), column.clone()));
        });
        moves.update(|m| m.push((card, column)));
        selected.set(None);
        // Kept as each card is placed: a tablet that dies here loses nothing.
        progress.with_value(|progress| progress(answer()));
    };
    let up = window_event_listener(leptos::ev::pointerup, move |ev| {
        let Some((card, x, y)) = drag.get_value() else {
            return;
        };
        drag.set_value(None);
        let (ex, ey) = (ev.client_x() as f64, ev.client_y() as f64);
        if (ex - x).abs() + (ey - y).abs() < 12.0 {
            return; // a tap, handled by click
        }
        let column = column_at(ex, ey);
        if !column.is_empty() {
            place(card, column);
        }
    });
    on_cleanup(move || up.remove());
    let cards = StoredValue::new(cards);
    let card_view = move |card: &Card| {
        let id = card.id.clone();
        let (id_down, id_sel) = (card.id.clone(), card.id.clone());
        let label = card.label.clone();
        let name = card.label.clone();
        view! {
            <button type="button" class="child-card sort-card" aria-label=name
                aria-pressed=move || (selected.get().as_deref() == Some(id_sel.as_str())).to_string()
                on:pointerdown=move |ev| drag.set_value(Some((id_down.clone(), ev.client_x() as f64, ev.client_y() as f64)))
                on:click=move |_| selected.set(Some(id.clone()))>
                {pic(&card.picture)}
                <span class="card-label">{label}</span>
            </button>
        }
    };
    view! {
        <div class="child-cards pool" aria-label="Cards to sort" role="group">
            {move || cards.with_value(|all| all.iter()
                .filter(|c| !placement.with(|p| p.iter().any(|(x, _)| *x == c.id)))
                .map(card_view).collect_view())}
        </div>
        <div class="sort-columns">
            {COLUMNS.iter().map(|&(id, label, picture)| view! {
                <div class=format!("sort-column {id}") data-column=id>
                    <button type="button" class="sort-target" aria-label=format!("Put on {label}")
                        on:click=move |_| if let Some(card) = selected.get_untracked() { place(card, id.to_string()) }>
                        {pic(picture)}<span>{label}</span>
                    </button>
                    <div class="sort-placed">
                        {move || cards.with_value(|all| placement.with(|p| p.iter()
                            .filter(|(_, col)| col == id)
                            .filter_map(|(c, _)| all.iter().find(|x| x.id == *c))
                            .map(card_view).collect_view()))}
                    </div>
                </div>
            }).collect_view()}
        </div>
        <button type="button" class="child-done" aria-label="Done" on:click=move |_| done(answer())>
            {pic("done")}
        </button>
    }
}

const COLOURS: [(&str, &str); 5] = [
    ("#1b1d1f", "Black"),
    ("#d62828", "Red"),
    ("#1f6fd1", "Blue"),
    ("#2a9d3f", "Green"),
    ("#f4b400", "Yellow"),
];

/// A canvas with thick colours, an eraser and undo. Every stroke is saved (strokes as JSON),
/// so a reload brings the drawing back stroke for stroke; the tick adds a PNG.
#[component]
fn DrawingPad(
    mode: ChildMode,
    activity: String,
    prompt: String,
    done: Done,
    report: impl Fn(Result<(), String>) + Copy + 'static,
) -> impl IntoView {
    let sessions = use_sessions();
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let pad = StoredValue::new_local(None::<super::Drawing>);
    let colour = RwSignal::new(COLOURS[0].0);
    let (a2, p2) = (activity.clone(), prompt.clone());
    let loaded = LocalResource::new(move || {
        let (mode, a, p) = (mode.clone(), a2.clone(), p2.clone());
        async move { super::response_slot(sessions, &mode, &a, &p).await }
    });
    Effect::new(move |_| {
        let Some(el) = canvas.get() else { return };
        let Some(slot) = loaded.get() else { return };
        if pad.with_value(Option::is_some) {
            return;
        }
        let (chain, existing) = match slot {
            Ok(s) => s,
            Err(message) => {
                report(Err(message));
                return;
            }
        };
        let initial = existing
            .as_ref()
            .and_then(|b| b.answer.get("strokes"))
            .map(|s| s.to_string())
            .unwrap_or_else(|| "[]".into());
        let base = existing;
        let (activity, prompt) = (activity.clone(), prompt.clone());
        let on_change = Closure::<dyn Fn(String)>::new(move |strokes: String| {
            let strokes: serde_json::Value =
                serde_json::from_str(&strokes).unwrap_or(serde_json::Value::Null);
            let mut body = base.clone().unwrap_or_else(|| {
                attune_core::fieldwork::ActivityResponseBody::skipped(
                    &activity,
                    &prompt,
                    crate::session::now(),
                )
            });
            body.skipped = false;
            body.time = crate::session::now();
            body.answer = serde_json::json!({ "strokes": strokes });
            let chain = chain.clone();
            leptos::task::spawn_local(async move {
                report(chain.save(sessions, &body).await.map(|_| ()));
            });
        });
        let drawing = attach_drawing(&el, &initial, on_change.as_ref().unchecked_ref());
        on_change.forget();
        pad.set_value(Some(drawing));
    });
    view! {
        <div class="drawing">
            <canvas node_ref=canvas class="drawing-canvas" aria-label="Drawing space: draw here with a finger"
                role="img" data-testid="drawing-canvas"></canvas>
            <div class="drawing-tools" role="group" aria-label="Colours">
                {COLOURS.iter().map(|&(c, name)| view! {
                    <button type="button" class=format!("child-tool colour {}", name.to_lowercase()) aria-label=name
                        aria-pressed=move || (colour.get() == c).to_string()
                        on:click=move |_| { colour.set(c); pad.with_value(|p| if let Some(p) = p { p.set_colour(c) }); }>
                        <span class="swatch" aria-hidden="true"></span>
                    </button>
                }).collect_view()}
                <button type="button" class="child-tool" aria-label="Eraser"
                    aria-pressed=move || (colour.get() == "#ffffff").to_string()
                    on:click=move |_| { colour.set("#ffffff"); pad.with_value(|p| if let Some(p) = p { p.set_colour("#ffffff") }); }>
                    {pic("eraser")}
                </button>
                <button type="button" class="child-tool" aria-label="Undo"
                    on:click=move |_| pad.with_value(|p| if let Some(p) = p { p.undo() })>
                    {pic("undo")}
                </button>
            </div>
            <button type="button" class="child-done" aria-label="Done" on:click=move |_| {
                let answer = pad.with_value(|p| p.as_ref().map(|p| {
                    let strokes: serde_json::Value = serde_json::from_str(&p.strokes()).unwrap_or_default();
                    serde_json::json!({ "strokes": strokes, "png": p.to_png() })
                }));
                if let Some(answer) = answer { done(answer) }
            }>
                {pic("done")}
            </button>
        </div>
    }
}

/// Thank you, and the fieldworker's way out with their passphrase.
#[component]
fn EndScreen(mode: ChildMode) -> impl IntoView {
    let child = use_child();
    let sessions = use_sessions();
    let navigate = use_navigate();
    let text = match mode.ending {
        Some(Ending::Declined) => "Thank you, that's fine.",
        _ => "Thank you for doing this with me!",
    };
    let asking = RwSignal::new(false);
    let passphrase = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let (visit, participant) = (mode.visit, mode.participant);
    let checking = RwSignal::new(false);
    let finish = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if checking.get_untracked() {
            return;
        }
        let Some(session) = sessions.current() else {
            return;
        };
        let secret = passphrase.get_untracked();
        let navigate = navigate.clone();
        // PIN-shaped input is throttled after a few wrong tries (a child guessing); the
        // passphrase is always tried, so the fieldworker is never locked out.
        let pin_shaped = attune_core::pin::looks_like_pin(&secret);
        let wait = child.pin_throttle().wait_ms(js_sys::Date::now() as i64);
        if pin_shaped && wait > 0 {
            error.set(Some(wait_words(wait)));
            return;
        }
        checking.set(true);
        leptos::task::spawn_local(async move {
            // The PIN set in Settings, or the passphrase (always accepted, for a forgotten PIN).
            let by_pin = pin_shaped
                && matches!(sessions.child_pin().await, Ok(Some(pin)) if pin.verify(&secret));
            let ok =
                by_pin || attune_core::Vault::unlock(&secret, &session.profile.wrapped_key).is_ok();
            checking.set(false);
            if ok {
                passphrase.set(String::new());
                navigate(
                    &format!("/visits/{visit}/child/{participant}/summary"),
                    leptos_router::NavigateOptions {
                        replace: true,
                        ..Default::default()
                    },
                );
                child.leave();
            } else {
                let now_ms = js_sys::Date::now() as i64;
                let wait = if pin_shaped {
                    child.pin_failed(now_ms).wait_ms(now_ms)
                } else {
                    0
                };
                error.set(Some(if wait > 0 {
                    format!("That is not the PIN or passphrase. {}", wait_words(wait))
                } else {
                    "That is not the PIN or passphrase. Try again.".into()
                }));
            }
        });
    };
    view! {
        <div class="child-screen end">
            <Said texts=vec![text.to_string()] />
            <div class="child-house">{pic("face-very-happy")}</div>
            <Show when=move || asking.get()
                fallback=move || view! {
                    <button type="button" class="child-exit" on:click=move |_| asking.set(true)>
                        "Fieldworker: finish"
                    </button>
                }>
                <form class="child-pin" on:submit=finish.clone()>
                    <label for="child-pin">"Fieldworker PIN or passphrase"</label>
                    <input id="child-pin" type="password" autocomplete="one-time-code" autocapitalize="off" spellcheck="false"
                        prop:value=move || passphrase.get()
                        on:input=move |ev| passphrase.set(event_target_value(&ev)) />
                    <button type="submit" class="child-exit" disabled=move || checking.get()>"Finish child mode"</button>
                    <Show when=move || error.get().is_some()>
                        <p class="child-error" role="alert">{move || error.get()}</p>
                    </Show>
                </form>
            </Show>
        </div>
    }
}

/// "Wait 8 seconds before the next PIN (the passphrase works now)."
fn wait_words(wait_ms: i64) -> String {
    let secs = (wait_ms + 999) / 1000;
    let when = if secs >= 120 {
        format!("{} minutes", (secs + 59) / 60)
    } else if secs == 1 {
        "1 second".to_string()
    } else {
        format!("{secs} seconds")
    };
    format!("Too many wrong PINs: wait {when} before the next PIN. The passphrase works now.")
}
