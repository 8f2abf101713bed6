//! Redis Streams backend: many `recheck worker` processes share one Redis.
//!
//! Layout under the prefix `P` (tenant `t` = [`super::tenant_key`]):
//! - `P:s:t:<class>`: one stream per tenant and priority class, consumer
//!   group `recheck`. A lease is a pending entry of the group; an expired one
//!   is taken over with `XAUTOCLAIM` (idle time = the queue's lease), the
//!   scan cursor kept per stream in `P:claim`;
//! - `P:delayed:t`: jobs waiting out a `nak` delay (sorted set by due time,
//!   Redis server clock), moved back to the end of their stream when due;
//! - `P:dlq`: the dead-letter stream, with reason, deliveries and time;
//!   `P:dlq_count` counts per tenant;
//! - `P:dedup:<job_id>:<attempt>`: `SET NX PX` de-dup keys;
//! - `P:recent:t`: the tenant's deliveries of the last second (sorted set by
//!   time), for its per-second limit;
//! - `P:tenants`: tenant key → tenant name; `P:groups`: streams with a group;
//! - `P:paused`: keys of the tenants whose jobs are not handed out;
//!   `P:limits`: tenant key → `concurrency,per_second` set at run time (-1:
//!   the configured limit).
//!
//! Every operation is one Lua script, so concurrent workers cannot both take
//! a tenant's last free slot, and a stale token (its entry re-delivered since,
//! which the delivery count in the token reveals) is refused. Scripts build
//! their keys from the prefix, which a single Redis allows and Redis Cluster
//! would not; a cluster would need hash tags per tenant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};

use super::{
    format_deadline, parse_deadline, tenant_key, Backlog, DeadLetter, Delivery, Depth, Enqueued,
    ErrorKind, LeaseToken, Priority, Queue, QueueError, QueueOptions, QueuedJob, TenantLimit,
};

pub struct RedisQueue {
    options: QueueOptions,
    con: MultiplexedConnection,
    cursor: AtomicUsize,
    scripts: Scripts,
}

struct Scripts {
    add: Script,
    lease: Script,
    settle: Script,
    depth: Script,
    backlog: Script,
}

/// Shared by the scripts: the entry fields in a fixed order, so a job can be
/// re-added (after a delay, on replay) from what was read.
const LUA_COMMON: &str = r#"
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function field_map(kv)
  local m = {}
  for i = 1, #kv, 2 do m[kv[i]] = kv[i + 1] end
  return m
end
local function job_fields(m, prior)
  return {'job_id', m.job_id, 'attempt', m.attempt, 'tenant', m.tenant,
          'priority', m.priority, 'deadline', m.deadline, 'payload', m.payload,
          'prior', tostring(prior)}
end
local function add(stream, t, fields)
  redis.call('HSET', P .. ':tenants', t, fields[6])
  if redis.call('SADD', P .. ':groups', stream) == 1 then
    redis.pcall('XGROUP', 'CREATE', stream, 'recheck', '0', 'MKSTREAM')
  end
  redis.call('XADD', stream, '*', unpack(fields))
