//! IndexedDB requests and transactions as futures, and browser errors as [`StoreError`]s.
//!
//! Every request and transaction gets its event handlers the moment it is created, as the
//! resolve function of a promise. A request that finishes before the code awaits it (several
//! requests issued at once) is therefore never missed, and no Rust closure has to outlive
//! anything. Awaiting continues in a microtask, while the transaction is still active, so a
//! transaction can do several dependent requests.

use attune_core::StoreError;
use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, Event, IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

/// The start of the message of every "connection closed" error (see [`closed_error`]).
const CLOSED_PREFIX: &str = "IndexedDB connection closed";

#[wasm_bindgen]
extern "C" {
    /// `IDBDatabase` with the options argument of `transaction()`, which web-sys only has
    /// behind `--cfg web_sys_unstable_apis`.
    #[wasm_bindgen(extends = IdbDatabase, js_name = IDBDatabase)]
    type DatabaseWithOptions;

    #[wasm_bindgen(catch, method, js_name = transaction)]
    fn transaction_with_options(
        this: &DatabaseWithOptions,
        store_names: &Array,
        mode: IdbTransactionMode,
        options: &Object,
    ) -> Result<IdbTransaction, JsValue>;

    /// `IDBTransaction` with `commit()`, which web-sys marks deprecated although it is
    /// standard (Indexed Database API 3.0).
    #[wasm_bindgen(extends = IdbTransaction, js_name = IDBTransaction)]
    type TransactionWithCommit;

    #[wasm_bindgen(catch, method, js_name = commit)]
    fn commit_now(this: &TransactionWithCommit) -> Result<(), JsValue>;
}

/// A promise resolved with the first event `listen` routes to it.
fn first_event(listen: impl FnOnce(&js_sys::Function)) -> Promise {
    let mut listen = Some(listen);
    Promise::new(&mut |resolve, _reject| {
        if let Some(listen) = listen.take() {
            listen(&resolve);
        }
    })
}

/// A request being waited for.
pub(crate) struct Pending {
    request: IdbRequest,
    settled: Promise,
}

impl Pending {
    /// Starts watching `request` (call it right after making the request).
    pub(crate) fn new(request: IdbRequest) -> Self {
        let settled = first_event(|resolve| {
            request.set_onsuccess(Some(resolve));
            // Not cancelled: a failed request also aborts its transaction, which is what
            // every caller here wants.
            request.set_onerror(Some(resolve));
        });
        Self { request, settled }
    }

    /// The request's result, or its error (a `DOMException`).
    pub(crate) async fn result(self) -> Result<JsValue, JsValue> {
        // The promise never rejects: both handlers resolve it.
        let _event = JsFuture::from(self.settled).await;
        self.request.set_onsuccess(None);
        self.request.set_onerror(None);
        match self.request.error() {
            Ok(None) => self.request.result(),
            Ok(Some(error)) => Err(error.into()),
            Err(error) => Err(error),
        }
    }
}

/// Which kind of transaction to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read only.
    Read,
    /// Read and write, with `durability: "strict"`: the transaction completes only once the
    /// browser has flushed it to disk, so "saved" survives a power cut.
    WriteStrict,
}

/// A transaction and the promise of its end (`complete` or `abort`).
pub(crate) struct Tx {
    tx: IdbTransaction,
    finished: Promise,
}

impl Tx {
    /// Starts a transaction over `stores`.
    pub(crate) fn start(db: &IdbDatabase, stores: &[&str], mode: Mode) -> Result<Self, JsValue> {
        let names: Array = stores.iter().map(|name| JsValue::from_str(name)).collect();
        let tx = match mode {
            Mode::Read => {
                db.transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readonly)?
            }
            Mode::WriteStrict => {
                let options = Object::new();
                Reflect::set(&options, &"durability".into(), &"strict".into())?;
                db.unchecked_ref::<DatabaseWithOptions>()
                    .transaction_with_options(&names, IdbTransactionMode::Readwrite, &options)?
            }
        };
        let finished = first_event(|resolve| {
            tx.set_oncomplete(Some(resolve));
            tx.set_onabort(Some(resolve));
        });
        Ok(Self { tx, finished })
    }

    /// One of the transaction's object stores.
    pub(crate) fn store(&self, name: &str) -> Result<web_sys::IdbObjectStore, JsValue> {
        self.tx.object_store(name)
    }

    /// Rolls back everything this transaction did (used when a write is refused, or when a
    /// write transaction turned out to have nothing to write).
    pub(crate) fn abort(self) {
        // Fails only if the transaction already finished, and then there is nothing to undo.
        let _ = self.tx.abort();
        self.tx.set_oncomplete(None);
        self.tx.set_onabort(None);
    }

    /// Waits until the transaction has committed: its `complete` event, which for a strict
    /// transaction means the data is on disk.
    ///
    /// # Errors
    /// Why it aborted (e.g. `QuotaExceededError`).
    pub(crate) async fn commit(self) -> Result<(), JsValue> {
        // Ends the transaction now rather than when the browser notices it is idle. Older
        // browsers lack commit(); they commit automatically, so the error is ignored.
        let _ = self
            .tx
            .unchecked_ref::<TransactionWithCommit>()
            .commit_now();
        let event = JsFuture::from(self.finished).await?;
        self.tx.set_oncomplete(None);
        self.tx.set_onabort(None);
        let completed = event
            .dyn_ref::<Event>()
            .is_some_and(|event| event.type_() == "complete");
        if completed {
            Ok(())
        } else {
            Err(match self.tx.error() {
                Some(error) => error.into(),
                // Aborted without an error: only abort() does that, and nothing here calls
                // it before commit(), so the browser must have closed the connection.
                None => DomException::new_with_message_and_name(
                    "the transaction was aborted",
                    "AbortError",
                )?
                .into(),
            })
        }
    }
}

