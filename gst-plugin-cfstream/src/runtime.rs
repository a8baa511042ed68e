//! The process-wide tokio runtime shared by every element.
//!
//! All network I/O of the plugin (RTMP listeners and their connections) runs on this one runtime
//! with two worker threads, so that a process with hundreds of idle inputs does not pay a thread
//! per listener, per connection or per element.

use std::sync::LazyLock;

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the shared runtime: the machine class cfstream targets has two cores.
const WORKER_THREADS: usize = 2;

/// The runtime; created on first use and never shut down (it lives as long as the process).
pub static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("cfstream-rt")
        .enable_all()
        .build()
        .expect("cannot create the cfstream tokio runtime")
});
