//! A minimal websocket client for the load drivers: the upgrade request written by hand, client frames
//! masked with the session's key into a reused buffer, server frames parsed in place from one read
//! buffer. It does only what the drivers need (text frames, pings answered, close), so that the client
//! side of a benchmark costs the shared machine as little CPU as it can: no per-frame allocation, no
//! lock between a reading and a writing half, no UTF-8 re-validation of what the server sent.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Longest wait for the server's upgrade answer.
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(30);
/// The read buffer; a frame longer than this is an error (the drivers' frames are a few hundred bytes).
const READ_BUFFER: usize = 16 * 1024;

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// What [`RawSocket::next_text`] found.
pub enum Incoming<'a> {
    /// A text frame's payload.
    Text(&'a [u8]),
    /// The server closed the session (or the connection ended).
    Closed,
}

/// One websocket session over a plain TCP connection to the server on loopback.
pub struct RawSocket {
    stream: TcpStream,
    mask: [u8; 4],
    read: Box<[u8]>,
    /// Bytes `read[start..end]` are received and not yet parsed.
    start: usize,
    end: usize,
    /// Frames not yet written: a pong the socket had no room for, then the frame being sent.
    outbox: Vec<u8>,
}

impl RawSocket {
    /// Opens `/ws` on `127.0.0.1:port` with `token` in the `Authorization` header. Each connection
    /// masks its frames with its own key (a counter spread by a multiplicative hash).
    pub async fn connect(port: u16, token: &str) -> anyhow::Result<Self> {
        static CONNECTIONS: AtomicU32 = AtomicU32::new(1);
        let mask = CONNECTIONS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9)
            | 1;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: b25lbWVkaSBiZW5jaCAxNg==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut socket = Self {
            stream,
            mask: mask.to_be_bytes(),
            read: vec![0; READ_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            outbox: Vec::with_capacity(256),
        };
        tokio::time::timeout(HANDSHAKE_PATIENCE, socket.upgraded())
            .await
            .context("websocket upgrade timed out")??;
        Ok(socket)
    }

    /// Reads the upgrade response; bytes after its blank line are the first frames.
    async fn upgraded(&mut self) -> anyhow::Result<()> {
        loop {
            if let Some(at) = self.read[..self.end].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.read[..at]);
                anyhow::ensure!(
                    head.starts_with("HTTP/1.1 101"),
                    "upgrade refused: {}",
                    head.lines().next().unwrap_or_default()
                );
                self.start = at + 4;
                return Ok(());
            }
            anyhow::ensure!(self.end < self.read.len(), "upgrade response too long");
            let n = self.stream.read(&mut self.read[self.end..]).await?;
            anyhow::ensure!(n > 0, "closed during the upgrade");
            self.end += n;
        }
    }

    /// Sends one masked text frame.
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(OP_TEXT, text.as_bytes()).await
    }

    /// Sends a close frame (no status).
    pub async fn close(&mut self) -> anyhow::Result<()> {
        self.send(OP_CLOSE, &[]).await
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        self.frame(opcode, payload);
        self.stream.write_all(&self.outbox).await?;
        self.outbox.clear();
        Ok(())
    }

    /// Appends one masked frame to the outbox.
    fn frame(&mut self, opcode: u8, payload: &[u8]) {
        self.outbox.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => self.outbox.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                self.outbox.push(0x80 | 126);
                self.outbox.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.outbox.push(0x80 | 127);
                self.outbox.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = self.mask;
        self.outbox.extend_from_slice(&mask);
        self.outbox
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }

    /// Writes what the outbox holds without waiting; the rest goes out before the next sent frame.
    fn flush_now(&mut self) -> anyhow::Result<()> {
        while !self.outbox.is_empty() {
            match self.stream.try_write(&self.outbox) {
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// The next text frame, answering pings on the way. Cancel-safe (the only wait is the socket's read):
    /// a frame is consumed only when it is returned, and a pong is written without waiting.
    pub async fn next_text(&mut self) -> anyhow::Result<Incoming<'_>> {
        loop {
            match self.parse()? {
                Some((opcode, from, to)) => match opcode {
                    OP_TEXT => return Ok(Incoming::Text(&self.read[from..to])),
                    OP_PING => {
                        let payload = self.read[from..to].to_vec();
                        self.frame(OP_PONG, &payload);
                        self.flush_now()?;
                    }
                    OP_CLOSE => return Ok(Incoming::Closed),
                    _ => {}
                },
                None => {
                    if self.start > 0 {
                        self.read.copy_within(self.start..self.end, 0);
                        self.end -= self.start;
                        self.start = 0;
                    }
                    anyhow::ensure!(
                        self.end < self.read.len(),
                        "a server frame outgrew the read buffer"
                    );
                    let n = self.stream.read(&mut self.read[self.end..]).await?;
                    if n == 0 {
                        return Ok(Incoming::Closed);
                    }
                    self.end += n;
                }
            }
        }
    }

    /// Takes one whole frame off the buffer: its opcode and payload range. Server frames are unmasked and
    /// unfragmented (the server writes each message as one frame).
    fn parse(&mut self) -> anyhow::Result<Option<(u8, usize, usize)>> {
        let buffered = &self.read[self.start..self.end];
        if buffered.len() < 2 {
            return Ok(None);
        }
        anyhow::ensure!(buffered[1] & 0x80 == 0, "the server masked a frame");
        let (length, header) = match buffered[1] & 0x7F {
            126 if buffered.len() >= 4 => (usize::from(u16::from_be_bytes([buffered[2], buffered[3]])), 4),
            127 if buffered.len() >= 10 => {
                let mut bytes = [0; 8];
                bytes.copy_from_slice(&buffered[2..10]);
                (usize::try_from(u64::from_be_bytes(bytes))?, 10)
            }
            126 | 127 => return Ok(None),
            n => (usize::from(n), 2),
        };
        if buffered.len() < header + length {
            anyhow::ensure!(
                header + length <= self.read.len(),
                "a server frame outgrew the read buffer"
            );
            return Ok(None);
        }
        let opcode = buffered[0] & 0x0F;
        let from = self.start + header;
        self.start = from + length;
        Ok(Some((opcode, from, self.start)))
    }
}
