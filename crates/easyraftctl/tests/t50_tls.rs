//! `https://` endpoints: easyraftctl verifies the server's certificate against
//! `--cacert` and speaks JSON-RPC over TLS. The server is a canned TLS responder on a
//! real socket (tokio-rustls), since the `kv` example serves plain HTTP only.

mod support;

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

use support::ctl;

struct Pki {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    pem: String,
}

fn self_signed() -> Pki {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    Pki {
        cert: ck.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
        pem: ck.cert.pem(),
    }
}

/// Answers every JSON-RPC request over TLS with `{"result": {"value": "over-tls"}}`.
fn tls_responder(pki: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert.clone()], PrivateKeyDer::Pkcs8(pki.key.clone_key()))
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else { return };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read the head and the body (Content-Length).
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let l = l.to_ascii_lowercase();
                                    l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    let body = r#"{"jsonrpc":"2.0","id":1,"result":{"value":"over-tls"}}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
    });
    port
}

#[test]
fn t10_https_endpoints_are_verified_against_the_cacert() {
    let pki = self_signed();
    let port = tls_responder(&pki);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.pem).expect("write the CA");
    let ca_s = ca.to_string_lossy().into_owned();
    let ep = format!("https://localhost:{port}");
    let out = ctl(&["--endpoints", &ep, "--cacert", &ca_s, "-o", "json", "kv", "get", "k"]).expect(0);
    assert_eq!(out.json()["value"], "over-tls");
    // No --cacert: a usage error before anything is sent.
    let no_ca = ctl(&["--endpoints", &ep, "kv", "get", "k"]).expect(2);
    assert!(no_ca.stderr.contains("--cacert"), "{}", no_ca.stderr);
    // Another CA: the certificate is refused, and nothing else answers.
    let other = dir.path().join("other.pem");
    std::fs::write(&other, self_signed().pem).expect("write another CA");
    let refused = ctl(&[
        "--endpoints",
        &ep,
        "--cacert",
        &other.to_string_lossy(),
        "kv",
        "get",
        "k",
    ])
    .expect(3);
    assert!(refused.stderr.contains("TLS"), "{}", refused.stderr);
    // A file with no certificate in it.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    ctl(&[
        "--endpoints",
        &ep,
        "--cacert",
        &empty.to_string_lossy(),
        "kv",
        "get",
        "k",
    ])
    .expect(2);
}
