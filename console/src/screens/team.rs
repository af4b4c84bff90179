//! Team (study admins): invite a member, see who is in the team, read the audit log.

use attune_core::team::{AuditEntry, Invitation, MemberSummary, NewInvitation, Role};
use leptos::prelude::*;

use crate::api;
use crate::error::Error;
use crate::study::when;

/// The team screen.
#[component]
pub fn Team() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let members = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<MemberSummary>>("/api/team/members")
    });
    let audit = LocalResource::new(move || {
        refresh.track();
        api::get::<Vec<AuditEntry>>("/api/team/audit")
    });
    view! {
        <section>
            <h1>"Team"</h1>
            <Invite on_invited=move || refresh.update(|n| *n += 1) />
            <div class="card">
                <h2>"Members"</h2>
                {move || members.get().map(|answer| match answer {
                    Ok(list) => view! {
                        <table>
                            <thead><tr><th scope="col">"Name"</th><th scope="col">"Role"</th><th scope="col">"Joined"</th><th scope="col">"Last sign-in"</th><th scope="col">"Passkeys"</th></tr></thead>
                            <tbody>{list.into_iter().map(|m| view! {
                                <tr>
                                    <th scope="row">{m.name}</th>
                                    <td>{m.role.label()}</td>
                                    <td>{when(m.created_at)}</td>
                                    <td>{m.last_sign_in.map(when).unwrap_or_else(|| "never".into())}</td>
                                    <td>{m.passkeys}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                })}
            </div>
            <div class="card">
                <h2>"Audit log"</h2>
                {move || audit.get().map(|answer| match answer {
                    Ok(entries) => view! {
                        <table data-testid="audit">
                            <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th><th scope="col">"Details"</th></tr></thead>
                            <tbody>{entries.into_iter().take(200).map(|e| view! {
                                <tr>
                                    <td>{when(e.at)}</td>
                                    <td>{e.member.unwrap_or_else(|| "-".into())}</td>
                                    <td>{e.action.replace('_', " ")}</td>
                                    <td>{e.detail}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                })}
            </div>
        </section>
    }
}

/// The invitation form and, once made, the link to send.
#[component]
fn Invite(on_invited: impl Fn() + Copy + 'static) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Researcher);
    let made = RwSignal::new(None::<Invitation>);
    let problem = RwSignal::new(None::<Error>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let who = name.get_untracked().trim().to_owned();
        if who.is_empty() {
            problem.set(Some(Error::Passkey(
                "Type the name of the person you invite.".into(),
            )));
            return;
        }
        problem.set(None);
        let body = NewInvitation {
            role: role.get_untracked(),
            name: who,
        };
        leptos::task::spawn_local(async move {
            match api::post::<_, Invitation>("/api/team/invitations", &body).await {
                Ok(invitation) => {
                    made.set(Some(invitation));
                    name.set(String::new());
                    on_invited();
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    view! {
        <div class="card">
            <h2>"Invite someone"</h2>
            <form on:submit=submit>
                <label for="invite-name">"Their name"</label>
                <input id="invite-name" type="text" maxlength="100"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                <fieldset class="roles">
                    <legend>"Role"</legend>
                    {[Role::Researcher, Role::Coder, Role::Admin].into_iter().map(|r| view! {
                        <label class="choice">
                            <input type="radio" name="invite-role"
                                prop:checked=move || role.get() == r
                                on:change=move |_| role.set(r) />
                            {r.label()}
                        </label>
                    }).collect_view()}
                </fieldset>
                <button class="primary" type="submit">"Make an invitation link"</button>
            </form>
            {move || problem.get().map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
            {move || made.get().map(|invitation| view! {
                <div class="notice" role="status">
                    <p>{format!(
                        "Send this link to {} ({}). It works once, until {}.",
                        invitation.name, invitation.role.label(), when(invitation.expires_at)
                    )}</p>
                    <p><code data-testid="invitation-link">{format!("{origin}{}", invitation.link_path)}</code></p>
                </div>
            })}
        </div>
    }
}
