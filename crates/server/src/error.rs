//! One error type for every API response, rendered as `{"error": code, "message": text}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API failure, as a client sees it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No endpoint exists at this path.
    #[error("No API endpoint at {path}")]
    NotFound { path: String },
    /// The database failed; details go to the log, not to the client.
    #[error("The database is unavailable")]
    Database(#[from] sqlx::Error),
}

impl AppError {
    /// Stable machine-readable code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound { .. } => "not_found",
            AppError::Database(_) => "database_unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Database(err) = &self {
            tracing::error!(error = %err, "database error");
        }
        let body = json!({ "error": self.code(), "message": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
