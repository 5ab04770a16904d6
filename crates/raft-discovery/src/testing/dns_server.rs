//! An authoritative DNS server for one zone, in-process, on 127.0.0.1 (UDP and
//! TCP on the same random port), whose records can be changed while it serves.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;

/// A running DNS server (stopped on drop). Names given to its methods are taken as
/// absolute (`node1.example.test` is `node1.example.test.`).
pub struct DnsTestServer {
    addr: SocketAddr,
    origin: Name,
    zone: Arc<InMemoryZoneHandler>,
    serial: AtomicU32,
    _server: Server<Catalog>,
}

impl std::fmt::Debug for DnsTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsTestServer")
            .field("addr", &self.addr)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn absolute(name: &str) -> std::io::Result<Name> {
    let mut n = Name::from_str(name).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    n.set_fqdn(true);
    Ok(n)
}

impl DnsTestServer {
    /// Serves the zone `origin` (e.g. `example.test`) on 127.0.0.1, port chosen by
    /// the OS. Negative answers (NXDOMAIN) may be cached for 1 s.
    pub async fn start(origin: &str) -> std::io::Result<Self> {
        let origin = absolute(origin)?;
        let mut zone = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(
            Name::from_str("ns")
                .and_then(|n| n.append_domain(&origin))
                .unwrap_or_else(|_| origin.clone()),
            Name::from_str("hostmaster")
                .and_then(|n| n.append_domain(&origin))
                .unwrap_or_else(|_| origin.clone()),
            1,
            60,
            60,
            600,
            1,
        );
        zone.upsert_mut(Record::from_rdata(origin.clone(), 1, RData::SOA(soa)), 1);
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![zone.clone()]);
        // UDP and TCP on the same port, as a resolver expects.
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            let port = udp.local_addr()?.port();
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        };
        let addr = udp.local_addr()?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(DnsTestServer {
            addr,
            origin,
            zone,
            serial: AtomicU32::new(1),
            _server: server,
        })
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone served.
    pub fn origin(&self) -> String {
        self.origin.to_ascii()
    }

    async fn replace(&self, name: &str, rtype: RecordType, ttl: u32, data: Vec<RData>) -> std::io::Result<()> {
        let name = absolute(name)?;
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        let key = RrKey::new(LowerName::new(&name), rtype);
        let mut records = self.zone.records_mut().await;
        if data.is_empty() {
            records.remove(&key);
            return Ok(());
        }
        let mut set = RecordSet::new(name.clone(), rtype, serial);
        for d in data {
            set.insert(Record::from_rdata(name.clone(), ttl, d), serial);
        }
        records.insert(key, Arc::new(set));
        Ok(())
    }

    /// Sets the A records of `name` (replacing any).
    pub async fn set_a(&self, name: &str, ips: &[Ipv4Addr], ttl: u32) -> std::io::Result<()> {
        let data = ips.iter().map(|ip| RData::A(A(*ip))).collect();
        self.replace(name, RecordType::A, ttl, data).await
    }

    /// Sets the AAAA records of `name` (replacing any).
    pub async fn set_aaaa(&self, name: &str, ips: &[Ipv6Addr], ttl: u32) -> std::io::Result<()> {
        let data = ips.iter().map(|ip| RData::AAAA(AAAA(*ip))).collect();
        self.replace(name, RecordType::AAAA, ttl, data).await
    }

    /// Sets the SRV records of `name` (replacing any): `(port, target)` pairs, all
    /// with priority 10 and weight 10.
    pub async fn set_srv(&self, name: &str, targets: &[(u16, &str)], ttl: u32) -> std::io::Result<()> {
        let mut data = Vec::new();
        for (port, target) in targets {
            data.push(RData::SRV(SRV::new(10, 10, *port, absolute(target)?)));
        }
        self.replace(name, RecordType::SRV, ttl, data).await
    }

    /// Removes every record of `name` (it answers NXDOMAIN afterwards).
    pub async fn remove(&self, name: &str) -> std::io::Result<()> {
        for t in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
            self.replace(name, t, 0, Vec::new()).await?;
        }
        Ok(())
    }
}
