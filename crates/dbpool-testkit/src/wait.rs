//! Waiting for a condition no event announces (a pool's status over gRPC, a session in
//! `pg_stat_activity`): poll it with a deadline instead of sleeping and hoping. On
//! tokio's clock, so it also works, instantly, under paused time.
use std::future::Future;
use std::time::Duration;

/// How often a condition is asked again.
const POLL: Duration = Duration::from_millis(20);

/// Asks `probe` until it returns `Some`, then returns that; `None` when `within` passes
/// first (for a caller that builds its own failure message).
pub async fn try_wait_for<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        // The poll interval of a condition without an event, not a synchronisation.
        tokio::time::sleep(POLL).await;
    }
}

/// Asks `probe` until it returns `Some`, then returns that; panics naming `what` when
/// `within` passes first.
pub async fn wait_for<T, F, Fut>(within: Duration, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    try_wait_for(within, probe)
        .await
        .unwrap_or_else(|| panic!("gave up after {within:?} waiting for: {what}"))
}

/// Asks `cond` until it holds; panics naming `what` when `within` passes first.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(within, what, || {
        let holds = cond();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// `wait_until` for a condition that needs no `.await`.
pub async fn wait_until_sync(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_until(within, what, || std::future::ready(cond())).await
}
