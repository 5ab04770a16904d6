//! A quick A/B of easyraft-client over JSON-RPC/HTTP and over the binary stream, against
//! a local 3-node kv cluster ([`examples::runner::LocalCluster`], in-memory logs):
//! `clients` concurrent callers, each with its own `Client`, each making `calls`
//! sequential calls (half `kv_put`, half `kv_get`), the callers started together.
//! Prints throughput and latency percentiles per protocol; last, the stream with one
//! `Client` shared by all the callers (one connection multiplexing them all).
//!
//! `cargo run -p examples --example stream_ab -- [clients] [calls]` (defaults 64, 100).

use std::time::{Duration, Instant};

use easyraft::RaftConfig;
use easyraft_client::client::{Call, Client, Protocol, Settings};
use easyraft_client::endpoint::Endpoint;
use easyraft_client::policy::CallKind;
use examples::kv;
use examples::runner::{LocalCluster, TOKEN};
use serde_json::json;

fn client(port: u16, protocol: Protocol) -> Result<Client, easyraft_client::Error> {
    Client::new(Settings {
        endpoints: vec![Endpoint {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        }],
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(30),
        admin_token: Some(TOKEN.into()),
        cacert: None,
        protocol,
    })
}

async fn run(
    port: u16,
    protocol: Protocol,
    shared: bool,
    clients: usize,
    calls: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let one = client(port, protocol)?;
    for c in 0..clients {
        let client = if shared { one.clone() } else { client(port, protocol)? };
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(calls);
            for i in 0..calls {
                let key = format!("c{c}-{}", i / 2);
                let call = if i % 2 == 0 {
                    Call::new("kv_put", CallKind::IdempotentWrite, json!({"key": key, "value": "x"}))
                } else {
                    Call::new("kv_get", CallKind::Read, json!({"key": key}))
                };
                let t = Instant::now();
                client.call(&call.admin()).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, easyraft_client::Error>(lat)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    let wall = start.elapsed();
    all.sort();
    let pct = |p: usize| {
        all.get((all.len() * p / 100).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{protocol:?}{}: {clients} clients x {calls} calls = {} in {:.2?}: {:.0} calls/s, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        if shared { " (one shared client)" } else { "" },
        all.len(),
        wall,
        all.len() as f64 / wall.as_secs_f64(),
        pct(50),
        pct(99),
        all.last().copied().unwrap_or_default()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    let calls: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let local = LocalCluster::start(3, None, RaftConfig::fast(), kv::rpc).await?;
    let leader = local.cluster.wait_for_leader(Duration::from_secs(10)).await?;
    let port = local.ports[leader.id().as_str()];
    // Warm-up, then each protocol twice, alternating.
    run(port, Protocol::Http, false, 4, 10).await?;
    for _ in 0..2 {
        run(port, Protocol::Http, false, clients, calls).await?;
        run(port, Protocol::Stream, false, clients, calls).await?;
        run(port, Protocol::Stream, true, clients, calls).await?;
    }
    Ok(())
}
