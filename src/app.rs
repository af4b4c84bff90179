//! The app root: shell state, top bar and routes.

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::top_bar::TopBar;
use crate::features::home::HomePage;
use crate::features::settings::SettingsPage;

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    crate::pwa::provide_shell();
    view! {
        <Router>
            <TopBar />
            <main id="main" class="page">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=HomePage />
                    <Route path=path!("/settings") view=SettingsPage />
                </Routes>
            </main>
        </Router>
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
