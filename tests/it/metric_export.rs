//! The `metrics` feature: what the layer exports through the facade, read back from a recorder
//! installed for the test's thread (`metrics::with_local_recorder`), so tests running beside it
//! count nothing here. Handles are registered when the layer is built, and the latency histogram
//! is looked up when a verification ends: both happen on the test's current-thread runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use line_auth::LineAuthLayer;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

use crate::support::*;

/// Every counter and histogram registered, by name and labels (`name{label=value}`).
#[derive(Default)]
struct Recorded {
    counters: Mutex<HashMap<String, Arc<Count>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn named(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(Arc::clone(counters.entry(named(key)).or_default()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().unwrap();
        Histogram::from_arc(Arc::clone(histograms.entry(named(key)).or_default()))
    }
}

impl Recorded {
    /// The counters that are not zero.
    fn counted(&self) -> HashMap<String, u64> {
        self.counters
            .lock()
            .unwrap()
            .iter()
            .map(|(name, count)| (name.clone(), count.0.load(Ordering::SeqCst)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// The samples of each histogram that has any.
    fn sampled(&self) -> HashMap<String, Vec<f64>> {
        self.histograms
            .lock()
            .unwrap()
            .iter()
            .map(|(name, samples)| (name.clone(), samples.0.lock().unwrap().clone()))
            .filter(|(_, samples)| !samples.is_empty())
            .collect()
    }
}

/// Runs `test` on a current-thread runtime with `recorder` as the thread's recorder.
fn recorded<F: std::future::Future>(recorder: &Recorded, test: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(recorder, || runtime.block_on(test))
}

fn counts(expected: &[(&str, u64)]) -> HashMap<String, u64> {
    expected
        .iter()
        .map(|(name, count)| (name.to_string(), *count))
        .collect()
}

#[test]
fn each_request_is_counted_under_its_event_and_reason_and_each_verification_timed() {
    let recorder = Recorded::default();
    recorded(&recorder, async {
        let line = Line::start().await;
        let layer = LineAuthLayer::new(line.config().build().unwrap());
        let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
        // Each event happens a different number of times, so no two labels can be swapped
        // unseen.
        assert_eq!(
            get_anonymous(&base, "/api/me").await.status,
            StatusCode::UNAUTHORIZED
        );
        for (token, requests) in [(line.token(), 6), (line.token(), 1)] {
            for _ in 0..requests {
                assert_eq!(
                    get_bearer(&base, "/api/me", &token).await.status,
                    StatusCode::OK
                );
            }
        }
        for _ in 0..5 {
            assert_eq!(
                get_bearer(&base, "/api/me", "not-a-token-line-issued")
                    .await
                    .status,
                StatusCode::UNAUTHORIZED
            );
        }
    });

    assert_eq!(
        recorder.counted(),
        counts(&[
            ("line_auth_rejections_total{reason=missing_token}", 1),
            ("line_auth_events_total{event=miss}", 3),
            ("line_auth_events_total{event=verified}", 2),
            ("line_auth_events_total{event=cache_hit}", 5),
            ("line_auth_events_total{event=refused}", 1),
            ("line_auth_events_total{event=negative_hit}", 4),
            ("line_auth_rejections_total{reason=invalid_token}", 5),
        ])
    );
    let sampled = recorder.sampled();
    let timed: HashMap<&str, usize> = sampled
        .iter()
        .map(|(name, samples)| (name.as_str(), samples.len()))
        .collect();
    assert_eq!(
        timed,
        HashMap::from([
            ("line_auth_upstream_seconds{outcome=verified}", 2),
            ("line_auth_upstream_seconds{outcome=refused}", 1),
        ]),
        "one sample per verification, under its outcome"
    );
    for sample in sampled.values().flatten() {
        // In seconds: a loopback verification takes more than nothing and less than a minute.
        assert!(*sample > 0.0 && *sample < 60.0, "{sampled:?}");
    }
}

/// A verdict another replica left in Redis took no call to LINE: it is counted as a shared hit,
/// and the latency histogram, which times LINE, has no sample for it.
#[cfg(feature = "redis")]
#[test]
fn a_verdict_from_the_fleet_is_counted_as_shared_and_not_timed_as_a_call_to_line() {
    use crate::fleet::Replica;
    use crate::redis_server::RedisServer;

    let recorder = Recorded::default();
    let redis = RedisServer::start();
    let timed_after_each = recorded(&recorder, async {
        let line = Line::start().await;
        let first = Replica::start(&line, &redis.url()).await;
        let second = Replica::start(&line, &redis.url()).await;
        let token = line.token();

        let mut timed_after_each = Vec::new();
        for replica in [&first, &second] {
            assert_eq!(replica.me(&token).await, StatusCode::OK);
            timed_after_each.push(recorder.sampled().values().map(Vec::len).sum::<usize>());
        }
        assert_eq!(line.calls(), (1, 1), "LINE asked once, for the fleet");
        timed_after_each
    });

    assert_eq!(
        timed_after_each,
        [1, 1],
        "the first replica's verification timed, the second's read from Redis not"
    );
    let counted = recorder.counted();
    for (name, count) in [
        ("line_auth_events_total{event=shared_miss}", 1),
        ("line_auth_events_total{event=shared_hit}", 1),
        ("line_auth_events_total{event=verified}", 2),
    ] {
        assert_eq!(counted.get(name), Some(&count), "{name}: {counted:?}");
    }
}
