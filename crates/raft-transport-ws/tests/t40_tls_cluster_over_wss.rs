//! TLS: a 3-node cluster over `wss://` with a self-signed certificate made in the test
//! (rcgen; rustls with the ring provider) elects and replicates, a third-party `wss://`
//! client that trusts the certificate is served, and clients that do not speak TLS,
//! or do not trust the certificate, fail cleanly while the cluster carries on.

#![cfg(feature = "tls")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use raft_core::{Heartbeat, Message, MessageBody};
use raft_discovery::StaticServiceDiscovery;
use raft_transport_ws::TlsConfig;
use support::*;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;

struct Pki {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn self_signed() -> Pki {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    Pki {
        cert: ck.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(trusted: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn tls_config(pki: &Pki) -> TlsConfig {
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], PrivateKeyDer::Pkcs8(pki.key.clone_key()))
        .unwrap();
    TlsConfig {
        server: Arc::new(server),
        client: client_config(&pki.cert),
        // Peers are dialled at 127.0.0.1; the certificate names localhost.
        server_name: Some("localhost".into()),
    }
}

/// A `wss://` handshake by a client that is not an easyraft node.
async fn wss_client(
    addr: std::net::SocketAddr,
    trusted: &CertificateDer<'static>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Box<dyn std::error::Error>,
> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(client_config(trusted))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let mut req = format!("wss://{addr}/raft/").into_client_request()?;
    req.headers_mut()
        .insert("authorization", HeaderValue::from_static("Bearer tls-token"));
    Ok(tokio_tungstenite::client_async(req, tls).await?.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_wss_elect_and_replicate_and_plain_clients_fail_cleanly() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = self_signed();
    let discovery = Arc::new(StaticServiceDiscovery::default());
    let voters = ids(3);
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for id in &voters {
        let mut cfg = ws_config("tls").with_token("tls-token");
        cfg.tls = Some(tls_config(&pki));
        let (n, t) = start_node(id.as_str(), &voters, cfg, &discovery).await;
        addrs.push(t.local_addr().unwrap());
        nodes.push(n);
    }
    let leader = leader_of(&nodes).await;
    let mut want = Vec::new();
    for v in 0..100u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    converge(&nodes, &want).await;
    assert!(leader.view().commit >= 100);

    let follower = nodes.iter().find(|n| n.id() != leader.id()).unwrap().clone();
    let faddr = addrs[nodes.iter().position(|n| n.id() == follower.id()).unwrap()];

    // A plain ws:// client against the TLS port: an error, promptly, not a hang.
    let plain = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(format!("ws://{faddr}/raft/")),
    )
    .await
    .expect("a plain client fails promptly");
    assert!(plain.is_err(), "a plain ws:// handshake must not succeed on a TLS port");
    // Plain HTTP too.
    let http = tokio::time::timeout(Duration::from_secs(10), http_get(faddr, "/health"))
        .await
        .expect("plain HTTP fails promptly");
    assert!(http.is_err(), "plain HTTP must not be answered on a TLS port: {http:?}");
    // A TLS client that does not trust this certificate is refused.
    let stranger = self_signed();
    let untrusting = tokio::time::timeout(Duration::from_secs(10), wss_client(faddr, &stranger.cert))
        .await
        .expect("an untrusting client fails promptly");
    assert!(
        untrusting.is_err(),
        "a client that does not trust the certificate must fail"
    );

    // A wss:// client that trusts it is served: a JSON envelope gets an Ack.
    let mut ws = wss_client(faddr, &pki.cert).await.expect("wss handshake");
    let hb = Message {
        group: 0,
        from: leader.id().clone(),
        to: follower.id().clone(),
        term: 0,
        body: MessageBody::Heartbeat(Heartbeat {
            commit: 0,
            read_round: 0,
        }),
    };
    ws.send(WsMessage::text(raft_wire::encode_envelope(&hb, "stale-1")))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a reply")
        .expect("open")
        .expect("a frame");
    let reply: serde_json::Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply["messageType"], "Ack", "{reply}");
    assert_eq!(reply["messageId"], "stale-1", "{reply}");
    ws.close(None).await.ok();

    // And the cluster carries on after all of that.
    for v in 100..120u64 {
        propose(&nodes, v).await;
        want.push(v);
    }
    converge(&nodes, &want).await;
    for n in &nodes {
        n.shutdown().await;
    }
}
