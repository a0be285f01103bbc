//! Small helpers shared by the I/O modules.

use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;

/// Registers an fd-owning value with tokio's reactor.
pub fn async_fd<T: AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: every caller passes a value that owns its descriptor (OwnedFd,
    // UdpSocket, aya's RingBuf, EbpfLogger), so the fd stays open and is not
    // reused while the AsyncFd (which owns the value) exists.
    unsafe { AsyncFd::register(inner) }.map_err(|e| e.into())
}
