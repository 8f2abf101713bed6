//! Where completion events go once stored, for UI and Notify consumers: a
//! NATS subject, a Redis stream or a webhook, behind one small trait.
//! Publishing is at-least-once (a worker that dies between storing and
//! publishing leaves it to the job's next attempt); every message carries
//! the event id, so consumers drop duplicates.

use std::time::Duration;

use async_trait::async_trait;

use super::http;
use crate::model::StoredEvent;

#[derive(Debug, thiserror::Error)]
#[error("event sink {sink}: {message}")]
pub struct SinkError {
    pub sink: String,
    pub message: String,
}

#[async_trait]
pub trait EventSink: Send + Sync {
    /// For logs: the sink's URL without credentials.
    fn name(&self) -> &str;
    async fn publish(&self, event: &StoredEvent) -> Result<(), SinkError>;
}

/// Publish `event` to `sink`, counted as published or failed by sink kind.
pub async fn publish(sink: &dyn EventSink, event: &StoredEvent) -> Result<(), SinkError> {
    let result = sink.publish(event).await;
    crate::metrics::get()
        .event_published(&crate::metrics::Sink::of_url(sink.name()), result.is_ok());
    result
}

/// Open a sink from a URL: `nats://host:port?subject=S`,
/// `redis://host:port[/db]?stream=KEY`, `http://host:port/path` (webhook,
/// the envelope JSON POSTed as the body).
pub async fn open(url: &str) -> Result<Box<dyn EventSink>, SinkError> {
    let err = |m: String| SinkError {
        sink: url.to_string(),
        message: m,
    };
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    if url.starts_with("nats://") {
        let subject = param("subject").unwrap_or_else(|| "recheck.events".to_string());
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(3))
            .connect(base)
            .await
            .map_err(|e| err(format!("connect: {e}")))?;
        Ok(Box::new(NatsSink {
            name: format!("{base}?subject={subject}"),
            client,
            subject,
        }))
    } else if url.starts_with("redis://") {
        let stream = param("stream").unwrap_or_else(|| "recheck:events".to_string());
        let client = redis::Client::open(base).map_err(|e| err(e.to_string()))?;
        let con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| err(format!("connect: {e}")))?;
        Ok(Box::new(RedisSink {
            name: format!("{base}?stream={stream}"),
            con,
            stream,
        }))
    } else if url.starts_with("http://") {
        http::check_url(url).map_err(|e| err(e.to_string()))?;
        Ok(Box::new(WebhookSink {
            url: url.to_string(),
            timeout: Duration::from_secs(10),
        }))
    } else {
        Err(err(
            "expected nats://…?subject=S, redis://…?stream=KEY or http://… (webhook)".into(),
        ))
    }
}

pub struct NatsSink {
    name: String,
    client: async_nats::Client,
    subject: String,
}

#[async_trait]
impl EventSink for NatsSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn publish(&self, event: &StoredEvent) -> Result<(), SinkError> {
        let err = |m: String| SinkError {
            sink: self.name.clone(),
            message: m,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        headers.insert("Recheck-Event-Kind", event.kind.as_str());
        headers.insert("Recheck-Tenant", event.tenant.as_str());
        headers.insert("Recheck-Job-Id", event.job.as_str());
        self.client
            .publish_with_headers(self.subject.clone(), headers, event.body.clone().into())
            .await
            .map_err(|e| err(e.to_string()))?;
        self.client.flush().await.map_err(|e| err(e.to_string()))
    }
}

pub struct RedisSink {
    name: String,
    con: redis::aio::MultiplexedConnection,
    stream: String,
}

#[async_trait]
impl EventSink for RedisSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn publish(&self, event: &StoredEvent) -> Result<(), SinkError> {
        let mut con = self.con.clone();
        redis::cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("id")
            .arg(&event.id)
            .arg("kind")
            .arg(&event.kind)
            .arg("tenant")
            .arg(&event.tenant)
            .arg("job")
            .arg(&event.job)
            .arg("envelope")
            .arg(&event.body)
            .query_async::<String>(&mut con)
            .await
            .map(|_| ())
            .map_err(|e| SinkError {
                sink: self.name.clone(),
                message: e.to_string(),
            })
    }
}

pub struct WebhookSink {
    url: String,
    timeout: Duration,
}

#[async_trait]
impl EventSink for WebhookSink {
    fn name(&self) -> &str {
        &self.url
    }

    async fn publish(&self, event: &StoredEvent) -> Result<(), SinkError> {
        let headers = [
            ("Recheck-Event-Id", event.id.as_str()),
            ("Recheck-Event-Kind", event.kind.as_str()),
        ];
        let err = |m: String| SinkError {
            sink: self.url.clone(),
            message: m,
        };
        let r = http::post_json(&self.url, &headers, &event.body, self.timeout)
            .await
            .map_err(|e| err(e.to_string()))?;
        if (200..300).contains(&r.status) {
            Ok(())
        } else {
            Err(err(format!("answered {}", r.status)))
        }
    }
}
