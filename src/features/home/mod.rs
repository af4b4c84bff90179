//! Home: the study dashboard (progress against the protocol's targets, visits), whether the
//! tablet is ready, and the first action: "Start visit".

use std::collections::HashSet;

use attune_core::fieldwork::progress;
use leptos::prelude::*;

use crate::features::fieldwork::data;
use crate::features::fieldwork::visits::visit_title;
use crate::pwa::{OfflineReadiness, use_shell, use_storage_status};
use crate::session::use_sessions;

/// The first screen after unlocking.
#[component]
pub fn HomePage() -> impl IntoView {
    let shell = use_shell();
    let storage = use_storage_status();
    let sessions = use_sessions();
    let protocol = crate::protocol::current();
    let overview = LocalResource::new(move || async move {
        let session = sessions.current().ok_or("Locked")?;
        let participants = data::participants(&session).await?;
        let visits = data::visits(&session).await?;
        let (consented, interviewed) =
            data::consented_and_interviewed(&session, &participants).await?;
        let bodies: Vec<_> = participants
            .iter()
            .map(|p| (p.id, p.body.clone()))
            .collect();
        let rows = progress(protocol, &bodies, &consented, &interviewed, &HashSet::new());
        Ok::<_, String>((rows, visits))
    });
    let offline_line = move || match shell.offline_ready.get() {
        OfflineReadiness::Ready => (
            "ok",
            "Works with no signal: the app is saved on this tablet.",
        ),
        OfflineReadiness::Preparing => (
            "wait",
            "Saving the app for offline use... keep this page open.",
        ),
        OfflineReadiness::Unsupported => (
            "warn",
            "This browser cannot keep the app offline. Use Chrome, Edge or Safari.",
        ),
    };
    let storage_line = move || match storage.get() {
        None => ("wait", "Checking storage..."),
        Some(s) if s.persisted => (
            "ok",
            "Your work is kept: the browser will not clear it to save space.",
        ),
        Some(_) => (
            "warn",
            "The browser may clear stored work when space runs low. Sync often.",
        ),
    };
    // Feature detection: only iOS and iPadOS say whether the app runs from the Home Screen.
    let home_screen_line = crate::pwa::added_to_home_screen().map(|added| {
        if added {
            (
                "ok",
                "Opened from the Home Screen: Safari keeps your work on this iPad.",
            )
        } else {
            (
                "warn",
                "Add Attune to the Home Screen: tap Share, then Add to Home Screen, and open it \
                 from there. In a Safari tab, work not opened for 7 days may be cleared.",
            )
        }
    });
    view! {
        <section class="hero" data-testid="home">
            <p class="eyebrow">"Attune"</p>
            <h1>{protocol.title.clone()}</h1>
            <p class="lead">
                "Record consent, interview notes and children's activities on this tablet, with or without signal. "
                "Everything stays encrypted here until you sync it to your research team."
            </p>
        </section>
        <Suspense fallback=|| view! { <p>"Opening..."</p> }>
            {move || overview.get().map(|r| match r {
                Err(message) => view! { <p class="notice error" role="alert">{message}</p> }.into_any(),
                Ok((rows, visits)) => view! {
                    <section class="panel" aria-labelledby="progress-heading">
                        <h2 id="progress-heading">"Progress"</h2>
                        <table class="progress">
                            <thead><tr><th scope="col">"Group"</th><th scope="col">"Recruited"</th><th scope="col">"Consented"</th><th scope="col">"Interviewed"</th></tr></thead>
                            <tbody>
                                {rows.into_iter().map(|g| view! {
                                    <tr data-testid=format!("progress-{}", g.group_id)>
                                        <th scope="row">{g.name.clone()}</th>
                                        <td data-label="Recruited">{format!("{} of {}", g.recruited, g.target)}</td>
                                        <td data-label="Consented">{g.consented.to_string()}</td>
                                        <td data-label="Interviewed">{g.interviewed.to_string()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                    <section class="panel" aria-labelledby="visits-heading">
                        <h2 id="visits-heading">"Visits"</h2>
                        {if visits.is_empty() {
                            view! { <p class="empty">"No visits yet."</p> }.into_any()
                        } else {
                            view! { <ul class="rows">{visits.into_iter().map(|v| {
                                let closed = v.body.closed.is_some();
                                view! { <li><a href=format!("/visits/{}", v.id)>
                                    <span>{visit_title(&v)}</span>
                                    <span class="status">{if closed { "Closed" } else { "Open" }}</span>
                                </a></li> }
                            }).collect_view()}</ul> }.into_any()
                        }}
                    </section>
                }.into_any(),
            })}
        </Suspense>
        <section class="panel readiness" aria-labelledby="ready-heading">
            <h2 id="ready-heading">"Is this tablet ready for a visit?"</h2>
            <ul class="checklist">
                <li class=move || offline_line().0 data-testid="offline-readiness">{move || offline_line().1}</li>
                <li class=move || storage_line().0 data-testid="storage-persistence">{move || storage_line().1}</li>
                {home_screen_line.map(|(class, text)| view! {
                    <li class=class data-testid="home-screen">{text}</li>
                })}
            </ul>
        </section>
        <div class="actions">
            <a class="button" href="/sync">"Sync"</a>
            <a class="button primary" href="/visits/new">"Start visit"</a>
        </div>
    }
}
