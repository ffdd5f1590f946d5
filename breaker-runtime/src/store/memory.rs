//! The default store: state kept in this process, commands applied at once.

use crate::breaker::Breaker;
use crate::core::config::StoreKind;
use crate::store::{Command, Store, StoreError, StoreFuture};

/// Process-local state: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Memory
    }

    fn command(
        &self,
        breaker: &'static Breaker,
        command: Command,
    ) -> StoreFuture<'_, Result<(), StoreError>> {
        breaker.apply(command.forced());
        Box::pin(std::future::ready(Ok(())))
    }
}
