//! DNS discovery against a real authoritative DNS server (hickory-server, in this
//! process, on 127.0.0.1 with a random port) serving A, AAAA and SRV records.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use raft_core::NodeId;
use raft_discovery::testing::DnsTestServer;
use raft_discovery::{DiscoveryError, DnsConfig, DnsServiceDiscovery, NodeAddress, ServiceDiscovery};

const ZONE: &str = "example.test";

fn id(s: &str) -> NodeId {
    NodeId::new(s)
}

async fn zone() -> DnsTestServer {
    DnsTestServer::start(ZONE).await.expect("start the DNS server")
}

fn suffix(server: &DnsTestServer) -> DnsConfig {
    DnsConfig::suffix(".example.test", 7000)
        .with_name_server(server.addr())
        .with_timeout(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suffix_names_resolve_to_a_and_aaaa_records_with_the_configured_port() {
    let dns = zone().await;
    dns.set_a("node1.example.test", &[Ipv4Addr::new(127, 0, 0, 11)], 60)
        .await
        .unwrap();
    dns.set_aaaa("node2.example.test", &[Ipv6Addr::LOCALHOST], 60)
        .await
        .unwrap();
    let d = DnsServiceDiscovery::new(suffix(&dns).with_nodes(["node1", "node2"])).unwrap();
    assert_eq!(
        d.get_node_address(&id("node1")).await.unwrap(),
        NodeAddress::new("127.0.0.11", 7000)
    );
    let v6 = d.get_node_address(&id("node2")).await.unwrap();
    assert_eq!((v6.host.as_str(), v6.to_string()), ("::1", "[::1]:7000".to_string()));
    let all = d.get_all_node_addresses().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    // DNS is read-only: publishing is the DNS operator's job.
    assert!(matches!(
        d.register_node(&id("node3"), NodeAddress::new("h", 1)).await,
        Err(DiscoveryError::Unsupported { backend: "dns", .. })
    ));
    // A suffix without a leading dot means the same.
    let plain = DnsServiceDiscovery::new(DnsConfig::suffix("example.test", 7000).with_name_server(dns.addr())).unwrap();
    assert_eq!(plain.get_node_address(&id("node1")).await.unwrap().host, "127.0.0.11");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_cached_for_their_ttl_then_asked_again() {
    let dns = zone().await;
    dns.set_a("node1.example.test", &[Ipv4Addr::new(10, 0, 0, 1)], 1)
        .await
        .unwrap();
    let d = DnsServiceDiscovery::new(suffix(&dns)).unwrap();
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.1");
    let changed = Instant::now();
    dns.set_a("node1.example.test", &[Ipv4Addr::new(10, 0, 0, 2)], 1)
        .await
        .unwrap();
    // Within the TTL the cached answer stands...
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.1");
    // ...and once it ran out the new record is asked for.
    let deadline = changed + Duration::from_secs(5);
    loop {
        let host = d.get_node_address(&id("node1")).await.unwrap().host;
        if host == "10.0.0.2" {
            assert!(changed.elapsed() >= Duration::from_millis(500), "TTL not honoured");
            break;
        }
        assert!(Instant::now() < deadline, "expired answer never re-resolved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_picks_up_a_changed_record_before_its_ttl_runs_out() {
    let dns = zone().await;
    dns.set_a("node1.example.test", &[Ipv4Addr::new(10, 0, 0, 1)], 300)
        .await
        .unwrap();
    let d = DnsServiceDiscovery::new(suffix(&dns)).unwrap();
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.1");
    dns.set_a("node1.example.test", &[Ipv4Addr::new(10, 0, 0, 9)], 300)
        .await
        .unwrap();
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.1");
    d.refresh().await.unwrap();
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_records_give_each_node_its_address_and_port() {
    let dns = zone().await;
    let srv = "_raft._tcp.example.test";
    dns.set_srv(
        srv,
        &[(5001, "node-0.raft.example.test"), (5002, "node-1.raft.example.test")],
        300,
    )
    .await
    .unwrap();
    dns.set_a("node-0.raft.example.test", &[Ipv4Addr::new(127, 0, 0, 20)], 300)
        .await
        .unwrap();
    dns.set_aaaa("node-1.raft.example.test", &[Ipv6Addr::LOCALHOST], 300)
        .await
        .unwrap();
    let d = DnsServiceDiscovery::new(DnsConfig::srv(srv).with_name_server(dns.addr())).unwrap();
    let all = d.get_all_node_addresses().await.unwrap();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        vec![
            (id("node-0"), NodeAddress::new("127.0.0.20", 5001)),
            (id("node-1"), NodeAddress::new("::1", 5002)),
        ]
    );
    assert_eq!(d.get_node_address(&id("node-1")).await.unwrap().port, 5002);
    assert!(matches!(
        d.get_node_address(&id("node-9")).await,
        Err(DiscoveryError::UnknownNode(n)) if n == id("node-9")
    ));
    // A node that moved to another port: found after refresh.
    dns.set_srv(
        srv,
        &[(5001, "node-0.raft.example.test"), (6002, "node-1.raft.example.test")],
        300,
    )
    .await
    .unwrap();
    d.refresh().await.unwrap();
    assert_eq!(d.get_node_address(&id("node-1")).await.unwrap().port, 6002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_is_a_typed_error_that_names_the_name_and_the_server() {
    let dns = zone().await;
    let d = DnsServiceDiscovery::new(suffix(&dns)).unwrap();
    match d.get_node_address(&id("ghost")).await {
        Err(e @ DiscoveryError::NameNotFound { .. }) => {
            let text = e.to_string();
            assert!(text.contains("ghost.example.test"), "{text}");
            assert!(text.contains(&dns.addr().to_string()), "{text}");
        }
        other => panic!("expected NameNotFound, got {other:?}"),
    }
    let srv = DnsServiceDiscovery::new(DnsConfig::srv("_raft._tcp.example.test").with_name_server(dns.addr())).unwrap();
    assert!(matches!(
        srv.get_all_node_addresses().await,
        Err(DiscoveryError::NameNotFound { record: "SRV", .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_stops_resolving_keeps_its_last_address_for_the_grace_period() {
    let dns = zone().await;
    dns.set_a("node1.example.test", &[Ipv4Addr::new(10, 0, 0, 1)], 1)
        .await
        .unwrap();
    let grace = Duration::from_millis(1500);
    let d = DnsServiceDiscovery::new(suffix(&dns).with_grace(grace)).unwrap();
    let resolved = Instant::now();
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.1");
    dns.remove("node1.example.test").await.unwrap();
    // refresh() reports the failure...
    assert!(matches!(d.refresh().await, Err(DiscoveryError::NameNotFound { .. })));
    // ...while readers keep the last good address (TTL 1 s + grace 1.5 s)...
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.1");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(d.get_node_address(&id("node1")).await.unwrap().host, "10.0.0.1");
    // ...until the grace period is over.
    tokio::time::sleep(
        (resolved + Duration::from_secs(1) + grace + Duration::from_millis(300))
            .saturating_duration_since(Instant::now()),
    )
    .await;
    assert!(matches!(
        d.get_node_address(&id("node1")).await,
        Err(DiscoveryError::NameNotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_is_a_timeout_error_within_the_configured_time() {
    // A "server" that takes queries over UDP and TCP and never answers.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let _tcp = tokio::net::TcpListener::bind(addr).await;
    let timeout = Duration::from_millis(400);
    for cfg in [
        DnsConfig::suffix(".example.test", 7000),
        DnsConfig::srv("_raft._tcp.example.test"),
    ] {
        let d = DnsServiceDiscovery::new(cfg.with_name_server(addr).with_timeout(timeout)).unwrap();
        let started = Instant::now();
        let got = d.get_node_address(&id("node1")).await;
        let took = started.elapsed();
        match got {
            Err(DiscoveryError::Timeout {
                backend: "dns",
                after,
                server,
            }) => {
                assert_eq!((after, server), (timeout, addr.to_string()));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            took >= timeout / 2 && took < timeout + Duration::from_millis(600),
            "took {took:?}"
        );
        let started = Instant::now();
        assert!(matches!(
            d.refresh().await,
            Ok(()) | Err(DiscoveryError::Timeout { .. })
        ));
        assert!(started.elapsed() < timeout + Duration::from_millis(600));
    }
    drop(udp);
}
