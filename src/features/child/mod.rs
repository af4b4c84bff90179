//! Child mode: a locked family of full-screen, picture-first screens that one child uses
//! next to their carer. Entered from the visit hub (the hand-over screen); left only with
//! the fieldworker's passphrase, to a summary of the session.
//!
//! While child mode is on, a flag in `sessionStorage` (ids and the step, no answers) makes
//! the app render [`ChildRoot`] instead of any route, with no top bar: a reload, a typed
//! address or the back button all land back here.

pub mod screens;
pub mod summary;

use attune_core::ProtocolRef;
use attune_core::fieldwork::{ActivityResponseBody, AssentAnswer, AssentBody};
use attune_core::protocol::Protocol;
use attune_core::{Kind, Links, ParticipantId, RecordId, VisitId};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::records::{self, Chain};
use crate::session::{Sessions, now};

#[wasm_bindgen(module = "/src/features/child/child.js")]
extern "C" {
    fn speak(text: &str, first: bool);
    #[wasm_bindgen(js_name = loadFlag)]
    fn load_flag() -> String;
    #[wasm_bindgen(js_name = saveFlag)]
    fn save_flag(json: &str);
    #[wasm_bindgen(js_name = clearFlag)]
    fn clear_flag();
    #[wasm_bindgen(js_name = trapHistory)]
    fn trap_history();
    #[wasm_bindgen(js_name = columnAt)]
    fn column_at(x: f64, y: f64) -> String;

    type Drawing;
    #[wasm_bindgen(js_name = attachDrawing)]
    fn attach_drawing(
        canvas: &web_sys::HtmlCanvasElement,
        initial: &str,
        on_change: &js_sys::Function,
    ) -> Drawing;
    #[wasm_bindgen(method, js_name = setColour)]
    fn set_colour(this: &Drawing, colour: &str);
    #[wasm_bindgen(method)]
    fn undo(this: &Drawing);
    #[wasm_bindgen(method, js_name = toPng)]
    fn to_png(this: &Drawing) -> String;
    #[wasm_bindgen(method)]
    fn strokes(this: &Drawing) -> String;
}

/// Reads sentences aloud, the first one interrupting whatever was being said.
pub fn say(texts: &[String]) {
    for (i, text) in texts.iter().enumerate() {
        speak(text, i == 0);
    }
}

/// How a child session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    /// The child said not sure or no.
    Declined,
    /// The child pressed the red hand.
    Stopped,
    /// Every activity was done.
    Finished,
}

/// Child mode in progress: who, in which visit, and where they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildMode {
    /// The visit.
    pub visit: VisitId,
    /// The child.
    pub participant: ParticipantId,
    /// Index into [`screens`].
    pub step: usize,
    /// Set once the session has ended (the thank-you screen).
    pub ending: Option<Ending>,
    /// The protocol version the session started with: a protocol update received meanwhile
    /// does not change the screens under the child (absent in flags from older versions: the
    /// protocol in use).
    #[serde(default)]
    pub protocol: Option<ProtocolRef>,
    /// The fieldworker's profile: while child mode is on, the lock screen offers only this
    /// profile (no other profile, no new one).
    #[serde(default)]
    pub profile: Option<attune_core::ProfileId>,
    /// Wrong PINs at the exit, kept here so a reload does not reset the count.
    #[serde(default)]
    pub pin_throttle: attune_core::pin::PinThrottle,
}

impl ChildMode {
    /// The protocol this session runs under.
    pub fn protocol(&self) -> &'static Protocol {
        self.protocol
            .as_ref()
            .map_or_else(crate::protocol::current, crate::protocol::by_reference)
    }
}

/// One child screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The first assent question.
    Assent,
    /// The assent re-check before activity `n`.
    Recheck(usize),
    /// Prompt `p` of activity `a`.
    Prompt(usize, usize),
    /// Thank you.
    End,
}

/// The screens of a child session, in order.
pub fn screens(protocol: &Protocol) -> Vec<Screen> {
    let mut list = vec![Screen::Assent];
    for (a, activity) in protocol.activities.iter().enumerate() {
        list.push(Screen::Recheck(a));
        list.extend((0..activity.prompts.len()).map(|p| Screen::Prompt(a, p)));
    }
    list
}

/// The step after the assent screen at `step` was answered; `None` ends the session kindly.
/// Yes goes on. At the re-check before an activity, "not sure" skips that activity (to the
/// next re-check, or the end when it was the last); "no" ends the session, as does anything
/// but yes at the first assent.
pub fn after_assent(list: &[Screen], step: usize, answer: AssentAnswer) -> Option<usize> {
    match (list.get(step), answer) {
        (_, AssentAnswer::Yes) => Some(step + 1),
        (Some(Screen::Recheck(_)), AssentAnswer::NotSure) => Some(
            list.iter()
                .enumerate()
                .skip(step + 1)
                .find(|(_, s)| matches!(s, Screen::Recheck(_) | Screen::End))
                .map_or(list.len(), |(i, _)| i),
        ),
        _ => None,
    }
}

/// The child-mode state, provided as context by [`provide`].
#[derive(Clone, Copy)]
pub struct ChildState(RwSignal<Option<ChildMode>>);

/// Reads the child-mode flag left by this tab (so a reload stays in child mode).
pub fn provide() -> ChildState {
    let mode = serde_json::from_str::<ChildMode>(&load_flag()).ok();
    let state = ChildState(RwSignal::new(mode));
    provide_context(state);
    state
}

