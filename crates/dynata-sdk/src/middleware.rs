//! The authentication step on its own, for a `reqwest-middleware` stack of
//! your own (feature `middleware`).

use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::Client;

/// Adds `Authorization: Bearer <token>` (sensitive) to every request, and on
/// a `401` invalidates the token (only if it is still the current one) and
/// sends the request once more with a new token. A request whose body cannot
/// be replayed is not retried: its `401` response is returned.
///
/// ```no_run
/// # fn demo(client: dynata_sdk::Client) {
/// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(dynata_sdk::AuthMiddleware::new(client))
///     .build();
/// # let _ = http;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    client: Client,
}

impl AuthMiddleware {
    /// Authenticates requests with `client`'s session.
    pub fn new(client: Client) -> Self {
        AuthMiddleware { client }
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let replay = request.try_clone();
        let token = self
            .client
            .authorize(&mut request)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.client.invalidate(&token);
        let Some(mut replay) = replay else {
            return Ok(response);
        };
        self.client
            .authorize(&mut replay)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        next.run(replay, extensions).await
    }
}
