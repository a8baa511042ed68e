//! A safe owner of an SRT socket over [`super::ffi`]: the calls the listener and a caller's feed
//! make, each returning `io::Result` with libsrt's message. libsrt is started once per process
//! and never cleaned up (its threads live as long as the process, like the tokio runtime's).

use std::ffi::{CStr, c_int, c_void};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ffi;

/// An SRT socket, closed on drop (or before, by [`Socket::close`]).
#[derive(Debug)]
pub struct Socket {
    raw: ffi::SRTSOCKET,
    closed: AtomicBool,
}

/// What a non-blocking receive found.
pub enum Received {
    Message(usize),
    /// Nothing queued now.
    Empty,
}

/// The counters of a connection the element reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub packets_lost: u64,
    pub packets_dropped: u64,
}

fn startup() {
    static STARTUP: Once = Once::new();
    // SAFETY: plain library initialisation; called once, before any other call.
    STARTUP.call_once(|| unsafe {
        ffi::srt_startup();
        ffi::srt_setloglevel(ffi::LOG_ERR);
    });
}

/// libsrt's last error on this thread, as an `io::Error` of `kind` with its text.
fn last_error(kind: io::ErrorKind) -> io::Error {
    // SAFETY: returns a pointer to a thread-local NUL-terminated string owned by libsrt.
    let text = unsafe { CStr::from_ptr(ffi::srt_getlasterror_str()) };
    io::Error::new(kind, text.to_string_lossy().into_owned())
}

fn check(result: c_int, what: &str) -> io::Result<()> {
    if result == ffi::SRT_ERROR {
        let error = last_error(io::ErrorKind::Other);
        return Err(io::Error::new(error.kind(), format!("{what}: {error}")));
    }
    Ok(())
}

impl Socket {
    pub fn new() -> io::Result<Socket> {
        startup();
        // SAFETY: creates a socket we own from here on.
        let socket = unsafe { ffi::srt_create_socket() };
        if socket == ffi::SRT_INVALID_SOCK {
            return Err(last_error(io::ErrorKind::Other));
        }
        Ok(Socket::from_raw(socket))
    }

    /// Takes ownership of a socket libsrt handed out (accepted).
    fn from_raw(raw: ffi::SRTSOCKET) -> Socket {
        Socket {
            raw,
            closed: AtomicBool::new(false),
        }
    }