end
local function bury(stream, id, t, m, deliveries, reason)
  redis.call('XACK', stream, 'recheck', id)
  redis.call('XDEL', stream, id)
  local f = job_fields(m, 0)
  f[#f + 1] = 'reason'; f[#f + 1] = reason
  f[#f + 1] = 'deliveries'; f[#f + 1] = tostring(deliveries)
  f[#f + 1] = 'at'; f[#f + 1] = tostring(now_ms())
  f[#f + 1] = 'tenant_key'; f[#f + 1] = t
  redis.call('XADD', P .. ':dlq', '*', unpack(f))
  redis.call('HINCRBY', P .. ':dlq_count', t, 1)
end
"#;

/// ARGV: prefix, stream, tenant key, dedup key ('' = none), dedup ms,
/// dead-letter id to remove ('' = none), then job_id, attempt, tenant,
/// priority, deadline, payload. Returns 1 added, 0 duplicate, -1 no such
/// dead letter.
const LUA_ADD: &str = r#"
local stream, t, dedup, dedup_ms, dlq_id = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if dlq_id ~= '' then
  if redis.call('XDEL', P .. ':dlq', dlq_id) == 0 then return -1 end
  redis.call('HINCRBY', P .. ':dlq_count', t, -1)
end
if dedup ~= '' then
  if not redis.call('SET', dedup, '1', 'NX', 'PX', dedup_ms) then return 0 end
end
local m = {job_id = ARGV[7], attempt = ARGV[8], tenant = ARGV[9], priority = ARGV[10],
           deadline = ARGV[11], payload = ARGV[12]}
add(stream, t, job_fields(m, 0))
return 1
"#;

/// ARGV: prefix, consumer, max, lease ms, max_deliver, cursor, default
/// concurrency and per-second limits (-1 = none), number of tenants with
/// limits of their own, then (tenant key, concurrency, per second) triples.
/// Returns {next cursor, {stream, id, delivery count in the group, fields}...}.
const LUA_LEASE: &str = r#"
local consumer, max, lease_ms = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local max_deliver, cursor = tonumber(ARGV[5]), tonumber(ARGV[6])
local function opt(v)
  v = tonumber(v)
  if v < 0 then return nil end
  return v
end
local default = {c = opt(ARGV[7]), r = opt(ARGV[8])}
local own = {}
for i = 1, tonumber(ARGV[9]) do
  own[ARGV[7 + 3 * i]] = {c = opt(ARGV[8 + 3 * i]), r = opt(ARGV[9 + 3 * i])}
end
local classes = {'emergency', 'high', 'normal'}
local now = now_ms()

local function stream_of(t, c) return P .. ':s:' .. t .. ':' .. c end
local function in_flight(t)
  local n = 0
  for _, c in ipairs(classes) do
    local s = stream_of(t, c)
    if redis.call('EXISTS', s) == 1 then n = n + redis.call('XPENDING', s, 'recheck')[1] end
  end
  return n
end
local function release_delayed(t)
  local key = P .. ':delayed:' .. t
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, 1000)) do
    local e = cmsgpack.unpack(member)
    add(e[1], t, e[3])
    redis.call('ZREM', key, member)
  end
end
-- One entry of class stream s: an expired lease first, else new work if the
-- tenant is below its limit. Returns the entry or nil.
local function entry_of(s, t, limit)
  if redis.call('EXISTS', s) == 0 then return nil end
  local start = redis.call('HGET', P .. ':claim', s) or '0-0'
  local r = redis.call('XAUTOCLAIM', s, 'recheck', consumer, lease_ms, start, 'COUNT', 1)
  redis.call('HSET', P .. ':claim', s, r[1])
  if #r[2] > 0 and r[2][1] then return r[2][1] end
  if limit and in_flight(t) >= limit then return nil end
  local n = redis.call('XREADGROUP', 'GROUP', 'recheck', consumer, 'COUNT', 1, 'STREAMS', s, '>')
  if n then return n[1][2][1] end
  return nil
end
local function take(t)
  if redis.call('SISMEMBER', P .. ':paused', t) == 1 then return nil end
  local l = own[t] or default
  local o = redis.call('HGET', P .. ':limits', t)
  if o then
    local c, r = string.match(o, '^(-?%d+),(-?%d+)$')
    l = {c = opt(c) or l.c, r = opt(r) or l.r}
  end
  local recent = P .. ':recent:' .. t
  if l.r then
    redis.call('ZREMRANGEBYSCORE', recent, '-inf', now - 1000)
    if redis.call('ZCARD', recent) >= l.r then return nil end
  end
  for _, c in ipairs(classes) do
    local s = stream_of(t, c)
    while true do
      local e = entry_of(s, t, l.c)
      if not e then break end
      local m = field_map(e[2])
      local count = redis.call('XPENDING', s, 'recheck', e[1], e[1], 1)[1][4]
      local total = tonumber(m.prior) + count
      if total <= max_deliver then
        if l.r then
          redis.call('ZADD', recent, now, s .. '|' .. e[1] .. '|' .. count)
          redis.call('PEXPIRE', recent, 2000)
        end
        return {s, e[1], count, e[2]}
      end
      bury(s, e[1], t, m, total - 1,
           'delivered ' .. (total - 1) .. ' times without success (max_deliver ' .. max_deliver .. ')')
    end
  end
  return nil
end

local tenants = redis.call('HKEYS', P .. ':tenants')
table.sort(tenants)
local n = #tenants
local out = {cursor}
if n == 0 then return out end
local turns, head = {}, 1
for i = 0, n - 1 do
  local k = ((cursor + i) % n) + 1
  turns[#turns + 1] = k
  release_delayed(tenants[k])
end
while #out - 1 < max and head <= #turns do
  local k = turns[head]
  head = head + 1
  local d = take(tenants[k])
  if d then
    out[#out + 1] = d
    turns[#turns + 1] = k
    out[1] = k % n
  end
end
return out
"#;

/// ARGV: prefix, op (ack|nak|extend|dead), stream, id, delivery count from
/// the token, tenant key, delay ms (nak) or reason (dead). Returns 1 done, 0
/// lease lost.
const LUA_SETTLE: &str = r#"
local op, s, id, count, t, arg = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
if redis.call('EXISTS', s) == 0 then return 0 end
local p = redis.call('XPENDING', s, 'recheck', id, id, 1)
if #p == 0 or p[1][4] ~= count then return 0 end
if op == 'extend' then
  redis.call('XCLAIM', s, 'recheck', p[1][2], 0, id, 'JUSTID')
  return 1
end
local r = redis.call('XRANGE', s, id, id)
if #r == 0 then return 0 end
local m = field_map(r[1][2])
local total = tonumber(m.prior) + count
if op == 'dead' then
  bury(s, id, t, m, total, arg)
  return 1
end
redis.call('XACK', s, 'recheck', id)
redis.call('XDEL', s, id)
if op == 'nak' then
  local member = cmsgpack.pack({s, id, job_fields(m, total)})
  redis.call('ZADD', P .. ':delayed:' .. t, now_ms() + tonumber(arg), member)
end
return 1
"#;

/// ARGV: prefix, tenant key. Returns {pending, leased, dead-lettered}.
const LUA_DEPTH: &str = r#"
local t = ARGV[2]
local pending, leased = redis.call('ZCARD', P .. ':delayed:' .. t), 0
for _, c in ipairs({'emergency', 'high', 'normal'}) do
  local s = P .. ':s:' .. t .. ':' .. c
  if redis.call('EXISTS', s) == 1 then
    local in_flight = redis.call('XPENDING', s, 'recheck')[1]
    leased = leased + in_flight
    pending = pending + redis.call('XLEN', s) - in_flight
  end
end
return {pending, leased, tonumber(redis.call('HGET', P .. ':dlq_count', t) or '0')}
"#;

/// Per tenant: name, ready jobs per class (most urgent first), and the
/// millisecond time of the oldest stream entry (0: none).
const LUA_BACKLOG: &str = r#"
local out = {}
local tenants = redis.call('HGETALL', P .. ':tenants')
for i = 1, #tenants, 2 do
  local t, name = tenants[i], tenants[i + 1]
  local row, oldest = {name}, 0
  for _, c in ipairs({'emergency', 'high', 'normal'}) do
    local s = P .. ':s:' .. t .. ':' .. c
    local ready = 0
    if redis.call('EXISTS', s) == 1 then
      ready = redis.call('XLEN', s) - redis.call('XPENDING', s, 'recheck')[1]
      local first = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)[1]
      if first then
        local ms = tonumber(string.match(first[1], '^(%d+)'))
        if oldest == 0 or ms < oldest then oldest = ms end
      end
    end
    table.insert(row, ready)
  end
  table.insert(row, oldest)
  table.insert(out, row)
end
return out
"#;

fn backend_err(e: redis::RedisError) -> QueueError {
    let kind = if e.is_connection_refusal() || e.is_io_error() {
        ErrorKind::Connect
    } else {
        ErrorKind::Backend
    };
    QueueError::new(kind, format!("redis: {e}"))
}

fn codec(what: impl Into<String>) -> QueueError {
    QueueError::new(ErrorKind::Codec, format!("redis: {}", what.into()))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisQueue {
    pub async fn connect(url: &str, options: QueueOptions) -> Result<Self, QueueError> {
        let client = redis::Client::open(url)
            .map_err(|e| QueueError::new(ErrorKind::Config, format!("redis URL {url}: {e}")))?;
        // The client's default of 0.5 s per reply is short for a lease script
        // on a loaded machine; a reply that times out leaves its leases to
        // expire, so waiting longer is the cheaper side.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| QueueError::new(ErrorKind::Connect, format!("redis at {url}: {e}")))?;
        let script = |body: &str| Script::new(&format!("{LUA_COMMON}\n{body}"));
        Ok(RedisQueue {
            options,
            con,
            cursor: AtomicUsize::new(0),
            scripts: Scripts {
                add: script(LUA_ADD),
                lease: script(LUA_LEASE),
                settle: script(LUA_SETTLE),
                depth: script(LUA_DEPTH),
                backlog: script(LUA_BACKLOG),
            },
        })
    }

    fn prefix(&self) -> &str {
        &self.options.prefix
    }

    fn stream(&self, job: &QueuedJob) -> String {
        format!(
            "{}:s:{}:{}",
            self.prefix(),
            tenant_key(&job.tenant),
            job.priority
        )
    }

    async fn add(&self, job: &QueuedJob, dedup: bool, dlq_id: &str) -> Result<i64, QueueError> {
        let mut inv = self.scripts.add.prepare_invoke();
        inv.arg(self.prefix())
            .arg(self.stream(job))
            .arg(tenant_key(&job.tenant))
            .arg(if dedup {
                format!("{}:dedup:{}", self.prefix(), job.dedup_key())
            } else {
                String::new()
            })
            .arg(ms(self.options.dedup_window))
            .arg(dlq_id)
            .arg(&job.job_id)
            .arg(job.attempt)
            .arg(&job.tenant)
            .arg(job.priority.as_str())
            .arg(format_deadline(&job.deadline))
            .arg(&job.payload[..]);
        inv.invoke_async(&mut self.con.clone())
            .await
            .map_err(backend_err)
    }

    /// Runs the settle script for `token`; a refused token is `LeaseLost`.
    async fn settle(&self, op: &str, token: &LeaseToken, arg: &str) -> Result<(), QueueError> {
        let lost = || QueueError::new(ErrorKind::LeaseLost, format!("lease {}", token.as_str()));
        let mut parts = token.as_str().rsplitn(3, '|');
        let (Some(count), Some(id), Some(stream)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(lost());
        };
        // P:s:<tenant key>:<class>
        let t = stream.rsplit(':').nth(1).ok_or_else(lost)?;
        let done: i64 = self
            .scripts
            .settle
            .prepare_invoke()
            .arg(self.prefix())
            .arg(op)
            .arg(stream)
            .arg(id)
            .arg(count)
            .arg(t)
            .arg(arg)
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(backend_err)?;
        if done == 1 {
            Ok(())
        } else {
            Err(lost())
        }
    }
}

/// Entry fields (a flat field/value array) → the job and its `prior` count.
fn decode_job(fields: &[Value]) -> Result<(QueuedJob, u32, FieldMap), QueueError> {
    let map = FieldMap::new(fields)?;
    let job = QueuedJob {
        job_id: map.text("job_id")?,
        attempt: map.number("attempt")?,
        tenant: map.text("tenant")?,
        priority: Priority::parse(&map.text("priority")?)
            .ok_or_else(|| codec("bad priority field"))?,
        deadline: parse_deadline(&map.text("deadline")?)?,
        payload: map.bytes("payload")?.to_vec(),
    };
    let prior = map.number("prior")?;
    Ok((job, prior, map))
}

struct FieldMap(Vec<(Vec<u8>, Vec<u8>)>);

impl FieldMap {
    fn new(fields: &[Value]) -> Result<Self, QueueError> {
        let mut out = Vec::with_capacity(fields.len() / 2);
        for pair in fields.chunks(2) {
            match pair {
                [k, v] => out.push((bulk(k)?.to_vec(), bulk(v)?.to_vec())),
                _ => return Err(codec("odd field list")),
            }
        }
        Ok(FieldMap(out))
    }

    fn bytes(&self, name: &str) -> Result<&[u8], QueueError> {
        self.0
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| &v[..])
            .ok_or_else(|| codec(format!("field {name} missing")))
    }

    fn text(&self, name: &str) -> Result<String, QueueError> {
        String::from_utf8(self.bytes(name)?.to_vec())
            .map_err(|_| codec(format!("field {name} is not UTF-8")))
    }

    fn number<N: std::str::FromStr>(&self, name: &str) -> Result<N, QueueError> {
        self.text(name)?
            .parse()
            .map_err(|_| codec(format!("field {name} is not a number")))
    }
}

fn bulk(v: &Value) -> Result<&[u8], QueueError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        other => Err(codec(format!("expected a string, got {other:?}"))),
    }
}

fn int(v: &Value) -> Result<i64, QueueError> {
    match v {
        Value::Int(n) => Ok(*n),
        other => std::str::from_utf8(bulk(other)?)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| codec("expected an integer")),
    }
}

fn array(v: &Value) -> Result<&[Value], QueueError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(codec(format!("expected an array, got {other:?}"))),
    }
}

