//! A NATS JetStream ingest subject as an input stream: producers publish
//! advisories, VEX documents and SBOMs in a small [`Envelope`]; each poll
//! fetches what is there and hands it over as one batch. The offset is the
//! stream sequence of the batch's last message; messages are acknowledged
//! only after the batch is in the input log, and a message the log already
//! holds (redelivered after a crash between append and ack) is skipped by
//! its sequence.
//!
//! The store, not the server, remembers the position: each run reads from a
//! fresh ephemeral consumer that starts after the stored offset, so a store
//! restored from a backup or a consumer lost on the server changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream, AckKind};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::engine::record::{InputRecord, RuntimeState};
use crate::formats::{self, ErrorKind, FormatError};
use crate::model::{Scope, DEFAULT_TENANT};
use crate::store::{SourceOffset, Store};

use super::{Ack, Batch, Result, Source, SourceError};

/// What a producer publishes on the ingest subject (JSON).
///
/// ```json
/// {"kind": "sbom", "tenant": "acme", "document": {...CycloneDX...},
///  "artifact": {"labels": {"team": "payments"}, "runtime": "running"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub kind: EnvelopeKind,
    /// Owner of an SBOM (default `default`) or a VEX document (absent: the
    /// feed's, visible to every tenant). Advisories are global.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The document's name: a VEX document with the same name and scope
    /// replaces the earlier one. Default: the document's own id (OpenVEX
    /// `@id`, CSAF `document.tracking.id`, CycloneDX `serialNumber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The OSV advisory, SBOM (CycloneDX / SPDX JSON) or VEX document
    /// (OpenVEX, CSAF, CycloneDX VEX) itself.
    pub document: serde_json::Value,
    /// With an SBOM: the artifact's labels and runtime state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactMeta>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeKind {
    Advisory,
    Vex,
    Sbom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactMeta {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "unknown_runtime")]
    pub runtime: RuntimeState,
}

fn unknown_runtime() -> RuntimeState {
    RuntimeState::Unknown
}

impl Envelope {
    /// The input records this message stands for; `fallback` names a VEX
    /// document that has no name of its own.
    pub fn records(&self, fallback: &str) -> Result<Vec<InputRecord>, FormatError> {
        let bytes = serde_json::to_vec(&self.document).map_err(|e| {
            FormatError::new(fallback, "document", ErrorKind::Schema, e.to_string())
        })?;
        let name = self
            .name
            .clone()
            .or_else(|| own_id(&self.document))
            .unwrap_or_else(|| fallback.to_string());
        let invalid = |m: &str| FormatError::new(&name, ".", ErrorKind::Invalid, m);
        match self.kind {
            EnvelopeKind::Advisory => {
                if self.tenant.is_some() || self.artifact.is_some() {
                    return Err(invalid("an advisory is global: no tenant or artifact"));
                }
                Ok(vec![InputRecord::Advisory {
                    advisory: formats::osv::parse_advisory(&name, &bytes)?,
                }])
            }
            EnvelopeKind::Vex => {
                if self.artifact.is_some() {
                    return Err(invalid("artifact metadata belongs to an SBOM"));
                }
                let scope = self.tenant.clone().map_or(Scope::Global, Scope::Tenant);
                Ok(vec![InputRecord::Vex {
                    statements: formats::parse_vex(&name, &bytes, scope.clone())?,
                    scope,
                    document: name,
                }])
            }
            EnvelopeKind::Sbom => {
                let tenant = self
                    .tenant
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TENANT.to_string());
                let sbom = formats::parse_sbom(&name, &bytes, Scope::Tenant(tenant.clone()))?;
                let artifact = sbom.artifact.id.clone();
                let mut records = vec![InputRecord::Sbom {
                    tenant: tenant.clone(),
                    sbom,
                }];
                if let Some(meta) = &self.artifact {
                    records.push(InputRecord::ArtifactMetadata {
                        tenant,
                        artifact,
                        labels: meta.labels.clone(),
                        runtime: meta.runtime,
                    });
                }
                Ok(records)
            }
        }
    }
}

/// A VEX document's own identifier, if it carries one.
fn own_id(doc: &serde_json::Value) -> Option<String> {
    let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    s(doc.get("@id"))
        .or_else(|| s(doc.pointer("/document/tracking/id")))
        .or_else(|| s(doc.get("serialNumber")))
}

/// Where to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsOptions {
    pub url: String,
    pub subject: String,
    /// The stream to create when none holds `subject` yet (an existing
    /// stream that captures the subject is used whatever its name).
    pub stream: String,
    /// Messages per batch (one window each).
    pub batch: usize,
}

