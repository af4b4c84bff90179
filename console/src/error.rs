//! The console's one error type: its `Display` is what the researcher reads.

use std::fmt;

use attune_core::sync::api::{ErrorBody, ErrorCode};

/// Something the console could not do.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The server could not be reached.
    Offline,
    /// The session ended (expired, signed out elsewhere): sign in again.
    SignedOut,
    /// The signed-in member's role does not allow this.
    Forbidden,
    /// The server refused, in its words.
    Refused {
        /// The code, for decisions.
        code: ErrorCode,
        /// The server's sentence.
        message: String,
    },
    /// The server answered something this console cannot read.
    Unreadable(String),
    /// The passkey ceremony in the browser did not finish.
    Passkey(String),
    /// The study key file did not open.
    Key(String),
    /// A recording could not be fetched or opened.
    Recording(String),
    /// What was typed or chosen in a form cannot be used (the sentence says what to do).
    Form(String),
    /// The export could not be built or offered (e.g. too large for a zip).
    Export(String),
    /// The study key file has no signing key (version 1): the team cannot sign records.
    NoSigningKey,
    /// A team record could not be sealed or signed in the page.
    Seal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Offline => f.write_str(
                "The research server cannot be reached. Check the connection and try again.",
            ),
            Error::SignedOut => f.write_str("Your session has ended. Sign in again."),
            Error::Forbidden => {
                f.write_str("Your role in the study team does not allow this. Ask a study admin.")
            }
            Error::Refused { message, .. } => f.write_str(message),
            Error::Unreadable(what) => write!(f, "The server's answer could not be read: {what}"),
            Error::Passkey(why) | Error::Key(why) | Error::Form(why) => f.write_str(why),
            Error::Recording(why) => write!(f, "The recording cannot be played: {why}"),
            Error::Export(why) => write!(f, "The export could not be built: {why}"),
            Error::NoSigningKey => f.write_str(
                "This study key file is version 1: it has no signing key, so nothing can be \
                 signed with it. Ask a study admin to run `attune-server study upgrade-key`, \
                 then open the new key file.",
            ),
            Error::Seal(why) => write!(f, "This could not be sealed in the page: {why}"),
        }
    }
}

impl Error {
    /// From a refusal's status and body.
    pub fn from_response(status: u16, body: &str) -> Self {
        match (status, serde_json::from_str::<ErrorBody>(body)) {
            (401, _) => Error::SignedOut,
            (403, Ok(body)) if body.error == ErrorCode::Forbidden => Error::Forbidden,
            (_, Ok(body)) => Error::Refused {
                code: body.error,
                message: body.message,
            },
            (_, Err(_)) => Error::Unreadable(format!("status {status}")),
        }
    }
}
