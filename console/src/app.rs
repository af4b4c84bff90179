//! The console's shell: who is signed in, whether the study key is open, and which screen
//! is shown. The study key lives only in this page's memory ([`Unlocked`]); closing the tab
//! or "Close the key" forgets it.

use std::rc::Rc;

use attune_core::team::{Me, Role};
use attune_core::{StudyPrivateKey, StudySigningKey};
use leptos::prelude::*;

use crate::api;
use crate::error::Error;
use crate::screens::{
    conflicts, devices, export, key, overview, participants, protocol, safeguarding, signin, team,
    withdrawals,
};
use crate::study::Study;

/// The study, opened in this page.
#[derive(Clone)]
pub struct Unlocked {
    /// The study private key (never sent anywhere).
    pub key: Rc<StudyPrivateKey>,
    /// The study signing key, which signs study instructions and the team's own records
    /// (never sent anywhere); `None` for a version 1 key file, which opens for review only.
    pub signing: Option<Rc<StudySigningKey>>,
    /// What the server held when the key was opened (or last refreshed), verified and opened.
    pub study: Rc<Study>,
}

/// The screens of an open study.
#[derive(Clone, Debug, PartialEq)]
pub enum Page {
    /// Arrivals and devices.
    Overview,
    /// Notes flagged as safeguarding concerns.
    Safeguarding,
    /// Participants by code.
    Participants,
    /// One participant's timeline.
    Participant(String),
    /// Revisions kept beside their record's chain.
    Conflicts,
    /// Withdrawals and tablets' withdrawal requests.
    Withdrawals,
    /// The protocol in use, and publishing a new version (study admins).
    Protocol,
    /// The whole export, built in the page as one zip.
    Export,
    /// The study team and its audit log (study admins).
    Team,
    /// Enrolled tablets, revoking them, enrolment codes (study admins).
    Devices,
}

impl Page {
    fn label(&self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Safeguarding => "Safeguarding",
            Page::Participants | Page::Participant(_) => "Participants",
            Page::Conflicts => "Conflicts",
            Page::Withdrawals => "Withdrawals",
            Page::Protocol => "Protocol",
            Page::Export => "Export",
            Page::Team => "Team",
            Page::Devices => "Devices",
        }
    }
}

/// What the whole console reads: the member, the open study, and the screen.
#[derive(Clone, Copy)]
pub struct Console {
    /// The signed-in member; `None` before sign-in.
    pub me: RwSignal<Option<Me>>,
    /// The open study; `None` until the key file is opened.
    pub unlocked: RwSignal<Option<Unlocked>, LocalStorage>,
    /// The screen shown.
    pub page: RwSignal<Page>,
    /// The invitation token from the link, until it is spent.
    pub invite: RwSignal<Option<String>>,
}

impl Console {
    /// Shows `page`.
    pub fn go(&self, page: Page) {
        self.page.set(page);
    }
}

