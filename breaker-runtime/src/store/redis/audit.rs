//! The audit log (`<prefix>:audit`): operators' changes, newest first, the last
//! [`AUDIT_KEEP`], written by `breakerctl` and by application code alike.

use redis::aio::ConnectionLike;

use super::protocol::{AUDIT_KEEP, AuditEntry, Keys, hostname, redact};

impl AuditEntry {
    /// Adds the entry to the fleet's audit log and trims the log to the last [`AUDIT_KEEP`]
    /// entries, in one round trip.
    ///
    /// # Errors
    /// Redis unreachable or refusing.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
    /// use breaker_runtime::redis::{AuditEntry, Keys};
    /// let keys = Keys::new("breaker");
    /// AuditEntry::now("ana@ops-1", "open", "daum", "forced open").push(conn, &keys).await?;
    /// # Ok(()) }
    /// ```
    pub async fn push<C: ConnectionLike>(
        &self,
        conn: &mut C,
        keys: &Keys,
    ) -> redis::RedisResult<()> {
        let key = keys.audit();
        redis::pipe()
            .cmd("LPUSH")
            .arg(key)
            .arg(self.to_json())
            .ignore()
            .cmd("LTRIM")
            .arg(key)
            .arg(0)
            .arg(AUDIT_KEEP - 1)
            .ignore()
            .query_async::<()>(conn)
            .await
    }

    /// The fleet's last `limit` audit entries, newest first. One that cannot be read as an
    /// entry is an `Err` with its text; the others are still returned.
    ///
    /// # Errors
    /// Redis unreachable or refusing.
    ///
    /// ```no_run
    /// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
    /// use breaker_runtime::redis::{AuditEntry, Keys};
    /// for entry in AuditEntry::read(conn, &Keys::new("breaker"), 20).await? {
    ///     match entry {
    ///         Ok(e) => println!("{} {} {} {}", e.who, e.command, e.breaker, e.detail),
    ///         Err(raw) => println!("unreadable: {raw}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read<C: ConnectionLike>(
        conn: &mut C,
        keys: &Keys,
        limit: usize,
    ) -> redis::RedisResult<Vec<Result<AuditEntry, String>>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(keys.audit())
            .arg(0)
            .arg(limit - 1)
            .query_async(conn)
            .await?;
        Ok(raw
            .into_iter()
            .map(|r| AuditEntry::from_json(&r).ok_or(r))
            .collect())
    }
}

/// Appends an operator change made from application code (`who`: `<program>@<host>`). Best
/// effort: the change itself has been made, so a failure is logged, not returned.
pub(crate) async fn audit_from_app<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    command: &str,
    breaker: &str,
    detail: &str,
) {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".to_owned());
    let who = format!("{program}@{}", hostname().as_deref().unwrap_or("localhost"));
    let entry = AuditEntry::now(&who, command, breaker, detail);
    if let Err(e) = entry.push(conn, keys).await {
        tracing::warn!(breaker, error = %redact(&e.to_string()), "could not write the audit entry");
    }
}
