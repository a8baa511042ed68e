//! What std and tokio do not offer for a live publisher's TCP socket, read on its consumer's
//! thread (see `crate::rtmp::PublisherFeed`): a receive low-water mark, and a wait for the
//! socket, a deadline or an [`Interrupt`], whichever comes first; plus the non-blocking read that
//! goes with them. And a fixed send buffer for a player's socket (`crate::rtmp` play).

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use bytes::BytesMut;

/// Sets `SO_RCVLOWAT`: the socket reports readable (and wakes the runtime) only once this many
/// bytes are queued, or at end of stream. Linux grows the receive buffer to hold them.
pub fn set_receive_low_water(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    set_int_option(stream.as_raw_fd(), libc::SO_RCVLOWAT, bytes)
}

/// Sets `SO_SNDBUF` (Linux doubles it), which also ends its autotuning: what the kernel may
/// hold for a slow peer.
pub fn set_send_buffer(socket: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    set_int_option(socket.as_raw_fd(), libc::SO_SNDBUF, bytes)
}

fn set_int_option(fd: std::os::fd::RawFd, option: libc::c_int, value: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is open for the borrow's duration; the option value is a c_int
    // whose size is passed alongside.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads up to `max` bytes that are already queued, appending them to `buffer`; `WouldBlock`
/// when there are none, `Ok(0)` at end of stream. Never blocks (`MSG_DONTWAIT`).
pub fn read_queued(stream: &TcpStream, buffer: &mut BytesMut, max: usize) -> io::Result<usize> {
    // Straight into the buffer's spare capacity: zeroing 64 KiB before each read (the safe way)
    // was 7 % of controld's CPU at 50 streams, about a 15 KiB read every 40 ms each
    // (bench/RESULTS.md, CPU against nginx-rtmp on CMAF).
    buffer.reserve(max);
    let spare = &mut buffer.spare_capacity_mut()[..max];
    // SAFETY: the descriptor is open for the borrow's duration; `recv` writes at most
    // `spare.len()` bytes into memory the buffer owns and does not read it.
    let read = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    let Ok(read) = usize::try_from(read) else {
        return Err(io::Error::last_os_error());
    };
    // SAFETY: `recv` initialised the first `read` bytes of the spare capacity.
    unsafe { buffer.set_len(buffer.len() + read) };
    Ok(read)
}

/// Waits until `socket` has something to read (at least the low-water mark, or its end), the
/// `deadline` passes or `interrupt` is raised; `true` if interrupted.
pub fn wait_readable(socket: &TcpStream, interrupt: &Interrupt, deadline: Instant) -> bool {
    let mut fds = [
        libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        },
        libc::pollfd {
            fd: interrupt.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ready = poll_until(&mut fds, deadline);
    ready > 0 && fds[1].revents != 0
}

/// `ppoll` on `fds` until `deadline`: the number of ready descriptors (≤ 0: none).
fn poll_until(fds: &mut [libc::pollfd], deadline: Instant) -> libc::c_int {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // SAFETY: the caller's descriptors are open for the borrow's duration; `fds` and `timeout`
    // are valid for the call, and the array length is passed alongside.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &raw const timeout,
            std::ptr::null(),
        )
    }
}

/// Wakes a thread in [`wait_readable`] or [`Interrupt::wait`] from another thread (an eventfd).
#[derive(Debug)]
pub struct Interrupt {
    fd: OwnedFd,
}

impl Interrupt {
    pub fn new() -> io::Result<Interrupt> {
        // SAFETY: plain system call; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        Ok(Interrupt {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Raised until [`Interrupt::clear`].
    pub fn raise(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. It fails only if the counter
        // would overflow, which leaves it raised.
        unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
    }

    /// Waits until the interrupt is raised (`true`) or `deadline` passes (`false`): the sleep
    /// between two reads of a connection whose readiness cannot be polled (an SRT socket).
    pub fn wait(&self, deadline: Instant) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ready = poll_until(&mut fds, deadline);
        ready > 0
    }

    pub fn clear(&self) {
        let mut value = 0u64;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (not raised) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut value).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Duration;

    fn connected_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, server)
    }

    #[test]
    fn queued_bytes_are_read_after_the_deadline_below_the_low_water_mark() {
        let (mut client, server) = connected_pair();
        set_receive_low_water(&server, 256 * 1024).unwrap();
        let interrupt = Interrupt::new().unwrap();
        let mut buffer = BytesMut::new();
        let error = read_queued(&server, &mut buffer, 16).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);

        client.write_all(b"hello, world").unwrap();
        // 12 bytes stay below the mark: the wait ends at its deadline, and the bytes are there.
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(!wait_readable(&server, &interrupt, deadline));
        assert!(Instant::now() >= deadline);
        assert_eq!(read_queued(&server, &mut buffer, 5).unwrap(), 5);
        assert_eq!(read_queued(&server, &mut buffer, 64).unwrap(), 7);
        assert_eq!(&buffer[..], b"hello, world");

        drop(client);
        let far = Instant::now() + Duration::from_secs(60);
        assert!(
            !wait_readable(&server, &interrupt, far),
            "the end wakes the wait"
        );
        assert_eq!(read_queued(&server, &mut buffer, 64).unwrap(), 0);
    }

    #[test]
    fn an_interrupt_ends_the_wait_until_cleared() {
        let (_client, server) = connected_pair();
        let interrupt = Interrupt::new().unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        std::thread::scope(|scope| {
            scope.spawn(|| interrupt.raise());
            assert!(wait_readable(&server, &interrupt, far));
        });
        assert!(wait_readable(&server, &interrupt, far), "still raised");
        interrupt.clear();
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(!wait_readable(&server, &interrupt, soon));
        assert!(!interrupt.wait(Instant::now() + Duration::from_millis(20)));
        interrupt.raise();
        assert!(interrupt.wait(far));
    }
}