/// The longest one fetch waits for the server's answer.
const FETCH_WAIT: Duration = Duration::from_secs(2);

pub struct NatsSource {
    name: String,
    client: async_nats::Client,
    consumer: consumer::PullConsumer,
    batch: usize,
    /// Stream sequence of the last message the log holds (or skipped).
    offset: u64,
}

fn nats(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Nats(format!("{what}: {e}"))
}

impl NatsSource {
    /// Connect and start reading after the offset `store` holds for this
    /// stream and subject.
    pub async fn open(options: &NatsOptions, store: &dyn Store) -> Result<NatsSource> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(3))
            .connect(&options.url)
            .await
            .map_err(|e| nats(&format!("connecting to {}", options.url), e))?;
        let js = jetstream::new(client.clone());
        let stream_name = match js.stream_by_subject(options.subject.clone()).await {
            Ok(name) => name,
            Err(_) => options.stream.clone(),
        };
        let stream = js
            .get_or_create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![options.subject.clone()],
                ..Default::default()
            })
            .await
            .map_err(|e| nats(&format!("opening stream {stream_name}"), e))?;
        let name = format!("nats:{stream_name}/{}", options.subject);
        let offset = match store.source_offset(&name).await? {
            None => 0,
            Some(s) => s.parse().map_err(|_| SourceError::Offset {
                source_name: name.clone(),
                message: format!("{s:?} is not a stream sequence"),
            })?,
        };
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: options.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: offset + 1,
                },
                // Acking a batch's last message acks the batch.
                ack_policy: consumer::AckPolicy::All,
                // Long enough for a large window to commit; a redelivery
                // before the ack would be skipped by its sequence anyway.
                ack_wait: Duration::from_secs(600),
                inactive_threshold: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| nats("creating the ingest consumer", e))?;
        Ok(NatsSource {
            name,
            client,
            consumer,
            batch: options.batch.max(1),
            offset,
        })
    }

    /// Stream sequence of the last message the input log holds.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

#[async_trait]
impl Source for NatsSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn poll(&mut self) -> Result<Option<Batch>> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(self.batch)
            .messages()
            .await
            .map_err(|e| nats("fetch", e))?;
        let mut records = Vec::new();
        let mut rejected = Vec::new();
        let mut last = self.offset;
        let mut reply = None;
        let until = tokio::time::Instant::now() + FETCH_WAIT;
        while let Ok(Some(msg)) = tokio::time::timeout_at(until, messages.next()).await {
            let msg = msg.map_err(|e| nats("fetch", e))?;
            let info = msg.info().map_err(|e| nats("ack subject", e))?;
            let seq = info.stream_sequence;
            reply = msg.message.reply.as_ref().map(|r| r.to_string());
            if seq <= last {
                continue;
            }
            last = seq;
            let fallback = format!("{}#{seq}", self.name);
            let parsed = serde_json::from_slice::<Envelope>(&msg.message.payload)
                .map_err(|e| FormatError::new(&fallback, ".", ErrorKind::Schema, e.to_string()))
                .and_then(|envelope| envelope.records(&fallback));
            match parsed {
                Ok(r) => records.extend(r),
                Err(e) => {
                    tracing::warn!(error = %e, seq, "skipping an ingest message");
                    rejected.push(e);
                }
            }
        }
        let Some(reply) = reply else {
            return Ok(None);
        };
        if last == self.offset {
            // Only redeliveries of what the log holds: settle them.
            self.ack(&reply).await?;
            return Ok(None);
        }
        Ok(Some(Batch {
            records,
            offset: SourceOffset {
                source: self.name.clone(),
                offset: last.to_string(),
            },
            rejected,
            ack: Ack::Nats(reply),
        }))
    }

    async fn committed(&mut self, batch: Batch) -> Result<()> {
        self.offset = batch
            .offset
            .offset
            .parse()
            .map_err(|_| SourceError::Offset {
                source_name: self.name.clone(),
                message: format!("{:?} is not a stream sequence", batch.offset.offset),
            })?;
        if let Ack::Nats(reply) = &batch.ack {
            self.ack(reply).await?;
        }
        Ok(())
    }
}

impl NatsSource {
    /// Acknowledge (and wait for the server to confirm) everything up to the
    /// message behind `reply`.
    async fn ack(&self, reply: &str) -> Result<()> {
        self.client
            .request(reply.to_string(), AckKind::Ack.into())
            .await
            .map_err(|e| nats("ack", e))?;
        Ok(())
    }
}
