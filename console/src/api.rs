//! The console's calls to the research server: JSON in and out, refusals as [`Error`]s.
//! Same-origin `fetch` sends the session cookie and an `Origin` header, which the server's
//! cross-site check requires on every change.

use gloo_net::http::{Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

async fn read<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let status = response.status();
    if !(200..300).contains(&status) {
        let body = response.text().await.unwrap_or_default();
        return Err(Error::from_response(status, &body));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| Error::Unreadable(e.to_string()))
}

/// `GET path` answered with JSON.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Error> {
    let response = Request::get(path)
        .send()
        .await
        .map_err(|_| Error::Offline)?;
    read(response).await
}

/// `POST path` with a JSON body, answered with JSON.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, Error> {
    let response = Request::post(path)
        .json(body)
        .map_err(|e| Error::Unreadable(e.to_string()))?
        .send()
        .await
        .map_err(|_| Error::Offline)?;
    read(response).await
}

/// `POST path` with no answer body expected (sign-out).
pub async fn post_empty(path: &str) -> Result<(), Error> {
    let response = Request::post(path)
        .send()
        .await
        .map_err(|_| Error::Offline)?;
    let status = response.status();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let body = response.text().await.unwrap_or_default();
        Err(Error::from_response(status, &body))
    }
}

/// `GET path` answered with bytes (a sealed recording).
pub async fn get_bytes(path: &str) -> Result<Vec<u8>, Error> {
    let response = Request::get(path)
        .send()
        .await
        .map_err(|_| Error::Offline)?;
    let status = response.status();
    if !(200..300).contains(&status) {
        let body = response.text().await.unwrap_or_default();
        return Err(Error::from_response(status, &body));
    }
    response
        .binary()
        .await
        .map_err(|e| Error::Unreadable(e.to_string()))
}