    /// Closes the socket now (a thread blocked in [`Socket::accept`] returns an error).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // SAFETY: we own the socket and close it once.
            unsafe { ffi::srt_close(self.raw) };
        }
    }

    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        let (storage, length) = to_sockaddr(addr);
        // SAFETY: `storage` holds a sockaddr of `length` bytes for the call's duration.
        let result = unsafe { ffi::srt_bind(self.raw, (&raw const storage).cast(), length) };
        check(result, &format!("binding {addr}"))
    }

    pub fn listen(&self, backlog: u32) -> io::Result<()> {
        // SAFETY: plain call on our socket.
        check(
            unsafe { ffi::srt_listen(self.raw, backlog as c_int) },
            "listen",
        )
    }

    /// Installs the handshake hook; `opaque` must outlive the socket.
    pub fn set_listen_callback(
        &self,
        hook: ffi::srt_listen_callback_fn,
        opaque: *const c_void,
    ) -> io::Result<()> {
        // SAFETY: libsrt keeps `opaque` and calls `hook` with it until the socket is closed;
        // the caller guarantees it lives that long.
        let result = unsafe { ffi::srt_listen_callback(self.raw, hook, opaque.cast_mut()) };
        check(result, "srt_listen_callback")
    }

    /// Blocks until a caller's handshake completes; `Err` once the listener is closed.
    pub fn accept(&self) -> io::Result<(Socket, SocketAddr)> {
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut length = size_of::<libc::sockaddr_storage>() as c_int;
        // SAFETY: `storage` has room for any address; libsrt writes `length` bytes of it.
        let socket = unsafe { ffi::srt_accept(self.raw, (&raw mut storage).cast(), &mut length) };
        if socket == ffi::SRT_INVALID_SOCK {
            return Err(last_error(io::ErrorKind::Other));
        }
        let socket = Socket::from_raw(socket);
        let remote = from_sockaddr(&storage)
            .ok_or_else(|| io::Error::other("caller address of an unknown family"))?;
        Ok((socket, remote))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut length = size_of::<libc::sockaddr_storage>() as c_int;
        // SAFETY: as in `accept`.
        let result =
            unsafe { ffi::srt_getsockname(self.raw, (&raw mut storage).cast(), &mut length) };
        check(result, "srt_getsockname")?;
        from_sockaddr(&storage).ok_or_else(|| io::Error::other("unknown address family"))
    }

    pub fn set_int(&self, option: c_int, value: i32) -> io::Result<()> {
        // SAFETY: `value` is a live i32 whose size is passed alongside.
        let result = unsafe {
            ffi::srt_setsockflag(
                self.raw,
                option,
                (&raw const value).cast(),
                size_of::<i32>() as c_int,
            )
        };
        check(result, "srt_setsockflag")
    }

    pub fn set_bool(&self, option: c_int, value: bool) -> io::Result<()> {
        // libsrt reads boolean options as an int (C++ bool options accept both sizes).
        self.set_int(option, i32::from(value))
    }

    /// A string option, such as the caller's stream id (at most 512 bytes).
    pub fn text(&self, option: c_int) -> io::Result<String> {
        let mut buffer = [0u8; 1024];
        let mut length = buffer.len() as c_int;
        // SAFETY: libsrt writes at most `length` bytes into `buffer` and updates `length`.
        let result = unsafe {
            ffi::srt_getsockflag(self.raw, option, buffer.as_mut_ptr().cast(), &mut length)
        };
        check(result, "srt_getsockflag")?;
        let length = (length.max(0) as usize).min(buffer.len());
        Ok(String::from_utf8_lossy(&buffer[..length]).into_owned())
    }

    /// One message, without waiting (the socket must have `SRTO_RCVSYN` false).
    pub fn receive(&self, buffer: &mut [u8]) -> io::Result<Received> {
        // SAFETY: libsrt writes at most `buffer.len()` bytes into it.
        let result = unsafe {
            ffi::srt_recvmsg(self.raw, buffer.as_mut_ptr().cast(), buffer.len() as c_int)
        };
        if result >= 0 {
            return Ok(Received::Message(result as usize));
        }
        // SAFETY: reads this thread's last error code.
        match unsafe { ffi::srt_getlasterror(std::ptr::null_mut()) } {
            ffi::SRT_EASYNCRCV | ffi::SRT_ETIMEOUT => Ok(Received::Empty),
            _ => Err(last_error(io::ErrorKind::ConnectionAborted)),
        }
    }

    /// Sends one message (≤ 1316 bytes in live mode) without waiting (the socket must have
    /// `SRTO_SNDSYN` false); `Ok(false)`: the send buffer is full, the peer is not keeping up.
    pub fn send(&self, message: &[u8]) -> io::Result<bool> {
        // SAFETY: libsrt reads `message.len()` bytes of `message`; -1: no time to live.
        let result = unsafe {
            ffi::srt_sendmsg(
                self.raw,
                message.as_ptr().cast(),
                message.len() as c_int,
                -1,
                0,
            )
        };
        if result >= 0 {
            return Ok(true);
        }
        // SAFETY: reads this thread's last error code.
        match unsafe { ffi::srt_getlasterror(std::ptr::null_mut()) } {
            ffi::SRT_EASYNCSND => Ok(false),
            _ => Err(last_error(io::ErrorKind::ConnectionAborted)),
        }
    }

    pub fn is_connected(&self) -> bool {
        // SAFETY: plain call on our socket.
        unsafe { ffi::srt_getsockstate(self.raw) == ffi::SRTS_CONNECTED }
    }

    pub fn counters(&self) -> Counters {
        // SAFETY: an all-zero CBytePerfMon is valid; libsrt fills it in.
        let mut stats: ffi::SRT_TRACEBSTATS = unsafe { std::mem::zeroed() };
        // SAFETY: `stats` is larger than libsrt's structure (see its `rest`).
        if unsafe { ffi::srt_bstats(self.raw, &mut stats, 0) } == ffi::SRT_ERROR {
            return Counters::default();
        }
        Counters {
            packets_lost: stats.pkt_rcv_loss_total.max(0) as u64,
            packets_dropped: stats.pkt_rcv_drop_total.max(0) as u64,
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.close();
    }
}

/// Answers a handshake from inside the listen callback, on the socket being created.
pub struct Handshake(pub ffi::SRTSOCKET);

impl Handshake {
    pub fn set_passphrase(&self, passphrase: &str) -> bool {
        // SAFETY: the socket exists while the callback runs; libsrt copies the bytes.
        let result = unsafe {
            ffi::srt_setsockflag(
                self.0,
                ffi::SRTO_PASSPHRASE,
                passphrase.as_ptr().cast(),
                passphrase.len() as c_int,
            )
        };
        result != ffi::SRT_ERROR
    }

    pub fn set_latency(&self, milliseconds: i32) {
        // SAFETY: as above; `milliseconds` is a live i32.
        unsafe {
            ffi::srt_setsockflag(
                self.0,
                ffi::SRTO_RCVLATENCY,
                (&raw const milliseconds).cast(),
                size_of::<i32>() as c_int,
            )
        };
    }

    pub fn reject(&self, reason: c_int) {
        // SAFETY: as above.
        unsafe { ffi::srt_setrejectreason(self.0, reason) };
    }
}

fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, c_int) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let length = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, length as c_int)
}

fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    // SAFETY: the family field tells which structure the storage holds.
    unsafe { from_raw_sockaddr((storage as *const libc::sockaddr_storage).cast()) }
}

/// The address at `addr`.
///
/// # Safety
/// `addr` points to a valid `sockaddr_in` or `sockaddr_in6` (as its family says), or is null.
pub unsafe fn from_raw_sockaddr(addr: *const libc::sockaddr) -> Option<SocketAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller's guarantee.
    unsafe {
        match i32::from((*addr).sa_family) {
            libc::AF_INET => {
                let sin = &*addr.cast::<libc::sockaddr_in>();
                let ip = u32::from_be(sin.sin_addr.s_addr).into();
                Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
            }
            libc::AF_INET6 => {
                let sin6 = &*addr.cast::<libc::sockaddr_in6>();
                let ip = sin6.sin6_addr.s6_addr.into();
                let port = u16::from_be(sin6.sin6_port);
                Some(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id).into())
            }
            _ => None,
        }
    }
}