/// The console's root.
#[component]
pub fn App() -> impl IntoView {
    let console = Console {
        me: RwSignal::new(None),
        unlocked: RwSignal::new_local(None),
        page: RwSignal::new(Page::Overview),
        invite: RwSignal::new(invitation_token()),
    };
    provide_context(console);
    let checked = RwSignal::new(false);
    let problem = RwSignal::new(None::<Error>);
    leptos::task::spawn_local(async move {
        match api::get::<Me>("/api/team/me").await {
            Ok(me) => console.me.set(Some(me)),
            Err(Error::SignedOut) => {}
            Err(error) => problem.set(Some(error)),
        }
        checked.set(true);
    });
    view! {
        <div class="console">
            <header class="bar">
                <span class="brand">"Attune console"</span>
                <Nav />
                <Account />
            </header>
            <main id="main">
                {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
                {move || {
                    if !checked.get() {
                        return view! { <p class="muted">"Checking your session…"</p> }.into_any();
                    }
                    match (console.me.get(), console.unlocked.get()) {
                        (None, _) => match console.invite.get() {
                            Some(token) => view! { <signin::Register token=token /> }.into_any(),
                            None => view! { <signin::SignIn /> }.into_any(),
                        },
                        (Some(_), None) => view! { <key::OpenKey /> }.into_any(),
                        (Some(_), Some(unlocked)) => screen(console.page.get(), unlocked),
                    }
                }}
            </main>
        </div>
    }
}

fn screen(page: Page, unlocked: Unlocked) -> AnyView {
    match page {
        Page::Overview => view! { <overview::Overview unlocked=unlocked /> }.into_any(),
        Page::Safeguarding => view! { <safeguarding::Safeguarding unlocked=unlocked /> }.into_any(),
        Page::Participants => view! { <participants::List unlocked=unlocked /> }.into_any(),
        Page::Participant(id) => {
            view! { <participants::Timeline unlocked=unlocked participant=id /> }.into_any()
        }
        Page::Conflicts => view! { <conflicts::Conflicts unlocked=unlocked /> }.into_any(),
        Page::Withdrawals => view! { <withdrawals::Withdrawals unlocked=unlocked /> }.into_any(),
        Page::Protocol => view! { <protocol::ProtocolScreen unlocked=unlocked /> }.into_any(),
        Page::Export => view! { <export::Export unlocked=unlocked /> }.into_any(),
        Page::Team => view! { <team::Team /> }.into_any(),
        Page::Devices => view! { <devices::Devices unlocked=unlocked /> }.into_any(),
    }
}

/// The screens, once the study is open.
#[component]
fn Nav() -> impl IntoView {
    let console = expect_context::<Console>();
    move || {
        console.unlocked.with(Option::is_some).then(|| {
            let mut pages = vec![
                Page::Overview,
                Page::Safeguarding,
                Page::Participants,
                Page::Conflicts,
                Page::Withdrawals,
                Page::Export,
            ];
            if console
                .me
                .with(|me| me.as_ref().is_some_and(|m| m.role == Role::Admin))
            {
                pages.push(Page::Devices);
                pages.push(Page::Protocol);
                pages.push(Page::Team);
            }
            let current = console.page.get();
            view! {
                <nav aria-label="Screens">
                    {pages
                        .iter()
                        .map(|page| {
                            let target = page.clone();
                            let here = current.label() == page.label();
                            let waiting = (*page == Page::Safeguarding)
                                .then(|| console.unlocked.with(|u| u.as_ref().map_or(0, |u| u.study.unacknowledged())))
                                .filter(|n| *n > 0);
                            view! {
                                <button
                                    class="nav"
                                    aria-current=here.then_some("page")
                                    on:click=move |_| console.go(target.clone())
                                >
                                    {page.label()}
                                    {waiting.map(|n| view! {
                                        <span class="visually-hidden">", "</span>
                                        <span class="nav-count" data-testid="nav-unacknowledged">{n}</span>
                                        <span class="visually-hidden">" not acknowledged"</span>
                                    })}
                                </button>
                            }
                        })
                        .collect_view()}
                </nav>
            }
        })
    }
}

/// Who is signed in, closing the key, signing out.
#[component]
fn Account() -> impl IntoView {
    let console = expect_context::<Console>();
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            // Whatever the server says, this page forgets the key and the member.
            let _ = api::post_empty("/api/team/logout").await;
            console.unlocked.set(None);
            console.me.set(None);
        });
    };
    move || {
        console.me.get().map(|me| {
            view! {
                <div class="account">
                    <span data-testid="member">{format!("{} ({})", me.name, me.role.label())}</span>
                    {move || console.unlocked.with(Option::is_some).then(|| view! {
                        <button class="secondary" on:click=move |_| console.unlocked.set(None)>
                            "Close the key"
                        </button>
                    })}
                    <button class="secondary" on:click=sign_out>"Sign out"</button>
                </div>
            }
        })
    }
}

/// The invitation token in the link's fragment (`#invite=TOKEN`), if any.
fn invitation_token() -> Option<String> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let token = hash.strip_prefix("#invite=")?.trim();
    (!token.is_empty()).then(|| token.to_owned())
}
