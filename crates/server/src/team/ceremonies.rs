//! The passkey ceremonies' handlers.

use attune_core::team::{CeremonyOptions, Me};
use axum::Json;

use crate::error::AppError;

pub async fn register_start() -> Result<Json<CeremonyOptions>, AppError> {
    Err(AppError::NotFound {
        path: "/api/team/register/start".into(),
    })
}
pub async fn register_finish() -> Result<Json<Me>, AppError> {
    Err(AppError::NotFound {
        path: "/api/team/register/finish".into(),
    })
}
pub async fn login_start() -> Result<Json<CeremonyOptions>, AppError> {
    Err(AppError::NotFound {
        path: "/api/team/login/start".into(),
    })
}
pub async fn login_finish() -> Result<Json<Me>, AppError> {
    Err(AppError::NotFound {
        path: "/api/team/login/finish".into(),
    })
}
