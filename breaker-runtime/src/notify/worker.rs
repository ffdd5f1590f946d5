//! A bounded queue served by one named thread, started at the first item: the dispatcher's
//! `breaker-notify` thread and each HTTP notifier's delivery thread. Pushing never blocks (a full
//! queue hands the item back); flushing waits, for a bounded time, until everything queued before
//! it has been handled.

use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

enum Msg<T> {
    Item(T),
    Flush(mpsc::Sender<()>),
}

/// See the module documentation.
pub(crate) struct Worker<T> {
    capacity: usize,
    /// `None` once starting the thread failed: every push is refused.
    tx: OnceLock<Option<SyncSender<Msg<T>>>>,
}

impl<T> std::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("capacity", &self.capacity)
            .field("started", &self.tx.get().is_some())
            .finish()
    }
}

impl<T: Send + 'static> Worker<T> {
    /// A worker whose queue holds at most `capacity` items.
    pub(crate) const fn new(capacity: usize) -> Self {
        Worker {
            capacity,
            tx: OnceLock::new(),
        }
    }

    /// Queues `item` without blocking, starting the thread (named `name`) on first use; on the
    /// thread, `init` builds the handler every item goes to. Gives the item back when the queue
    /// is full or the thread could not be started.
    pub(crate) fn try_push<H>(
        &self,
        item: T,
        name: impl FnOnce() -> String,
        init: impl FnOnce() -> H + Send + 'static,
    ) -> Result<(), T>
    where
        H: FnMut(T),
    {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(self.capacity);
            let name = name();
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || serve(&rx, init()))
                .map_err(|e| {
                    tracing::error!(thread = name, error = %e, "cannot start the thread; its events are dropped");
                })
                .ok()
                .map(|_| tx)
        });
        let Some(tx) = tx else { return Err(item) };
        tx.try_send(Msg::Item(item)).map_err(|e| match e {
            TrySendError::Full(Msg::Item(i)) | TrySendError::Disconnected(Msg::Item(i)) => i,
            TrySendError::Full(Msg::Flush(_)) | TrySendError::Disconnected(Msg::Flush(_)) => {
                unreachable!("an item was sent")
            }
        })
    }

    /// Waits until every item queued before this call has been handled, for at most
    /// `timeout`; whether it was. A worker that never started has nothing to flush.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let Some(Some(tx)) = self.tx.get() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        let (done, wait) = mpsc::channel();
        let mut msg = Msg::Flush(done);
        loop {
            match tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return true,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

fn serve<T>(rx: &Receiver<Msg<T>>, mut handle: impl FnMut(T)) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Item(item) => handle(item),
            Msg::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn items_are_handled_in_order_and_flush_waits_for_them() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let w: Worker<u32> = Worker::new(16);
        assert!(
            w.flush(Duration::from_millis(10)),
            "never started: nothing to flush"
        );
        for i in 0..10 {
            let seen = Arc::clone(&seen);
            w.try_push(
                i,
                || "test-worker".into(),
                move || move |i| seen.lock().unwrap().push(i),
            )
            .unwrap();
        }
        assert!(w.flush(Duration::from_secs(5)));
        assert_eq!(*seen.lock().unwrap(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_gives_the_item_back() {
        let (release, blocked) = mpsc::channel::<()>();
        let handled = Arc::new(AtomicUsize::new(0));
        let w: Worker<u32> = Worker::new(1);
        let h = Arc::clone(&handled);
        let blocked = std::sync::Mutex::new(Some(blocked));
        let init = move || {
            let blocked = blocked.lock().unwrap().take().unwrap();
            move |_| {
                // The first item holds the thread until released.
                if h.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = blocked.recv();
                }
            }
        };
        w.try_push(1, || "test-full".into(), init).unwrap();
        // Wait until the thread took item 1 and is blocked on it.
        while handled.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let never = || -> fn(u32) { |_| unreachable!() };
        w.try_push(2, || unreachable!(), never).unwrap();
        assert_eq!(w.try_push(3, || unreachable!(), never), Err(3));
        assert!(!w.flush(Duration::from_millis(20)), "the thread is held");
        release.send(()).unwrap();
        assert!(w.flush(Duration::from_secs(5)));
        assert_eq!(handled.load(Ordering::SeqCst), 2);
    }
}
