//! Serial heartbeat links (`serial /dev/ttyS0` at `baud`), point to point.
//!
//! The byte stream carries the same authenticated datagrams as UDP, back to
//! back. No extra framing is needed: a frame starts with the magic and its
//! header gives its exact length, so the [`Deframer`] finds frames by
//! scanning for a header that validates and resynchronises byte by byte
//! after line noise. (MACs are verified afterwards, like UDP.)
//!
//! A reader thread per port hands frames to the engine; writes go through a
//! bounded queue to a writer thread, so a slow line (a 100-byte heartbeat
//! takes ~50 ms at 19200 baud) never blocks the real-time sender: when the
//! line cannot keep up, heartbeats are dropped and counted.

use std::{
    io::{Read, Write},
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{sync_channel, SyncSender, TrySendError},
        Arc,
    },
    time::Duration,
};

use hb_common::wire::{classify, AuthAlg, Verdict, HEADER_LEN, MAX_DATAGRAM, MAX_PAYLOAD};

use crate::time::Mono;

/// Extracts frames from a byte stream.
#[derive(Default)]
pub struct Deframer {
    buf: Vec<u8>,
    /// Bytes skipped while resynchronising.
    pub skipped: u64,
}

/// The total length of a frame whose header is `h`, if it is a plausible
/// hb header of `cluster_id` (checked with the XDP program's own rules).
fn frame_len(h: &[u8; HEADER_LEN], cluster_id: u32) -> Option<usize> {
    let payload = u16::from_be_bytes([h[44], h[45]]) as usize;
    let mac = AuthAlg::from_u8(h[6])?.mac_len();
    if payload > MAX_PAYLOAD {
        return None;
    }
    let total = HEADER_LEN + payload + mac;
    matches!(classify(h, total, cluster_id), Verdict::Ours { .. }).then_some(total)
}

