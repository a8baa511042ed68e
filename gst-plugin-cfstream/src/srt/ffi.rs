//! The part of libsrt's C API (`srt/srt.h`, Debian's libsrt 1.5 built with GnuTLS) the listener
//! uses, declared by hand: a dozen functions and the constants they take. Only `socket.rs`
//! calls these.

#![allow(non_camel_case_types, clippy::upper_case_acronyms)]

use libc::{c_char, c_int, c_void, sockaddr};

pub type SRTSOCKET = i32;

pub const SRT_INVALID_SOCK: SRTSOCKET = -1;
pub const SRT_ERROR: c_int = -1;

// SRT_SOCKOPT
pub const SRTO_SNDSYN: c_int = 1;
pub const SRTO_RCVSYN: c_int = 2;
pub const SRTO_PASSPHRASE: c_int = 26;
pub const SRTO_RCVLATENCY: c_int = 43;
pub const SRTO_STREAMID: c_int = 46;

// SRT_SOCKSTATUS
pub const SRTS_CONNECTED: c_int = 5;

// SRT_ERRNO (1000 × major + minor)
/// Non-blocking send: the send buffer is full.
pub const SRT_EASYNCSND: c_int = 6001;
/// Non-blocking receive: nothing to read now.
pub const SRT_EASYNCRCV: c_int = 6002;
pub const SRT_ETIMEOUT: c_int = 6003;

/// syslog's LOG_ERR: libsrt logs refused handshakes (a wrong passphrase) as warnings, which a
/// server hears from anyone.
pub const LOG_ERR: c_int = 3;

// Reject reasons a listen callback may set (srt/access_control.h)
pub const SRT_REJX_BAD_REQUEST: c_int = 1400;

pub type srt_listen_callback_fn = unsafe extern "C" fn(
    opaque: *mut c_void,
    ns: SRTSOCKET,
    hs_version: c_int,
    peer: *const sockaddr,
    stream_id: *const c_char,
) -> c_int;

/// `struct CBytePerfMon` (SRT_TRACEBSTATS) up to the fields read, then room for the rest: libsrt
/// writes the whole structure of its version.
#[repr(C)]
pub struct SRT_TRACEBSTATS {
    pub ms_timestamp: i64,
    pub pkt_sent_total: i64,
    pub pkt_recv_total: i64,
    pub pkt_snd_loss_total: c_int,
    pub pkt_rcv_loss_total: c_int,
    pub pkt_retrans_total: c_int,
    pub pkt_sent_ack_total: c_int,
    pub pkt_recv_ack_total: c_int,
    pub pkt_sent_nak_total: c_int,
    pub pkt_recv_nak_total: c_int,
    pub us_snd_duration_total: i64,
    pub pkt_snd_drop_total: c_int,
    pub pkt_rcv_drop_total: c_int,
    pub pkt_rcv_undecrypt_total: c_int,
    pub byte_sent_total: u64,
    pub byte_recv_total: u64,
    pub byte_rcv_loss_total: u64,
    pub byte_retrans_total: u64,
    pub byte_snd_drop_total: u64,
    pub byte_rcv_drop_total: u64,
    pub byte_rcv_undecrypt_total: u64,
    /// The local and instant measurements (msRTT among them) and later additions.
    pub rest: [u8; 1024],
}

#[link(name = "srt-gnutls")]
unsafe extern "C" {
    pub fn srt_startup() -> c_int;
    pub fn srt_setloglevel(level: c_int);
    pub fn srt_create_socket() -> SRTSOCKET;
    pub fn srt_bind(u: SRTSOCKET, name: *const sockaddr, namelen: c_int) -> c_int;
    pub fn srt_listen(u: SRTSOCKET, backlog: c_int) -> c_int;
    pub fn srt_listen_callback(
        lsn: SRTSOCKET,
        hook: srt_listen_callback_fn,
        opaque: *mut c_void,
    ) -> c_int;
    pub fn srt_accept(u: SRTSOCKET, addr: *mut sockaddr, addrlen: *mut c_int) -> SRTSOCKET;
    pub fn srt_close(u: SRTSOCKET) -> c_int;
    pub fn srt_getsockname(u: SRTSOCKET, name: *mut sockaddr, namelen: *mut c_int) -> c_int;
    pub fn srt_getsockflag(
        u: SRTSOCKET,
        opt: c_int,
        optval: *mut c_void,
        optlen: *mut c_int,
    ) -> c_int;
    pub fn srt_setsockflag(u: SRTSOCKET, opt: c_int, optval: *const c_void, optlen: c_int)
    -> c_int;
    pub fn srt_recvmsg(u: SRTSOCKET, buf: *mut c_char, len: c_int) -> c_int;
    pub fn srt_sendmsg(
        u: SRTSOCKET,
        buf: *const c_char,
        len: c_int,
        ttl: c_int,
        inorder: c_int,
    ) -> c_int;
    pub fn srt_getlasterror(errno_loc: *mut c_int) -> c_int;
    pub fn srt_getlasterror_str() -> *const c_char;
    pub fn srt_getsockstate(u: SRTSOCKET) -> c_int;
    pub fn srt_setrejectreason(u: SRTSOCKET, value: c_int) -> c_int;
    pub fn srt_bstats(u: SRTSOCKET, perf: *mut SRT_TRACEBSTATS, clear: c_int) -> c_int;
}