#[async_trait::async_trait]
impl Queue for RedisQueue {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn enqueue(&self, job: QueuedJob) -> Result<Enqueued, QueueError> {
        job.validate()?;
        match self.add(&job, true, "").await? {
            1 => Ok(Enqueued::Accepted),
            _ => Ok(Enqueued::Duplicate),
        }
    }

    async fn lease(&self, consumer: &str, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let limits = &self.options.tenant_limits;
        let none = |v: Option<u32>| v.map_or(-1, i64::from);
        let mut inv = self.scripts.lease.prepare_invoke();
        inv.arg(self.prefix())
            .arg(consumer)
            .arg(max)
            .arg(ms(self.options.lease))
            .arg(self.options.max_deliver)
            .arg(self.cursor.load(Ordering::Relaxed))
            .arg(none(limits.default.concurrency))
            .arg(none(limits.default.per_second))
            .arg(limits.per_tenant.len());
        for tenant in limits.per_tenant.keys() {
            let l = limits.limit(tenant);
            inv.arg(tenant_key(tenant))
                .arg(none(l.concurrency))
                .arg(none(l.per_second));
        }
        let reply: Value = inv
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(backend_err)?;
        let reply = array(&reply)?;
        let (cursor, entries) = reply
            .split_first()
            .ok_or_else(|| codec("empty lease reply"))?;
        self.cursor.store(
            usize::try_from(int(cursor)?).unwrap_or(0),
            Ordering::Relaxed,
        );
        entries
            .iter()
            .map(|e| {
                let [stream, id, count, fields] = array(e)? else {
                    return Err(codec("bad lease entry"));
                };
                let stream = String::from_utf8_lossy(bulk(stream)?).into_owned();
                let id = String::from_utf8_lossy(bulk(id)?).into_owned();
                let count = int(count)?;
                let (job, prior, _) = decode_job(array(fields)?)?;
                let deliveries = u32::try_from(count)
                    .ok()
                    .and_then(|c| c.checked_add(prior))
                    .ok_or_else(|| codec("delivery count out of range"))?;
                Ok(Delivery {
                    token: LeaseToken(format!("{stream}|{id}|{count}")),
                    job,
                    deliveries,
                })
            })
            .collect()
    }

