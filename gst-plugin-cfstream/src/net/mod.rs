//! Networking pieces of the plugin's listeners that do not depend on the protocol spoken: the
//! admission of new connections (caps), the batching grid live connections are read on, TLS
//! server configuration from PEM files, and the socket calls a consumer's own thread needs to
//! read a TCP connection. The RTMP listener ([`crate::rtmp`]) uses all four; a listener for
//! another protocol would share the caps, the grid and, for TCP, the socket calls.

pub mod admission;
pub mod grid;
pub mod silence;
pub mod socket;
pub mod tls;