/// The child-mode state.
pub fn use_child() -> ChildState {
    expect_context::<ChildState>()
}

impl ChildState {
    /// Whether child mode is on, reactively.
    pub fn active(&self) -> bool {
        self.0.with(Option::is_some)
    }

    /// The session, reactively.
    pub fn get(&self) -> Option<ChildMode> {
        self.0.get()
    }

    /// The session, not tracked.
    pub fn current(&self) -> Option<ChildMode> {
        self.0.get_untracked()
    }

    fn set(&self, mut mode: ChildMode) {
        // The PIN throttle lives in the flag ([`Self::pin_failed`]): never reset it here.
        let throttle = self.pin_throttle();
        if throttle.failures > mode.pin_throttle.failures {
            mode.pin_throttle = throttle;
        }
        if let Ok(json) = serde_json::to_string(&mode) {
            save_flag(&json);
        }
        self.0.set(Some(mode));
    }

    /// Starts child mode for a child in a visit.
    pub fn start(
        &self,
        visit: VisitId,
        participant: ParticipantId,
        profile: attune_core::ProfileId,
    ) {
        self.set(ChildMode {
            visit,
            participant,
            step: 0,
            ending: None,
            protocol: Some(crate::protocol::current().reference()),
            profile: Some(profile),
            pin_throttle: Default::default(),
        });
    }

    /// The exit's PIN throttle. Kept only in the flag, not in the reactive state: counting a
    /// wrong PIN must not rebuild the screen under the fieldworker.
    pub fn pin_throttle(&self) -> attune_core::pin::PinThrottle {
        serde_json::from_str::<ChildMode>(&load_flag())
            .map(|mode| mode.pin_throttle)
            .unwrap_or_default()
    }

    /// Records a wrong PIN at the exit; returns the updated throttle.
    pub fn pin_failed(&self, now_ms: i64) -> attune_core::pin::PinThrottle {
        let Ok(mut mode) = serde_json::from_str::<ChildMode>(&load_flag()) else {
            return Default::default();
        };
        mode.pin_throttle.failed(now_ms);
        if let Ok(json) = serde_json::to_string(&mode) {
            save_flag(&json);
        }
        mode.pin_throttle
    }

    /// Moves to a step (past the last: the session is finished).
    pub fn go(&self, step: usize) {
        if let Some(mut mode) = self.current() {
            if step >= screens(mode.protocol()).len() {
                mode.ending = Some(Ending::Finished);
            }
            mode.step = step;
            self.set(mode);
        }
    }

    /// Ends the session: the thank-you screen.
    pub fn end(&self, ending: Ending) {
        if let Some(mut mode) = self.current() {
            mode.ending = Some(ending);
            self.set(mode);
        }
    }

    /// Leaves child mode (after the fieldworker's passphrase).
    pub fn leave(&self) {
        clear_flag();
        self.0.set(None);
    }
}

/// Links of a child's records.
pub fn links(mode: &ChildMode) -> Links {
    Links {
        participant: Some(mode.participant),
        visit: Some(mode.visit),
        protocol: Some(mode.protocol().reference()),
    }
}

/// Saves an assent answer as its own record.
pub async fn save_assent(
    sessions: Sessions,
    mode: &ChildMode,
    answer: AssentAnswer,
    activity: Option<String>,
) -> Result<(), String> {
    let body = AssentBody {
        answer,
        activity,
        time: Some(now()),
    };
    let chain = Chain::new(RecordId::new(now()), Kind::Assent, links(mode), None);
    chain.save(sessions, &body).await.map(|_| ())
}

/// The record of a child's answer to one prompt: its edit chain and latest body, if any.
pub async fn response_slot(
    sessions: Sessions,
    mode: &ChildMode,
    activity: &str,
    prompt: &str,
) -> Result<(Chain, Option<ActivityResponseBody>), String> {
    let session = sessions.current().ok_or("the tablet is locked")?;
    let found = records::of_visit(&session, mode.visit)
        .await?
        .into_iter()
        .filter(|r| r.kind == Kind::ActivityResponse && r.participant == Some(mode.participant))
        .filter_map(|r| {
            let body = records::body::<ActivityResponseBody>(&r).ok()?;
            (body.activity_id == activity && body.prompt_id == prompt).then_some((r, body))
        })
        .max_by_key(|(r, _)| r.time);
    Ok(match found {
        Some((head, body)) => (
            Chain::new(
                head.record_id,
                Kind::ActivityResponse,
                head.links(),
                Some(head),
            ),
            Some(body),
        ),
        None => (
            Chain::new(
                RecordId::new(now()),
                Kind::ActivityResponse,
                links(mode),
                None,
            ),
            None,
        ),
    })
}

/// Saves the answer to a prompt, built from what was saved before (if anything).
pub async fn save_response(
    sessions: Sessions,
    mode: &ChildMode,
    activity: &str,
    prompt: &str,
    change: impl FnOnce(&mut ActivityResponseBody),
) -> Result<(), String> {
    let (chain, existing) = response_slot(sessions, mode, activity, prompt).await?;
    let mut body = existing.unwrap_or_else(|| ActivityResponseBody {
        activity_id: activity.into(),
        prompt_id: prompt.into(),
        answer: serde_json::Value::Null,
        skipped: false,
        stopped: false,
        time: now(),
        notes: None,
        in_progress: false,
    });
    body.time = now();
    body.in_progress = false;
    change(&mut body);
    chain.save(sessions, &body).await.map(|_| ())
}

pub use screens::ChildRoot;