    async fn ack(&self, token: &LeaseToken) -> Result<(), QueueError> {
        self.settle("ack", token, "").await
    }

    async fn nak(&self, token: &LeaseToken, delay: Duration) -> Result<(), QueueError> {
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.settle("nak", token, &delay_ms.to_string()).await
    }

    async fn extend(&self, token: &LeaseToken) -> Result<(), QueueError> {
        self.settle("extend", token, "").await
    }

    async fn dead_letter(&self, token: &LeaseToken, reason: &str) -> Result<(), QueueError> {
        self.settle("dead", token, reason).await
    }

    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let reply: Value = redis::cmd("XRANGE")
            .arg(format!("{}:dlq", self.prefix()))
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.con.clone())
            .await
            .map_err(backend_err)?;
        array(&reply)?
            .iter()
            .map(|e| {
                let [id, fields] = array(e)? else {
                    return Err(codec("bad dead-letter entry"));
                };
                let (job, _, map) = decode_job(array(fields)?)?;
                let at_ms: i64 = map.number("at")?;
                Ok(DeadLetter {
                    id: String::from_utf8_lossy(bulk(id)?).into_owned(),
                    job,
                    reason: map.text("reason")?,
                    deliveries: map.number("deliveries")?,
                    dead_lettered_at: DateTime::<Utc>::from_timestamp_millis(at_ms)
                        .ok_or_else(|| codec("bad dead-letter time"))?,
                })
            })
            .collect()
    }

    async fn replay_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        let not_found = || QueueError::new(ErrorKind::NotFound, format!("dead letter {id}"));
        // XRANGE refuses a malformed id, which is no dead letter either.
        let well_formed = id
            .split_once('-')
            .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok());
        if !well_formed {
            return Err(not_found());
        }
        let reply: Value = redis::cmd("XRANGE")
            .arg(format!("{}:dlq", self.prefix()))
            .arg(id)
            .arg(id)
            .query_async(&mut self.con.clone())
            .await
            .map_err(backend_err)?;
        let entry = array(&reply)?.first().ok_or_else(not_found)?;
        let [_, fields] = array(entry)? else {
            return Err(codec("bad dead-letter entry"));
        };
        let (job, _, _) = decode_job(array(fields)?)?;
        match self.add(&job, false, id).await? {
            -1 => Err(not_found()),
            _ => Ok(()),
        }
    }

    async fn depth(&self, tenant: &str) -> Result<Depth, QueueError> {
        let reply: Vec<u64> = self
            .scripts
            .depth
            .prepare_invoke()
            .arg(self.prefix())
            .arg(tenant_key(tenant))
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(backend_err)?;
        match reply[..] {
            [pending, leased, dead_lettered] => Ok(Depth {
                pending,
                leased,
                dead_lettered,
            }),
            _ => Err(codec("bad depth reply")),
        }
    }

    async fn backlog(&self) -> Result<Vec<Backlog>, QueueError> {
        let rows: Vec<(String, u64, u64, u64, i64)> = self
            .scripts
            .backlog
            .prepare_invoke()
            .arg(self.prefix())
            .invoke_async(&mut self.con.clone())
            .await
            .map_err(backend_err)?;
        let mut out: Vec<Backlog> = rows
            .into_iter()
            .map(|(tenant, e, h, n, oldest)| Backlog {
                tenant,
                ready: [e, h, n],
                oldest: (oldest > 0)
                    .then(|| DateTime::from_timestamp_millis(oldest))
                    .flatten(),
            })
            .collect();
        out.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        Ok(out)
    }

    async fn set_paused(&self, tenant: &str, paused: bool) -> Result<(), QueueError> {
        let key = format!("{}:paused", self.prefix());
        let cmd = if paused { "SADD" } else { "SREM" };
        redis::cmd(cmd)
            .arg(key)
            .arg(tenant_key(tenant))
            .query_async::<()>(&mut self.con.clone())
            .await
            .map_err(backend_err)
    }

    async fn paused(&self, tenant: &str) -> Result<bool, QueueError> {
        redis::cmd("SISMEMBER")
            .arg(format!("{}:paused", self.prefix()))
            .arg(tenant_key(tenant))
            .query_async(&mut self.con.clone())
            .await
            .map_err(backend_err)
    }

    async fn set_limit(&self, tenant: &str, limit: TenantLimit) -> Result<(), QueueError> {
        redis::cmd("HSET")
            .arg(format!("{}:limits", self.prefix()))
            .arg(tenant_key(tenant))
            .arg(limit.encode())
            .query_async::<()>(&mut self.con.clone())
            .await
            .map_err(backend_err)
    }

    async fn limit(&self, tenant: &str) -> Result<TenantLimit, QueueError> {
        let stored: Option<String> = redis::cmd("HGET")
            .arg(format!("{}:limits", self.prefix()))
            .arg(tenant_key(tenant))
            .query_async(&mut self.con.clone())
            .await
            .map_err(backend_err)?;
        let own = stored.map_or_else(TenantLimit::default, |s| TenantLimit::decode(&s));
        Ok(own.over(self.options.tenant_limits.limit(tenant)))
    }

    async fn purge(&self) -> Result<(), QueueError> {
        let mut con = self.con.clone();
        let pattern = format!("{}:*", self.prefix());
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(backend_err)?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<()>(&mut con)
                    .await
                    .map_err(backend_err)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.cursor.store(0, Ordering::Relaxed);
        Ok(())
    }
}