/// `name: message` of a JS error or `DOMException`, or its string form.
pub(crate) fn describe(error: &JsValue) -> String {
    if let Some(exception) = error.dyn_ref::<DomException>() {
        format!("{}: {}", exception.name(), exception.message())
    } else if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        format!(
            "{}: {}",
            String::from(error.name()),
            String::from(error.message())
        )
    } else if let Some(text) = error.as_string() {
        text
    } else {
        format!("{error:?}")
    }
}

/// The "connection closed" error for `detail`.
pub(crate) fn closed_error(detail: &str) -> StoreError {
    StoreError::Backend(format!(
        "{CLOSED_PREFIX} ({detail}); reopen the store and retry"
    ))
}

/// Whether `error` says the database connection was closed.
pub(crate) fn is_closed(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(message) if message.starts_with(CLOSED_PREFIX))
}

/// Maps a browser error from operation `what` to a [`StoreError`].
///
/// - `QuotaExceededError`: the device is full, [`StoreError::QuotaExceeded`].
/// - `InvalidStateError` (a transaction on a closed connection), a transaction-level
///   `AbortError` (the browser closed the connection under it), and WebKit's "Connection to
///   Indexed Database server lost": the connection is gone but reopening works, so they
///   become the recognisable [`closed_error`].
/// - Anything else: [`StoreError::Backend`] with the operation, name and message.
pub(crate) fn store_error(what: &str, error: &JsValue) -> StoreError {
    if let Some(exception) = error.dyn_ref::<DomException>() {
        let (name, message) = (exception.name(), exception.message());
        match name.as_str() {
            "QuotaExceededError" => return StoreError::QuotaExceeded,
            "InvalidStateError" | "AbortError" => {
                return closed_error(&format!("{what}: {name}: {message}"));
            }
            "UnknownError" if message.contains("server lost") => {
                return closed_error(&format!("{what}: {name}: {message}"));
            }
            _ => {}
        }
    }
    StoreError::Backend(format!("IndexedDB {what} failed: {}", describe(error)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_browser);

    fn exception(name: &str) -> JsValue {
        DomException::new_with_message_and_name("test message", name)
            .expect("DOMException constructor")
            .into()
    }

    #[wasm_bindgen_test]
    fn a_full_device_is_reported_as_storage_full() {
        assert_eq!(
            store_error("put_revision", &exception("QuotaExceededError")),
            StoreError::QuotaExceeded
        );
    }

    #[wasm_bindgen_test]
    fn a_closed_connection_is_recognisable() {
        for name in ["InvalidStateError", "AbortError"] {
            let error = store_error("put_revision", &exception(name));
            assert!(is_closed(&error), "{name}: {error}");
        }
        let lost = DomException::new_with_message_and_name(
            "Connection to Indexed Database server lost. Refresh the page to try again",
            "UnknownError",
        )
        .expect("DOMException constructor");
        assert!(is_closed(&store_error("latest", &lost.into())));
    }

    #[wasm_bindgen_test]
    fn other_errors_name_the_operation_and_the_cause() {
        let error = store_error("history", &exception("DataError"));
        assert_eq!(
            error,
            StoreError::Backend("IndexedDB history failed: DataError: test message".into())
        );
        assert!(!is_closed(&error));
        let plain = store_error("chunk", &js_sys::Error::new("boom").into());
        assert_eq!(
            plain,
            StoreError::Backend("IndexedDB chunk failed: Error: boom".into())
        );
    }
}
