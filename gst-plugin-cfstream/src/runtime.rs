//! The process-wide tokio runtime shared by every element.