impl Deframer {
    /// Appends `bytes` and returns every complete frame.
    pub fn push(&mut self, bytes: &[u8], cluster_id: u32) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let Some(p) = rest.windows(4).position(|w| w == hb_common::wire::MAGIC) else {
                // Keep a possible partial magic at the end.
                let keep = rest.len().min(3);
                self.skipped += (rest.len() - keep) as u64;
                start = self.buf.len() - keep;
                break;
            };
            self.skipped += p as u64;
            start += p;
            let rest = &self.buf[start..];
            if rest.len() < HEADER_LEN {
                break;
            }
            match frame_len(rest.first_chunk().expect("length checked"), cluster_id) {
                Some(total) if rest.len() >= total => {
                    out.push(rest[..total].to_vec());
                    start += total;
                }
                Some(_) => break, // wait for the rest
                None => {
                    start += 1;
                    self.skipped += 1;
                }
            }
        }
        self.buf.drain(..start);
        // Never buffer more than one maximal frame of garbage.
        if self.buf.len() > 2 * MAX_DATAGRAM {
            let cut = self.buf.len() - MAX_DATAGRAM;
            self.skipped += cut as u64;
            self.buf.drain(..cut);
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
#[error("serial port {path}: {err}")]
pub struct SerialError {
    pub path: String,
    pub err: String,
}

/// A frame read from a serial link.
pub struct SerialFrame {
    pub link: usize,
    pub data: Vec<u8>,
    pub read_at: Mono,
}

/// The sending side of one serial link.
pub struct SerialTx {
    pub link: usize,
    queue: SyncSender<Vec<u8>>,
    pub dropped: Arc<AtomicU64>,
}

impl SerialTx {
    /// Queues a frame; drops (and counts) it if the line is behind.
    pub fn send(&self, frame: &[u8]) {
        if let Err(TrySendError::Full(_)) = self.queue.try_send(frame.to_vec()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Opens `path` raw at `baud` and starts its reader and writer threads.
pub fn open(
    link: usize,
    path: &Path,
    baud: u32,
    cluster_id: u32,
    rx: tokio::sync::mpsc::Sender<SerialFrame>,
) -> Result<SerialTx, SerialError> {
    let ps = path.display().to_string();
    let err = |e: serialport::Error| SerialError {
        path: ps.clone(),
        err: e.to_string(),
    };
    let mut port = serialport::new(ps.clone(), baud)
        .timeout(Duration::from_millis(200))
        .open_native()
        .map_err(err)?;
    let _ = port.set_exclusive(true);
    let mut writer = port.try_clone_native().map_err(err)?;
    let (qtx, qrx) = sync_channel::<Vec<u8>>(4);
    std::thread::Builder::new()
        .name(format!("hb-serial-w{link}"))
        .spawn(move || {
            while let Ok(frame) = qrx.recv() {
                if let Err(e) = writer.write_all(&frame) {
                    log::warn!("serial link {link}: write failed: {e}");
                }
            }
        })
        .map_err(|e| SerialError {
            path: ps.clone(),
            err: e.to_string(),
        })?;
    std::thread::Builder::new()
        .name(format!("hb-serial-r{link}"))
        .spawn(move || {
            let mut d = Deframer::default();
            let mut buf = [0u8; 2048];
            loop {
                match port.read(&mut buf) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(10)),
                    Ok(n) => {
                        let now = Mono::now();
                        for f in d.push(&buf[..n], cluster_id) {
                            if rx
                                .blocking_send(SerialFrame {
                                    link,
                                    data: f,
                                    read_at: now,
                                })
                                .is_err()
                            {
                                return; // engine gone
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        if rx.is_closed() {
                            return;
                        }
                    }
                    Err(e) => {
                        log::warn!("serial link {link}: read failed: {e}; retrying");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
        })
        .map_err(|e| SerialError {
            path: ps.clone(),
            err: e.to_string(),
        })?;
    Ok(SerialTx {
        link,
        queue: qtx,
        dropped: Arc::new(AtomicU64::new(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_common::wire::{Header, Status, KIND_HEARTBEAT};

    fn frame(seq: u64, payload: usize) -> Vec<u8> {
        let h = Header {
            kind: KIND_HEARTBEAT,
            alg: AuthAlg::Sha1,
            key_index: 1,
            cluster_id: 7,
            node_id: 9,
            generation: 1,
            seq,
            send_time_ns: 0,
            flags: 0,
            status: Status::Up,
            payload_len: payload as u16,
        };
        let mut f = vec![0x5a; HEADER_LEN + payload + 20];
        h.write((&mut f[..HEADER_LEN]).try_into().unwrap());
        f
    }

    #[test]
    fn frames_split_anywhere_and_resync_after_noise() {
        let mut stream = b"\x00noise HBX".to_vec(); // includes a partial magic
        stream.extend(frame(1, 10));
        stream.extend(b"HBXP garbage that looks like a magic but is not a header at all....");
        stream.extend(frame(2, 0));
        stream.extend(frame(3, 5));
        for chunk in [1usize, 3, 7, 64, 1000] {
            let mut d = Deframer::default();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                got.extend(d.push(c, 7));
            }
            let seqs: Vec<u8> = got.iter().map(|f| f[31]).collect();
            assert_eq!(seqs, vec![1, 2, 3], "chunk size {chunk}");
            assert!(d.skipped > 0);
        }
    }

    #[test]
    fn foreign_cluster_frames_are_skipped() {
        let mut d = Deframer::default();
        assert!(d.push(&frame(1, 0), 8).is_empty());
        assert_eq!(d.push(&frame(2, 0), 7).len(), 1);
    }

    #[test]
    fn garbage_never_grows_the_buffer() {
        let mut d = Deframer::default();
        for _ in 0..1000 {
            assert!(d.push(&[0x11; 997], 7).is_empty());
        }
        assert!(d.buf.len() <= 2 * MAX_DATAGRAM);
    }
}
