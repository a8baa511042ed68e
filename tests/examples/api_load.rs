//! Open-loop HTTP load client for bench/controld-api.sh.
//!
//! `api_load URL TOKEN RATE SECONDS [CONNECTIONS]`: sends GET URL at RATE requests/s for SECONDS
//! over CONNECTIONS keep-alive connections and prints latency percentiles. Latency is measured
//! from each request's scheduled time, so a server that falls behind is charged for the wait
//! (no coordinated omission).

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: api_load URL TOKEN RATE SECONDS [CONNECTIONS]");
        std::process::exit(2);
    }
    let url = args[1].clone();
    let token = format!("Bearer {}", args[2]);
    let rate: u64 = args[3].parse().expect("RATE");
    let seconds: u64 = args[4].parse().expect("SECONDS");
    let connections: u64 = args.get(5).map_or(8, |c| c.parse().expect("CONNECTIONS"));
    let total = rate * seconds;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now() + Duration::from_millis(100);

    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let (url, token) = (url.clone(), token.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(10))
                    .build();
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                for i in (worker..total).step_by(connections as usize) {
                    let due = start + interval * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let ok = match agent.get(&url).set("Authorization", &token).call() {
                        Ok(response) => response.into_string().is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(due.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.join().expect("worker");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "requests={} errors={errors} achieved_rate={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    );
}
