//! The Flight handshake: how ADBC and JDBC drivers log in with a user name and password.
//! With tenants configured, `authorization: Basic base64(tenant:token)` (or a valid
//! `Bearer`) answers with `authorization: Bearer <token>`, which the driver then sends on
//! every call; without tenants the handshake echoes its payload.
use super::Out;
use crate::auth::tenants::strip_scheme;
use crate::auth::Tenants;
use arrow_flight::{HandshakeRequest, HandshakeResponse};
use dbpool_core::Error;
use futures::StreamExt;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

/// Answers a handshake; `tenants` is `None` when every caller is trusted.
pub async fn handshake(
    tenants: Option<&Tenants>,
    req: Request<Streaming<HandshakeRequest>>,
) -> Result<Response<Out<HandshakeResponse>>, Status> {
    let bearer = match tenants {
        None => None,
        Some(t) => Some(credentials(t, req.metadata())?),
    };
    let mut input = req.into_inner();
    let first = input.message().await?.unwrap_or_default();
    let reply = HandshakeResponse {
        protocol_version: first.protocol_version,
        payload: first.payload,
    };
    let mut response = Response::new(futures::stream::once(async { Ok(reply) }).boxed());
    if let Some(token) = bearer {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Error::Unauthenticated("the token is not a header value".into()))?;
        response.metadata_mut().insert("authorization", value);
    }
    Ok(response)
}

/// The bearer token the client is to send from now on.
fn credentials(t: &Tenants, md: &tonic::metadata::MetadataMap) -> Result<String, Error> {
    let value = md
        .get("authorization")
        .ok_or_else(|| {
            Error::Unauthenticated(
                "no credentials: the handshake needs `authorization: Basic \
                 base64(<tenant>:<token>)` (a driver's username and password) or a Bearer token"
                    .into(),
            )
        })?
        .to_str()
        .map_err(|_| Error::Unauthenticated("the authorization header is not text".into()))?;
    if let Some(token) = strip_scheme(value, "bearer") {
        t.bearer(token)?;
        return Ok(token.to_string());
    }
    Ok(t.basic(value)?.1)
}
