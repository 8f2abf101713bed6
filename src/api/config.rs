//! The `serve` configuration file (TOML): tenants, API keys (only their
//! sha256 is stored, so the file is not a secret), JWT verification keys,
//! request limits and the log writer's window policy.
//!
//! ```toml
//! tenants = ["acme", "globex"]
//!
//! [[api_keys]]
//! name = "acme-ci"
//! tenant = "acme"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! scopes = ["scheduler.ingest", "scheduler.runs.read"]
//!
//! [[jwt_keys]]
//! kid = "idp-2026"              # optional: matched against the token's `kid`
//! algorithm = "EdDSA"           # EdDSA, ES256, RS256 or HS256
//! public_key_file = "idp.pub.pem"   # HS256: secret_base64 = "..."
//! issuer = "https://idp.example"    # optional
//! audience = "recheck"              # optional
//!
//! [limits]
//! max_body_bytes = 16777216
//!
//! [windows]
//! max_records = 10000
//! max_delay_ms = 200
//!
//! [webhooks]                  # feed webhooks (advisory / VEX exports)
//! max_requests = 120          # per tenant per window (then 429)
//! window_secs = 60
//!
//! [[webhooks.secrets]]        # the HMAC key an upstream service signs with
//! tenant = "acme"
//! secret = "a long random string"   # kept in clear: HMAC needs it
//! feed = true                 # may write the global feed (advisories, feed VEX)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Which API operations a credential may call. `scheduler.admin` implies
/// the others and is also what writes the global feed (advisories, feed VEX).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Scope {
    #[serde(rename = "scheduler.runs.read")]
    RunsRead,
    #[serde(rename = "scheduler.runs.write")]
    RunsWrite,
    #[serde(rename = "scheduler.ingest")]
    Ingest,
    #[serde(rename = "scheduler.admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::RunsRead,
        Scope::RunsWrite,
        Scope::Ingest,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RunsRead => "scheduler.runs.read",
            Scope::RunsWrite => "scheduler.runs.write",
            Scope::Ingest => "scheduler.ingest",
            Scope::Admin => "scheduler.admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Shown in logs instead of the key.
    pub name: String,
    pub tenant: String,
    /// Lower-case hex sha256 of the key as clients send it.
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    #[serde(rename = "EdDSA")]
    EdDsa,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "HS256")]
    Hs256,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeyConfig {
    pub kid: Option<String>,
    pub algorithm: JwtAlgorithm,
    /// PEM public key (EdDSA/ES256/RS256), relative to the config file.
    pub public_key_file: Option<PathBuf>,
    /// HS256 shared secret, base64.
    pub secret_base64: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Largest batch of documents in one ingest request.
    pub max_batch: usize,
    /// Largest page a list operation returns.
    pub max_page: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_batch: 1000,
            max_page: 1000,
        }
    }
}

/// When the log writer closes a window: as soon as its inbox is empty, or
/// earlier when `max_records` records or `max_delay_ms` have accumulated
/// while writes keep arriving. The decision is recorded in the log as the
/// `WindowClosed` record, so a replay never depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowPolicy {
    pub max_records: usize,
    pub max_delay_ms: u64,
}

impl Default for WindowPolicy {
    fn default() -> Self {
        WindowPolicy {
            max_records: 10_000,
            max_delay_ms: 200,
        }
    }
}

/// Feed webhooks: who may sign them, and how often one tenant may call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Requests one tenant's webhooks may make within `window_secs`; more
    /// are answered 429 with `Retry-After`.
    pub max_requests: u32,
    pub window_secs: u64,
    pub secrets: Vec<WebhookSecret>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_requests: 120,
            window_secs: 60,
            secrets: Vec::new(),
        }
    }
}

/// One tenant's webhook key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSecret {
    pub tenant: String,
    /// The HMAC-SHA256 key, as text.
    pub secret: String,
    /// May write the global feed: advisories and global VEX.
    #[serde(default)]
    pub feed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Every tenant a credential may name; a JWT for any other is refused.
    pub tenants: Vec<String>,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    #[serde(default)]
    pub jwt_keys: Vec<JwtKeyConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub windows: WindowPolicy,
    #[serde(default)]
    pub webhooks: WebhookConfig,
    /// Directory of the config file, for relative key paths.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl ServeConfig {
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: ServeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.check().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Refuses keys of unknown tenants and malformed hashes.
    pub fn check(&self) -> Result<(), String> {
        for key in &self.api_keys {
            if !self.tenants.contains(&key.tenant) {
                return Err(format!(
                    "api key {}: tenant {} is not listed in tenants",
                    key.name, key.tenant
                ));
            }
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "api key {}: sha256 must be 64 hex digits",
                    key.name
                ));
            }
        }
        for hook in &self.webhooks.secrets {
            if !self.tenants.contains(&hook.tenant) {
                return Err(format!(
                    "webhook secret: tenant {} is not listed in tenants",
                    hook.tenant
                ));
            }
            if hook.secret.len() < 16 {
                return Err(format!(
                    "webhook secret of {}: at least 16 characters",
                    hook.tenant
                ));
            }
        }
        if self.webhooks.max_requests == 0 || self.webhooks.window_secs == 0 {
            return Err("webhooks: max_requests and window_secs must be positive".into());
        }
        for (i, key) in self.jwt_keys.iter().enumerate() {
            let secret = key.algorithm == JwtAlgorithm::Hs256;
            if secret != key.secret_base64.is_some() || secret == key.public_key_file.is_some() {
                return Err(format!(
                    "jwt key {i}: HS256 takes secret_base64, the others public_key_file"
                ));
            }
        }
        Ok(())
    }

    /// The hex sha256 an API key is configured by.
    pub fn hash_key(key: &str) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    }
}
