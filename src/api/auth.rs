//! Who is calling: every API request carries an API key or a JWT bearer
//! token, and the [`Principal`] extractor turns it into a tenant and scopes
//! before a handler runs. Handlers take the tenant only from here, never
//! from the request, which is what keeps tenants apart.
//!
//! API keys are compared by their sha256 (the config holds no secret); JWTs
//! are verified against the configured keys (signature, `exp`, and `iss` /
//! `aud` when configured) and must name a configured tenant.

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::config::{ConfigError, JwtAlgorithm, Scope, ServeConfig};
use super::problem::Problem;
use super::AppState;

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub scopes: BTreeSet<Scope>,
    /// The API key's name or the token's subject, for logs.
    pub credential: String,
}

impl Principal {
    /// 403 unless the caller holds `scope` (or `scheduler.admin`).
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this operation needs scope {}",
                scope.as_str()
            )))
        }
    }
}

struct JwtKey {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// Verifies credentials against the configuration.
pub struct Authenticator {
    tenants: BTreeSet<String>,
    /// sha256 hex → principal.
    api_keys: HashMap<String, Principal>,
    jwt_keys: Vec<JwtKey>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    tenant: String,
    #[serde(default)]
    sub: Option<String>,
    /// OAuth style: space-separated.
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

impl Authenticator {
    pub fn new(config: &ServeConfig) -> Result<Authenticator, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: config.base_dir.clone(),
            message,
        };
        let api_keys = config
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.sha256.to_ascii_lowercase(),
                    Principal {
                        tenant: k.tenant.clone(),
                        scopes: k.scopes.iter().copied().collect(),
                        credential: k.name.clone(),
                    },
                )
            })
            .collect();
        let mut jwt_keys = Vec::new();
        for (i, k) in config.jwt_keys.iter().enumerate() {
            let pem = match &k.public_key_file {
                Some(file) => {
                    let path = config.base_dir.join(file);
                    std::fs::read(&path).map_err(|source| ConfigError::Read { path, source })?
                }
                None => Vec::new(),
            };
            let bad = |e: jsonwebtoken::errors::Error| invalid(format!("jwt key {i}: {e}"));
            let (key, algorithm) = match k.algorithm {
                JwtAlgorithm::EdDsa => (
                    DecodingKey::from_ed_pem(&pem).map_err(bad)?,
                    Algorithm::EdDSA,
                ),
                JwtAlgorithm::Es256 => (
                    DecodingKey::from_ec_pem(&pem).map_err(bad)?,
                    Algorithm::ES256,
                ),
                JwtAlgorithm::Rs256 => (
                    DecodingKey::from_rsa_pem(&pem).map_err(bad)?,
                    Algorithm::RS256,
                ),
                JwtAlgorithm::Hs256 => (
                    DecodingKey::from_base64_secret(k.secret_base64.as_deref().unwrap_or_default())
                        .map_err(bad)?,
                    Algorithm::HS256,
                ),
            };
            let mut validation = Validation::new(algorithm);
            match &k.audience {
                Some(aud) => validation.set_audience(&[aud]),
                None => validation.validate_aud = false,
            }
            if let Some(iss) = &k.issuer {
                validation.set_issuer(&[iss]);
            }
            jwt_keys.push(JwtKey {
                kid: k.kid.clone(),
                key,
                validation,
            });
        }
        Ok(Authenticator {
            tenants: config.tenants.iter().cloned().collect(),
            api_keys,
            jwt_keys,
        })
    }

    /// The principal of a request's headers: `Authorization: Bearer <key or
    /// JWT>` or `X-API-Key: <key>`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Problem> {
        let credential = match (headers.get(header::AUTHORIZATION), headers.get("x-api-key")) {
            (Some(value), _) => value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    Problem::unauthenticated("Authorization must be `Bearer <API key or JWT>`")
                })?,
            (None, Some(value)) => value
                .to_str()
                .map_err(|_| Problem::unauthenticated("X-API-Key is not text"))?
                .trim(),
            (None, None) => {
                return Err(Problem::unauthenticated(
                    "no credential: send `Authorization: Bearer <API key or JWT>`",
                ))
            }
        };
        if credential.split('.').count() == 3 {
            return self.verify_jwt(credential);
        }
        self.api_keys
            .get(&ServeConfig::hash_key(credential))
            .cloned()
            .ok_or_else(|| Problem::unauthenticated("unknown API key"))
    }

    fn verify_jwt(&self, token: &str) -> Result<Principal, Problem> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Problem::unauthenticated(format!("malformed JWT: {e}")))?;
        let candidates = self.jwt_keys.iter().filter(|k| {
            k.validation.algorithms.contains(&header.alg)
                && (k.kid.is_none() || header.kid.is_none() || k.kid == header.kid)
        });
        let mut last = None;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => return self.principal_of(data.claims),
                Err(e) => last = Some(e),
            }
        }
        Err(Problem::unauthenticated(match last {
            Some(e) => format!("JWT rejected: {e}"),
            None => "no configured key verifies this JWT's algorithm and key id".to_string(),
        }))
    }

    fn principal_of(&self, claims: Claims) -> Result<Principal, Problem> {
        if !self.tenants.contains(&claims.tenant) {
            return Err(Problem::unauthenticated(format!(
                "unknown tenant {}",
                claims.tenant
            )));
        }
        let names = claims
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace())
            .chain(claims.scopes.iter().map(String::as_str));
        // Scopes this API does not know are other services' business.
        let scopes = names.filter_map(Scope::parse).collect();
        Ok(Principal {
            tenant: claims.tenant,
            scopes,
            credential: claims.sub.unwrap_or_else(|| "jwt".into()),
        })
    }
}

/// A scope an operation needs, as a type, so the check runs as an extractor
/// before any parameter or body is looked at (a caller without the scope
/// gets 403 whatever else is wrong with the request).
pub trait Required {
    const SCOPE: Scope;
}

pub struct RunsRead;
pub struct RunsWrite;
pub struct Ingest;
pub struct Admin;

impl Required for RunsRead {
    const SCOPE: Scope = Scope::RunsRead;
}
impl Required for RunsWrite {
    const SCOPE: Scope = Scope::RunsWrite;
}
impl Required for Ingest {
    const SCOPE: Scope = Scope::Ingest;
}
impl Required for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// An authenticated caller holding scope `S`.
pub struct Authorized<S>(pub Principal, pub PhantomData<S>);

impl<S: Required> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let principal = state.auth.authenticate(&parts.headers)?;
        principal.require(S::SCOPE)?;
        Ok(Authorized(principal, PhantomData))
    }
}
