//! `use_autosave`: saves what the fieldworker types, at once and then throttled, and says so.
//!
//! The policy (first change at once, one write in flight, latest text after it, retries with
//! growing delays) is `attune_core::Autosave`; this hook does the I/O around it. Its state is
//! reference-counted rather than owned by the component, so a write still in flight, and the
//! flush when the screen is left, complete after the screen is gone.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use attune_core::{Autosave, SaveAction, SaveStatus, Timestamp};
use leptos::prelude::*;

type SaveFuture = Pin<Box<dyn Future<Output = Result<Timestamp, String>>>>;

struct Inner {
    machine: Autosave,
    save: Box<dyn Fn() -> SaveFuture>,
    status: RwSignal<SaveStatus>,
    /// The screen is gone: keep saving, but stop updating its (disposed) indicator.
    detached: bool,
}

/// Handle returned by [`use_autosave`]; cheap to clone into event handlers.
#[derive(Clone)]
pub struct Autosaver(Rc<RefCell<Inner>>);

impl Autosaver {
    /// Call after every change of the text.
    pub fn changed(&self) {
        let action = self.0.borrow_mut().machine.edited();
        self.act(action);
    }

    /// Writes anything not yet written (blur, page hide, leaving the screen).
    pub fn flush(&self) {
        let action = self.0.borrow_mut().machine.flush();
        self.act(action);
    }

    /// What to show: saving, saved at, or not saved and why.
    pub fn status(&self) -> RwSignal<SaveStatus> {
        self.0.borrow().status
    }

    fn publish(&self) {
        let inner = self.0.borrow();
        if !inner.detached {
            inner.status.try_set(inner.machine.status().clone());
        }
    }

    fn act(&self, action: SaveAction) {
        self.publish();
        match action {
            SaveAction::Write { edit } => {
                // The save closure takes its snapshot of the text now, synchronously.
                let write = (self.0.borrow().save)();
                let this = self.clone();
                leptos::task::spawn_local(async move {
                    let result = write.await;
                    let next = this.0.borrow_mut().machine.write_finished(edit, result);
                    this.act(next);
                });
            }
            SaveAction::RetryAfter { millis } => {
                let this = self.clone();
                set_timeout(
                    move || {
                        let next = this.0.borrow_mut().machine.retry();
                        this.act(next);
                    },
                    std::time::Duration::from_millis(u64::from(millis)),
                );
            }
            SaveAction::Nothing => {}
        }
    }
}

/// Autosave for one document. `save` must snapshot the current text when called and return
/// the write of that snapshot, resolving to the time it was stored.
pub fn use_autosave<F, Fut>(save: F) -> Autosaver
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Result<Timestamp, String>> + 'static,
{
    let saver = Autosaver(Rc::new(RefCell::new(Inner {
        machine: Autosave::new(),
        save: Box::new(move || Box::pin(save())),
        status: RwSignal::new(SaveStatus::Idle),
        detached: false,
    })));
    // A tablet can be put to sleep, switched away from or closed at any moment: write now.
    let on_hide = {
        let s = saver.clone();
        window_event_listener(leptos::ev::pagehide, move |_| s.flush())
    };
    let on_visibility = {
        let s = saver.clone();
        window_event_listener(leptos::ev::visibilitychange, move |_| {
            if document().visibility_state() == web_sys::VisibilityState::Hidden {
                s.flush();
            }
        })
    };
    // The browser runs on one thread; the wrapper only satisfies `on_cleanup`'s bound.
    let on_leave = send_wrapper::SendWrapper::new(saver.clone());
    on_cleanup(move || {
        on_leave.0.borrow_mut().detached = true;
        on_leave.flush();
        on_hide.remove();
        on_visibility.remove();
    });
    saver
}
