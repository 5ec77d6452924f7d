//! A tenant's quotas at run time: calls at once (a semaphore), calls per second (a token
//! bucket on tokio's clock, so paused time drives its tests) and the rows and bytes one
//! result may stream. Every refusal is `QuotaExceeded` naming the quota.
use dbpool_config::Quotas;
use dbpool_core::{Error, QueryStream, Result};
use futures::StreamExt;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The quota state of one tenant.
#[derive(Debug)]
pub struct TenantQuotas {
    tenant: Arc<str>,
    limits: Quotas,
    concurrent: Option<Arc<Semaphore>>,
    bucket: Option<Mutex<Bucket>>,
}

/// A token bucket: `tokens` left at `at`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A call's place among the tenant's concurrent calls; released on drop.
#[derive(Debug)]
pub struct CallPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl TenantQuotas {
    /// The state of `limits` for `tenant`.
    pub fn new(tenant: Arc<str>, limits: &Quotas) -> Self {
        let concurrent = (limits.max_concurrent_calls > 0)
            .then(|| Arc::new(Semaphore::new(limits.max_concurrent_calls as usize)));
        let bucket = (limits.calls_per_second > 0).then(|| {
            Mutex::new(Bucket {
                tokens: f64::from(burst(limits)),
                at: Instant::now(),
            })
        });
        TenantQuotas {
            tenant,
            limits: limits.clone(),
            concurrent,
            bucket,
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> &Quotas {
        &self.limits
    }

    /// The refusal of `quota` at `limit`.
    pub fn exceeded(&self, quota: &'static str, limit: u64) -> Error {
        Error::QuotaExceeded {
            tenant: self.tenant.to_string(),
            quota,
            limit,
        }
    }

    /// Admits one call: a token of the rate, then a place among the concurrent calls.
    /// A call refused for concurrency gives its token back.
    pub fn enter(&self) -> Result<CallPermit> {
        if let Some(bucket) = &self.bucket {
            let rate = f64::from(self.limits.calls_per_second);
            let mut b = bucket.lock();
            let now = Instant::now();
            let refill = now.saturating_duration_since(b.at).as_secs_f64() * rate;
            b.tokens = (b.tokens + refill).min(f64::from(burst(&self.limits)));
            b.at = now;
            if b.tokens < 1.0 {
                let limit = u64::from(self.limits.calls_per_second);
                return Err(self.exceeded("calls_per_second", limit));
            }
            b.tokens -= 1.0;
        }
        let permit = match &self.concurrent {
            None => None,
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    if let Some(bucket) = &self.bucket {
                        bucket.lock().tokens += 1.0;
                    }
                    let limit = u64::from(self.limits.max_concurrent_calls);
                    return Err(self.exceeded("max_concurrent_calls", limit));
                }
            },
        };
        Ok(CallPermit { _permit: permit })
    }

    /// Whether a result is bounded (rows or bytes).
    pub fn bounds_results(&self) -> bool {
        self.limits.max_result_rows > 0 || self.limits.max_result_bytes > 0
    }

    /// `q`, ended with `QuotaExceeded` by the batch that would take it past the rows or
    /// bytes one result may stream (that batch is not sent).
    pub fn limit_result(&self, q: QueryStream) -> QueryStream {
        if !self.bounds_results() {
            return q;
        }
        let quotas = TenantQuotas {
            tenant: self.tenant.clone(),
            limits: self.limits.clone(),
            concurrent: None,
            bucket: None,
        };
        let (mut rows, mut bytes, mut over) = (0u64, 0u64, false);
        let batches = q
            .batches
            .map(move |b| {
                let b = b?;
                rows += b.num_rows() as u64;
                bytes += b.get_array_memory_size() as u64;
                let l = &quotas.limits;
                if l.max_result_rows > 0 && rows > l.max_result_rows {
                    return Err(quotas.exceeded("max_result_rows", l.max_result_rows));
                }
                if l.max_result_bytes > 0 && bytes > l.max_result_bytes {
                    return Err(quotas.exceeded("max_result_bytes", l.max_result_bytes));
                }
                Ok(b)
            })
            .take_while(move |r| {
                let go = !over;
                over |= r.is_err();
                futures::future::ready(go)
            })
            .boxed();
        QueryStream {
            schema: q.schema,
            batches,
        }
    }
}

fn burst(l: &Quotas) -> u32 {
    if l.burst > 0 {
        l.burst
    } else {
        l.calls_per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use std::time::Duration;

    fn quotas(text: &str) -> TenantQuotas {
        TenantQuotas::new(Arc::from("t"), &toml::from_str(text).unwrap())
    }

    fn quota_of(e: Error) -> &'static str {
        match e {
            Error::QuotaExceeded { quota, .. } => quota,
            other => panic!("not a quota: {other}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_refuses_past_its_burst_and_refills_with_time() {
        let q = quotas("calls_per_second = 2\nburst = 3\n");
        for _ in 0..3 {
            q.enter().unwrap();
        }
        assert_eq!(quota_of(q.enter().unwrap_err()), "calls_per_second");
        tokio::time::advance(Duration::from_millis(500)).await;
        q.enter().unwrap();
        assert_eq!(quota_of(q.enter().unwrap_err()), "calls_per_second");
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..3 {
            q.enter().unwrap();
        }
        assert!(q.enter().is_err(), "the bucket holds the burst, no more");
    }

    #[tokio::test]
    async fn concurrency_is_held_by_the_permit_and_comes_back_on_drop() {
        let q = quotas("max_concurrent_calls = 2\n");
        let a = q.enter().unwrap();
        let _b = q.enter().unwrap();
        let e = q.enter().unwrap_err();
        assert_eq!(
            e.to_string(),
            "tenant `t` reached its quota max_concurrent_calls (2)"
        );
        drop(a);
        q.enter().unwrap();
        assert!(quotas("").enter().is_ok(), "no quota, no limit");
    }

    fn batch(n: i64) -> Result<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let col = Int64Array::from_iter_values(0..n);
        Ok(RecordBatch::try_new(schema, vec![Arc::new(col)]).unwrap())
    }

    #[tokio::test]
    async fn a_result_ends_with_the_quota_at_the_batch_that_crosses_it() {
        let q = quotas("max_result_rows = 25\n");
        let schema = batch(1).unwrap().schema();
        let stream = QueryStream {
            schema,
            batches: futures::stream::iter([batch(10), batch(10), batch(10), batch(10)]).boxed(),
        };
        let got: Vec<_> = q.limit_result(stream).batches.collect().await;
        assert_eq!(got.len(), 3, "two batches, then the error, then nothing");
        assert_eq!(got[1].as_ref().unwrap().num_rows(), 10);
        let e = got.into_iter().nth(2).unwrap().unwrap_err();
        assert_eq!(quota_of(e), "max_result_rows");
    }
}
