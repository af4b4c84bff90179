//! The app root: shell state, the lock, the top bar and routes.

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::top_bar::TopBar;
use crate::features::child::ChildRoot;
use crate::features::child::summary::{ChildSummaryPage, HandOverPage};
use crate::features::fieldwork::consent::ConsentPage;
use crate::features::fieldwork::copy::ConsentCopyPage;
use crate::features::fieldwork::interview::InterviewPage;
use crate::features::fieldwork::participants::{
    NewParticipantPage, ParticipantPage, ParticipantsPage,
};
use crate::features::fieldwork::visits::{
    CloseVisitPage, ReflectionsPage, StartVisitPage, VisitPage,
};
use crate::features::home::HomePage;
use crate::features::lock::LockScreen;
use crate::features::notebook::{NotePage, NotebookPage};
use crate::features::settings::SettingsPage;
use crate::features::sync::SyncPage;
use crate::features::sync::runner::SyncRunner;
use crate::session::{LockState, Sessions};

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    crate::pwa::provide_shell();
    let sessions = Sessions::provide();
    SyncRunner::provide(sessions);
    // Child mode (a flag kept for this tab): while on, no top bar and no route but the
    // child's screens, whatever the address.
    let child = crate::features::child::provide();
    let child_mode = Memo::new(move |_| child.active());
    // Which screen family to show. Only a change between locked and unlocked re-renders, so
    // typing never rebuilds the routes; locking unmounts every screen with decrypted data.
    let unlocked = Memo::new(move |_| matches!(sessions.state(), LockState::Unlocked(_)));
    view! {
        <Router>
            <Show when=move || !child_mode.get()>
                <TopBar />
            </Show>
            <main id="main" class="page">
                {move || if unlocked.get() && child_mode.get() {
                    view! { <ChildRoot /> }.into_any()
                } else if unlocked.get() {
                    view! {
                        <Routes fallback=NotFound>
                            <Route path=path!("/") view=HomePage />
                            <Route path=path!("/participants") view=ParticipantsPage />
                            <Route path=path!("/participants/new") view=NewParticipantPage />
                            <Route path=path!("/participants/:id") view=ParticipantPage />
                            <Route path=path!("/participants/:id/consent/:record") view=ConsentCopyPage />
                            <Route path=path!("/visits/new") view=StartVisitPage />
                            <Route path=path!("/visits/:visit") view=VisitPage />
                            <Route path=path!("/visits/:visit/consent/:participant") view=ConsentPage />
                            <Route path=path!("/visits/:visit/interview/:participant") view=InterviewPage />
                            <Route path=path!("/visits/:visit/reflections") view=ReflectionsPage />
                            <Route path=path!("/visits/:visit/close") view=CloseVisitPage />
                            <Route path=path!("/visits/:visit/child/:participant") view=HandOverPage />
                            <Route path=path!("/visits/:visit/child/:participant/summary") view=ChildSummaryPage />
                            <Route path=path!("/notes") view=NotebookPage />
                            <Route path=path!("/notes/:id") view=NotePage />
                            <Route path=path!("/settings") view=SettingsPage />
                            <Route path=path!("/sync") view=SyncPage />
                        </Routes>
                    }.into_any()
                } else {
                    view! { <Locked /> }.into_any()
                }}
            </main>
        </Router>
    }
}

/// The lock screen, or why storage cannot be used.
#[component]
fn Locked() -> impl IntoView {
    let sessions = crate::session::use_sessions();
    move || match sessions.state() {
        LockState::Locked(profiles) => view! { <LockScreen profiles=profiles /> }.into_any(),
        LockState::Unavailable(message) => view! {
            <section class="panel">
                <h1>"Attune cannot store data here"</h1>
                <p class="notice error" role="alert">{message}</p>
            </section>
        }
        .into_any(),
        _ => view! { <p class="loading" data-testid="loading">"Opening Attune..."</p> }.into_any(),
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="panel">
            <h1>"This page does not exist"</h1>
            <p>"Nothing was lost: everything you saved is still on this tablet."</p>
            <a class="button primary" href="/">"Go to the home screen"</a>
        </section>
    }
}
