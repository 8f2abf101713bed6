//! Connecting the processes of a timely cluster.
//!
//! Timely's own `CommunicationConfig::Cluster` prints connection progress on
//! stdout, which would corrupt the findings `recheck backfill` prints there.
//! So we open the sockets ourselves with timely's handshake (process `i`
//! dials every lower-numbered process and sends its index as a big-endian
//! u64; it accepts every higher-numbered one), log with `tracing`, and hand
//! the connected sockets to timely.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::Hooks;

use super::EngineError;

/// How long a process waits for its peers before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

fn connect_all(addresses: &[String], me: usize) -> Result<Vec<Option<TcpStream>>, EngineError> {
    let io = |what: String| move |e: std::io::Error| EngineError::Start(format!("{what}: {e}"));
    let listener =
        TcpListener::bind(&addresses[me]).map_err(io(format!("listening on {}", addresses[me])))?;
    let mut sockets: Vec<Option<TcpStream>> = (0..addresses.len()).map(|_| None).collect();
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    for (index, address) in addresses.iter().enumerate().take(me) {
        let stream = loop {
            match TcpStream::connect(address) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(%address, error = %e, "peer not up yet; retrying");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(io(format!("connecting to process {index} at {address}"))(e)),
            }
        };
        let mut stream = stream;
        stream
            .set_nodelay(true)
            .and_then(|_| stream.write_all(&(me as u64).to_be_bytes()))
            .map_err(io(format!("greeting process {index}")))?;
        tracing::info!(process = me, peer = index, "connected");
        sockets[index] = Some(stream);
    }
    listener
        .set_nonblocking(true)
        .map_err(io("listener".into()))?;
    while sockets
        .iter()
        .enumerate()
        .any(|(i, s)| i > me && s.is_none())
    {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let mut buf = [0u8; 8];
                stream
                    .set_nonblocking(false)
                    .and_then(|_| stream.set_nodelay(true))
                    .and_then(|_| stream.read_exact(&mut buf))
                    .map_err(io("reading a peer's greeting".into()))?;
                let peer = u64::from_be_bytes(buf) as usize;
                if peer <= me || peer >= addresses.len() {
                    return Err(EngineError::Start(format!("unexpected peer index {peer}")));
                }
                tracing::info!(process = me, peer, "accepted");
                sockets[peer] = Some(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(EngineError::Start(format!(
                        "process {me}: peers did not connect within {CONNECT_TIMEOUT:?}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io("accepting a peer".into())(e)),
        }
    }
    Ok(sockets)
}

/// Allocators for `threads` workers of process `me` among `addresses`.
pub fn allocators(
    addresses: &[String],
    me: usize,
    threads: usize,
) -> Result<(Vec<AllocatorBuilder>, Box<dyn std::any::Any + Send>), EngineError> {
    let sockets = connect_all(addresses, me)?;
    let hooks = Hooks::default();
    let process =
        ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) =
        initialize_networking_from_sockets(process, sockets, me, threads, hooks)
            .map_err(|e| EngineError::Start(format!("initializing networking: {e}")))?;
    Ok((
        builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
        Box::new(guard),
    ))
}
