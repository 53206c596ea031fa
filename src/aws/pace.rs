//! Client-side pacing of a refresh's reads, one token bucket per service, shared by the whole
//! process (AWS throttles per account and region, so every configuration's reads draw on it).
//! A refresh runs its reads at once (`--parallelism` in flight); this keeps their rate within
//! what AWS allows, so that a big refresh does not trip throttling in the first place. Once
//! AWS throttles anyway, the SDK's adaptive retry mode backs off and paces every request to
//! that service (`AwsProvider::connect`).
//!
//! The rates:
//! - EC2: AWS documents its throttling as a token bucket per account and Region; for
//!   non-mutating actions (the `Describe*` calls refresh makes) the bucket holds 100 tokens
//!   and refills at 20 per second ("Request throttling for the Amazon EC2 API", Amazon EC2
//!   Developer Guide, <https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html>).
//!   skyform keeps to those figures.
//! - IAM: AWS publishes no request rate ("IAM and AWS STS quotas" lists object quotas only,
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>; its
//!   Knowledge Center article on IAM throttling says only that calls count towards an
//!   account-wide limit that cannot be raised). skyform assumes half of EC2's: a bucket of 20
//!   refilled at 10 per second, which the per-policy and per-user calls of a big estate are
//!   the only reads to reach.
//!
//! Each read of a refresh takes one token before it starts; a read that follows pages takes
//! one for its first page only (the pages of one read are sequential, so they add no
//! concurrency).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One service's token bucket.
#[derive(Debug)]
pub(crate) struct Pace {
    per_second: f64,
    burst: f64,
    /// The tokens left (negative: reserved ahead by readers now waiting) and when that was
    /// worked out; `None` until the first read, when the bucket is full.
    state: Mutex<Option<(f64, Instant)>>,
}

/// EC2's documented bucket for non-mutating actions.
pub(crate) static EC2: Pace = Pace::new(20.0, 100.0);

/// IAM's assumed bucket (it publishes none).
pub(crate) static IAM: Pace = Pace::new(10.0, 20.0);

impl Pace {
    const fn new(per_second: f64, burst: f64) -> Pace {
        Pace {
            per_second,
            burst,
            state: Mutex::new(None),
        }
    }

    /// Waits until a token is this caller's.
    pub(crate) async fn take(&self) {
        let wait = {
            // A poisoned lock only means a panic elsewhere; the numbers are still whole.
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.reserve(&mut state, Instant::now())
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token at `now`, in advance when none is left: how long to wait for it.
    fn reserve(&self, state: &mut Option<(f64, Instant)>, now: Instant) -> Option<Duration> {
        let (tokens, since) = state.unwrap_or((self.burst, now));
        let refilled = now.saturating_duration_since(since).as_secs_f64() * self.per_second;
        let left = (tokens + refilled).min(self.burst) - 1.0;
        *state = Some((left, now));
        (left < 0.0).then(|| Duration::from_secs_f64(-left / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_lets_its_burst_through_then_one_read_per_refill() {
        let pace = Pace::new(20.0, 100.0);
        let mut state = None;
        let start = Instant::now();
        for _ in 0..100 {
            assert_eq!(pace.reserve(&mut state, start), None);
        }
        // The 101st waits one refill (50 ms), the 102nd two: each reserves its own token.
        let waits = [
            pace.reserve(&mut state, start),
            pace.reserve(&mut state, start),
        ];
        let secs = waits.map(|w| w.map(|w| (w.as_secs_f64() * 1000.0).round()));
        assert_eq!(secs, [Some(50.0), Some(100.0)]);
        // A second later 20 tokens came back, of which two were already taken.
        let later = start + Duration::from_secs(1);
        for _ in 0..18 {
            assert_eq!(pace.reserve(&mut state, later), None);
        }
        assert!(pace.reserve(&mut state, later).is_some());
        // An idle bucket refills to its burst, no further.
        let idle = later + Duration::from_mins(1);
        for _ in 0..100 {
            assert_eq!(pace.reserve(&mut state, idle), None);
        }
        assert!(pace.reserve(&mut state, idle).is_some());
    }
}
