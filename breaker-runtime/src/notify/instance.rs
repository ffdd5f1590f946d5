//! Who this process is, as alerts and the fleet name it.

use std::sync::OnceLock;
use std::time::SystemTime;

/// `hostname:pid` of this process.
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub(crate) fn instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let host = hostname().unwrap_or_else(|| "localhost".to_owned());
        format!("{host}:{}", std::process::id())
    })
}

/// This machine's name, if it has a non-empty one: the kernel's, else `/etc/hostname`, else
/// `$HOSTNAME` (`$COMPUTERNAME` on Windows), trimmed.
#[cfg(any(feature = "webhook", feature = "telegram", feature = "redis"))]
pub(crate) fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|k| std::env::var(k).ok()),
        )
        .map(|h| h.trim().to_owned())
        .find(|h| !h.is_empty())
}
/// Random per process (`<hex>`), for ids of alerts this process raises on its own: unlike a
/// pid, it differs across containers.
pub(crate) fn process_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
    })
}
