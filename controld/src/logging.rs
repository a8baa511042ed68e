//! GStreamer's debug log routed into `tracing`: one event per message, target
//! `gstreamer::<category>` (e.g. `gstreamer::GST_PADS`, `gstreamer::cfhlssink`), so the same
//! `CONTROLD_LOG` filter and formatter apply to both.
//!
//! Only installed when asked for, so that by default it costs nothing (GStreamer's threshold
//! stays at "none" and no log function runs): when `GST_DEBUG` is set (GStreamer reads it and
//! picks what it produces; `CONTROLD_LOG` still picks what is printed), or when `CONTROLD_LOG`
//! names a `gstreamer` target (`gstreamer=debug`, `gstreamer::GST_PADS=trace`), which then also
//! sets GStreamer's thresholds to match.
//!
//! Levels: ERROR → error, WARNING → warn, FIXME and INFO → info, DEBUG → debug, LOG, TRACE and
//! MEMDUMP → trace.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use gst::DebugLevel;
use tracing::Level;
use tracing_core::callsite::{Callsite, register};
use tracing_core::field::{FieldSet, Value};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Kind, Metadata, dispatcher, identify_callsite};

const TARGET_PREFIX: &str = "gstreamer";
const FIELDS: &[&str] = &[
    "message",
    "gst.object",
    "gst.file",
    "gst.line",
    "gst.function",
];

/// Installs the bridge when `GST_DEBUG` is set or `controld_log` (the `CONTROLD_LOG` filter)
/// names a `gstreamer` target. Returns whether it was installed.
pub fn route_gstreamer_debug(controld_log: Option<&str>) -> Result<bool, gst::glib::Error> {
    let thresholds = gst_thresholds(controld_log.unwrap_or_default());
    if std::env::var_os("GST_DEBUG").is_none() && thresholds.is_empty() {
        return Ok(false);
    }
    gst::init()?;
    if !thresholds.is_empty() {
        gst::log::set_threshold_from_string(&thresholds.join(","), false);
        gst::log::set_active(true);
    }
    gst::log::remove_default_log_function();
    gst::log::add_log_function(|category, level, file, function, line, object, message| {
        let Some(level) = tracing_level(level) else {
            return;
        };
        if level > tracing::level_filters::LevelFilter::current() {
            return;
        }
        let metadata = callsite(category.name(), level).metadata();
        dispatcher::get_default(|dispatch| {
            if !dispatch.enabled(metadata) {
                return;
            }
            let fields = metadata.fields();
            let field = |name| fields.field(name).expect("declared in FIELDS");
            let text = message.get();
            let text = text.as_deref().map(|t| t.as_str()).unwrap_or_default();
            let object = object.map(|o| o.to_string());
            let (file, function) = (file.as_str(), function.as_str());
            dispatch.event(&Event::new(
                metadata,
                &fields.value_set(&[
                    (&field("message"), Some(&text as &dyn Value)),
                    (
                        &field("gst.object"),
                        object.as_ref().map(|o| o as &dyn Value),
                    ),
                    (&field("gst.file"), Some(&file as &dyn Value)),
                    (&field("gst.line"), Some(&line as &dyn Value)),
                    (&field("gst.function"), Some(&function as &dyn Value)),
                ]),
            ));
        });
    });
    Ok(true)
}

fn tracing_level(level: DebugLevel) -> Option<Level> {
    Some(match level {
        DebugLevel::Error => Level::ERROR,
        DebugLevel::Warning => Level::WARN,
        DebugLevel::Fixme | DebugLevel::Info => Level::INFO,
        DebugLevel::Debug => Level::DEBUG,
        DebugLevel::Log | DebugLevel::Trace | DebugLevel::Memdump => Level::TRACE,
        _ => return None,
    })
}

/// GStreamer threshold directives (`GST_PADS:7`, `*:5`) for the `gstreamer` targets of a
/// tracing filter (`info,gstreamer=debug,gstreamer::GST_PADS=trace`).
fn gst_thresholds(filter: &str) -> Vec<String> {
    filter
        .split(',')
        .filter_map(|directive| {
            let (target, level) = match directive.trim().split_once('=') {
                Some((t, l)) => (t, l.trim()),
                // A bare target enables every level.
                None => (directive.trim(), "trace"),
            };
            let category = match target.trim().strip_prefix(TARGET_PREFIX)? {
                "" => "*",
                rest => rest.strip_prefix("::")?,
            };
            let gst_level = match level.to_ascii_lowercase().as_str() {
                "off" => 0,
                "error" => 1,
                "warn" => 2,
                "info" => 4,
                "debug" => 5,
                "trace" => 7,
                _ => return None,
            };
            Some(format!("{category}:{gst_level}"))
        })
        .collect()
}

/// A callsite per (category, level): `tracing` needs `'static` metadata, so each is allocated
/// once and kept (bounded by the categories the process has times five levels).
struct CategoryCallsite {
    metadata: OnceLock<Metadata<'static>>,
}

impl Callsite for CategoryCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.metadata.get().expect("set right after allocation")
    }
}

fn callsite(category: &str, level: Level) -> &'static CategoryCallsite {
    static CALLSITES: OnceLock<Mutex<HashMap<(String, Level), &'static CategoryCallsite>>> =
        OnceLock::new();
    let mut map = CALLSITES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(cs) = map.get(&(category.to_owned(), level)) {
        return cs;
    }
    let cs: &'static CategoryCallsite = Box::leak(Box::new(CategoryCallsite {
        metadata: OnceLock::new(),
    }));
    let target: &'static str = Box::leak(format!("{TARGET_PREFIX}::{category}").into_boxed_str());
    let _ = cs.metadata.set(Metadata::new(
        "gstreamer debug message",
        target,
        level,
        None,
        None,
        None,
        FieldSet::new(FIELDS, identify_callsite!(cs)),
        Kind::EVENT,
    ));
    register(cs);
    map.insert((category.to_owned(), level), cs);
    cs
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn controld_log_directives_become_gstreamer_thresholds() {
        assert!(gst_thresholds("info").is_empty());
        assert!(gst_thresholds("controld=debug,gstreamerx=debug").is_empty());
        assert_eq!(
            gst_thresholds("info,gstreamer=debug,gstreamer::GST_PADS=TRACE"),
            ["*:5", "GST_PADS:7"]
        );
        assert_eq!(gst_thresholds("gstreamer::cfhlssink"), ["cfhlssink:7"]);
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn gstreamer_messages_arrive_as_tracing_events_with_the_category_target() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("gstreamer::cftestlog=debug")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // `with_default` sets the filter's level only for this thread; the bridge checks it.
            assert!(route_gstreamer_debug(Some("gstreamer::cftestlog=debug")).unwrap());
            let cat = gst::DebugCategory::new("cftestlog", gst::DebugColorFlags::empty(), None);
            gst::debug!(cat, "hello from gstreamer {}", 42);
            gst::log!(cat, "filtered out by the debug threshold");
        });
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("gstreamer::cftestlog"), "{out}");
        assert!(out.contains("hello from gstreamer 42"), "{out}");
        assert!(out.contains("DEBUG"), "{out}");
        assert!(!out.contains("filtered out"), "{out}");
    }
}
