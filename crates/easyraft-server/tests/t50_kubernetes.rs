//! deploy/kubernetes/easyraft.yaml, run: the StatefulSet container's args and env,
//! as Kubernetes would expand them for each pod, start real `easyraft-server`
//! processes; a real DNS server on loopback answers what the headless Service would
//! publish (an A record per pod, SRV records per named port). Three pods bootstrap one
//! cluster; a pod killed with -9 comes back on its volume (with a new pod IP, as a
//! recreated pod gets) and re-registers its address; scaling to five, the new pods join
//! as voters instead of founding a cluster of their own; a founder, and a pod that
//! joined, that lost its volume refuse to start until removed, and then join again.
//!
//! Pods are 127.0.0.(20+i) (loopback aliases, no setup needed on Linux), so the
//! manifest's fixed ports do not collide with tests binding 127.0.0.1.

mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use raft_discovery::testing::DnsTestServer;
use serde::Deserialize;
use serde_json::{json, Value};
use support::*;

const MANIFEST: &str = include_str!("../../../deploy/kubernetes/easyraft.yaml");
const NAMESPACE: &str = "default";

/// The parts of the manifest the pods are made of.
struct Manifest {
    /// The StatefulSet's name: pods are `{name}-{ordinal}`.
    set: String,
    /// The headless Service the pods' names live under.
    service: String,
    /// The Service's port names and numbers (`peer`, `client`).
    service_ports: BTreeMap<String, u16>,
    args: Vec<String>,
    env: Vec<Value>,
    /// Volume name → mount path.
    mounts: Vec<(String, String)>,
    /// The volume the token Secret is mounted from.
    secret_volume: String,
    /// The volume of the data directory (the volumeClaimTemplate).
    data_volume: String,
    /// The container's named ports.
    container_ports: BTreeMap<String, u16>,
    readiness_path: String,
    liveness_path: String,
}

fn docs() -> Vec<Value> {
    serde_norway::Deserializer::from_str(MANIFEST)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in the manifest");
    found[0]
}

fn named_ports(list: &Value, port_key: &str) -> BTreeMap<String, u16> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let port = p[port_key].as_u64().unwrap();
            (p["name"].as_str().unwrap().to_string(), u16::try_from(port).unwrap())
        })
        .collect()
}

fn manifest() -> Manifest {
    let docs = docs();
    let svc = kind(&docs, "Service");
    assert_eq!(svc["spec"]["clusterIP"], "None", "the Service is headless");
    assert_eq!(svc["spec"]["publishNotReadyAddresses"], true);
    let pdb = kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let sts = kind(&docs, "StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["serviceName"], svc["metadata"]["name"]);
    assert_eq!(
        sts["spec"]["podManagementPolicy"], "Parallel",
        "founders must start together: none is ready before a leader is elected"
    );
    let pod = &sts["spec"]["template"]["spec"];
    // SIGTERM: a leave (with leave_on_shutdown) takes up to 30 s.
    assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 30);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let claims: Vec<String> = sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(claims.len(), 1, "one volume claim (the data)");
    let volumes: Vec<String> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    let mounts: Vec<(String, String)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap().to_string();
            assert!(
                claims.contains(&name) || volumes.contains(&name),
                "volume {name} is declared"
            );
            (name, m["mountPath"].as_str().unwrap().to_string())
        })
        .collect();
    let secret_volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"].is_object())
        .map(|v| v["name"].as_str().unwrap().to_string())
        .expect("a Secret volume for the tokens");
    let container_ports = named_ports(&c["ports"], "containerPort");
    let probe = |name: &str| {
        let p = &c[name]["httpGet"];
        assert_eq!(p["port"], "client", "{name} is on the client port");
        p["path"].as_str().unwrap().to_string()
    };
    Manifest {
        set: sts["metadata"]["name"].as_str().unwrap().to_string(),
        service: svc["metadata"]["name"].as_str().unwrap().to_string(),
        service_ports: named_ports(&svc["spec"]["ports"], "port"),
        args: strings(&c["args"]),
        env: c["env"].as_array().unwrap().clone(),
        mounts,
        secret_volume,
        data_volume: claims[0].clone(),
        container_ports,
        readiness_path: probe("readinessProbe"),
        liveness_path: probe("livenessProbe"),
    }
}

/// Replaces each `$(NAME)` of a defined variable, as Kubernetes does in args and env.
fn expand(text: &str, vars: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// One pod: its ordinal, IP and the per-pod directories its volumes are mounted from.
struct Pod {
    name: String,
    ip: Ipv4Addr,
    root: PathBuf,
}

impl Manifest {
    fn pod_name(&self, i: u8) -> String {
        format!("{}-{i}", self.set)
    }

    /// `{pod}.{service}.{namespace}.svc.cluster.local`.
    fn pod_dns(&self, pod: &str) -> String {
        format!("{pod}.{}.{NAMESPACE}.svc.cluster.local", self.service)
    }

    fn client_port(&self) -> u16 {
        self.container_ports["client"]
    }

    /// The container's environment and args for `pod`, as Kubernetes expands them,
    /// with every mount path replaced by the pod's own directory. The only edit to the
    /// args: `nameserver=` (the test's DNS server) is added to the discovery and join
    /// URLs, which in a cluster use the system resolver.
    fn pod_command(&self, pod: &Pod, nameserver: &str) -> (Vec<String>, Vec<(String, String)>) {
        let mut env: Vec<(String, String)> = Vec::new();
        for e in &self.env {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match (e["value"].as_str(), e["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
                (Some(v), None) => expand(v, &env),
                (None, Some("metadata.name")) => pod.name.clone(),
                (None, Some("status.podIP")) => pod.ip.to_string(),
                (None, Some("metadata.namespace")) => NAMESPACE.to_string(),
                other => panic!("env {name}: unexpected source {other:?}"),
            };
            env.push((name, value));
        }
        let mut mounts = self.mounts.clone();
        mounts.sort_by_key(|(_, path)| std::cmp::Reverse(path.len()));
        let args = self
            .args
            .iter()
            .map(|a| {
                let mut a = expand(a, &env);
                for (volume, path) in &mounts {
                    a = a.replace(path.as_str(), &pod.root.join(volume).display().to_string());
                }
                // The one edit: resolve through the test's DNS server.
                if (a.starts_with("--discovery=") || a.starts_with("--join=")) && a.contains("://") {
                    let sep = if a.contains('?') { '&' } else { '?' };
                    a = format!("{a}{sep}nameserver={nameserver}");
                }
                a
            })
            .collect();
        (args, env)
    }
}

/// The records the headless Service publishes for the pods that exist.
fn publish(rt: &tokio::runtime::Runtime, dns: &DnsTestServer, m: &Manifest, pods: &[&Pod]) {
    rt.block_on(async {
        for p in pods {
            dns.set_a(&m.pod_dns(&p.name), &[p.ip], 1).await.unwrap();
        }
        for (port_name, port) in &m.service_ports {
            let targets: Vec<(u16, String)> = pods.iter().map(|p| (*port, m.pod_dns(&p.name))).collect();
            let targets: Vec<(u16, &str)> = targets.iter().map(|(p, t)| (*p, t.as_str())).collect();
            let name = format!("_{port_name}._tcp.{}.{NAMESPACE}.svc.cluster.local", m.service);
            dns.set_srv(&name, &targets, 1).await.unwrap();
        }
    });
}

fn start(m: &Manifest, pod: &Pod, nameserver: &str) -> Proc {
    let (args, env) = m.pod_command(pod, nameserver);
    spawn_with(&pod.root, &pod.name, m.client_port(), &args, &env)
}

fn new_pod(m: &Manifest, dir: &Path, i: u8, ip: Ipv4Addr) -> Pod {
    let name = m.pod_name(i);
    let root = dir.join(&name);
    for (volume, _) in &m.mounts {
        std::fs::create_dir_all(root.join(volume)).unwrap();
    }
    // The Secret `easyraft-tokens`, as `kubectl create secret generic easyraft-tokens
    // --from-file=peer.token --from-file=admin.token` makes it.
    let tokens = root.join(&m.secret_volume);
    std::fs::write(tokens.join("peer.token"), PEER_TOKEN).unwrap();
    std::fs::write(tokens.join("admin.token"), ADMIN_TOKEN).unwrap();
    Pod { name, ip, root }
}

fn client(m: &Manifest, pod: &Pod) -> String {
    format!("{}:{}", pod.ip, m.client_port())
}

/// Waits until `GET path` on the pod's client port answers 200 (a probe).
fn wait_probe(m: &Manifest, pod: &Pod, proc: &Proc, path: &str) {
    let addr = client(m, pod);
    let start = std::time::Instant::now();
    loop {
        if let Ok((200, _)) = http_to(&addr, "GET", path, None, None) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{} never answered 200 on {path}\n{}",
            pod.name,
            proc.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `id → (role, client)` of the members, as the cluster (through `endpoints`) says.
fn member_table(endpoints: &[String]) -> Option<BTreeMap<String, (String, String)>> {
    let m = call_any_to(endpoints, "admin_members", json!({}), Some(ADMIN_TOKEN)).ok()?;
    let mut out = BTreeMap::new();
    for x in m["members"].as_array()? {
        let role = x["role"].as_str()?.to_string();
        let client = x["client"].as_str().unwrap_or("").to_string();
        out.insert(x["id"].as_str()?.to_string(), (role, client));
    }
    Some(out)
}

/// The leader's id, as the cluster (through `endpoints`) says.
fn leader_and_members(endpoints: &[String]) -> (String, Value) {
    wait_for("a leader", || {
        let s = call_any_to(endpoints, "admin_members", json!({}), Some(ADMIN_TOKEN)).ok()?;
        Some((s["leader"].as_str()?.to_string(), s))
    })
}

fn logs(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("--- {} ---\n{}", p.id, p.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn t50_the_kubernetes_manifest_bootstraps_survives_a_kill_and_scales_from_3_to_5() {
    let m = manifest();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dns = rt.block_on(DnsTestServer::start("cluster.local")).unwrap();
    let nameserver = dns.addr().to_string();

    // Three pods, as `kubectl apply` creates them (podManagementPolicy: Parallel).
    let mut pods: Vec<Pod> = (0..3u8)
        .map(|i| new_pod(&m, dir.path(), i, Ipv4Addr::new(127, 0, 0, 20 + i)))
        .collect();
    publish(&rt, &dns, &m, &pods.iter().collect::<Vec<_>>());
    let mut procs: Vec<Proc> = pods.iter().map(|p| start(&m, p, &nameserver)).collect();
    for (p, proc) in pods.iter().zip(&procs) {
        wait_probe(&m, p, proc, &m.readiness_path);
        wait_probe(&m, p, proc, &m.liveness_path);
    }
    let endpoints = |pods: &[Pod]| pods.iter().map(|p| client(&m, p)).collect::<Vec<_>>();
    let put = call_any_to(
        &endpoints(&pods),
        "kv_put",
        json!({"key": "before", "value": "3 pods"}),
        None,
    )
    .unwrap_or_else(|e| panic!("kv_put: {e}\n{}", logs(&procs.iter().collect::<Vec<_>>())));
    assert_eq!(put["ok"], true);
    // Each pod registers its advertised ($(POD_IP)) client address in the directory.
    let founders = wait_for("3 voters with their pod IPs", || {
        let t = member_table(&endpoints(&pods))?;
        let registered = pods
            .iter()
            .all(|p| t.get(&p.name).is_some_and(|(_, c)| *c == client(&m, p)));
        (t.len() == 3 && registered).then_some(t)
    });
    assert!(founders.values().all(|(r, _)| r == "voter"), "{founders:?}");

    // kill -9 the leader's pod; it is recreated on its volume with a new pod IP (the
    // Service's records follow), comes back as the voter it was, re-registers its
    // address and has the data.
    let (leader, _) = leader_and_members(&endpoints(&pods));
    let k = pods.iter().position(|p| p.name == leader).unwrap();
    procs[k].kill();
    pods[k].ip = Ipv4Addr::new(127, 0, 0, 30 + k as u8);
    publish(&rt, &dns, &m, &pods.iter().collect::<Vec<_>>());
    procs[k] = start(&m, &pods[k], &nameserver);
    wait_probe(&m, &pods[k], &procs[k], &m.readiness_path);
    let back = wait_for("the restarted pod's new address in the directory", || {
        let t = member_table(&endpoints(&pods))?;
        (t.get(&leader)?.1 == client(&m, &pods[k])).then_some(t)
    });
    assert_eq!(back.len(), 3, "{back:?}");
    assert_eq!(back[&leader].0, "voter", "{back:?}");
    assert!(
        !procs[k].log().contains("asking the cluster to add"),
        "a pod with data must not join\n{}",
        procs[k].log()
    );
    let again = wait_for("the data on the restarted pod", || {
        let v = rpc_to(
            &client(&m, &pods[k]),
            "kv_get",
            json!({"key": "before", "stale": true}),
            None,
        )
        .ok()?;
        (v["value"] == "3 pods").then_some(v)
    });
    assert_eq!(again["value"], "3 pods");

    // kubectl scale --replicas=5: the records of pods 3 and 4 appear, and they start
    // with the very same args. They must join (as voters), not found a cluster.
    for i in 3..5u8 {
        pods.push(new_pod(&m, dir.path(), i, Ipv4Addr::new(127, 0, 0, 20 + i)));
    }
    publish(&rt, &dns, &m, &pods.iter().collect::<Vec<_>>());
    for p in &pods[3..] {
        procs.push(start(&m, p, &nameserver));
    }
    let all = wait_for("5 voters", || {
        let t = member_table(&endpoints(&pods[..3]))?;
        (t.len() == 5 && t.values().all(|(r, _)| r == "voter")).then_some(t)
    });
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        pods.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
    );
    wait_for("every pod's address in the directory", || {
        let t = member_table(&endpoints(&pods))?;
        pods.iter()
            .all(|p| t.get(&p.name).is_some_and(|(_, c)| *c == client(&m, p)))
            .then_some(())
    });
    for (p, proc) in pods.iter().zip(&procs).skip(3) {
        assert!(
            proc.log().contains("asking the cluster to add"),
            "{} did not join\n{}",
            p.name,
            proc.log()
        );
        wait_probe(&m, p, proc, &m.readiness_path);
        // It sees the cluster's leader and has the data written before it existed.
        let v = wait_for("the old data on a new pod", || {
            let v = rpc_to(&client(&m, p), "kv_get", json!({"key": "before", "stale": true}), None).ok()?;
            (v["value"] == "3 pods").then_some(v)
        });
        assert_eq!(v["value"], "3 pods");
    }
    // A write through a new pod, read back through another.
    let new_first: Vec<String> = endpoints(&pods).into_iter().rev().collect();
    let put = call_any_to(&new_first, "kv_put", json!({"key": "after", "value": "5 pods"}), None).unwrap();
    assert_eq!(put["ok"], true);
    let got = call_any_to(&endpoints(&pods[3..]), "kv_get", json!({"key": "after"}), None).unwrap();
    assert_eq!(got["value"], "5 pods");
    let before = call_any_to(&endpoints(&pods[4..]), "kv_get", json!({"key": "before"}), None).unwrap();
    assert_eq!(before["value"], "3 pods");

    // A founder, then a pod that joined, loses its volume (a new, empty PVC). Started
    // as it is, it refuses: it is still a member the leader had replicated to. Removed
    // first (easyraftctl member remove), it joins again as a new member under its id.
    let (leader, _) = leader_and_members(&endpoints(&pods));
    let founder = pods[..3].iter().position(|p| p.name != leader).unwrap();
    let joiner = 3 + pods[3..].iter().position(|p| p.name != leader).unwrap();
    for (round, lost) in [founder, joiner].into_iter().enumerate() {
        procs[lost].kill();
        let data = pods[lost].root.join(&m.data_volume);
        std::fs::remove_dir_all(&data).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        procs[lost] = start(&m, &pods[lost], &nameserver);
        let status = procs[lost].wait_exit();
        assert!(!status.success(), "{}", procs[lost].log());
        assert!(procs[lost].log().contains("member remove"), "{}", procs[lost].log());
        let others: Vec<String> = pods
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != lost)
            .map(|(_, p)| client(&m, p))
            .collect();
        call_any_to(
            &others,
            "admin_remove",
            json!({"id": pods[lost].name}),
            Some(ADMIN_TOKEN),
        )
        .unwrap_or_else(|e| panic!("remove: {e}"));
        procs[lost] = start(&m, &pods[lost], &nameserver);
        let start_at = std::time::Instant::now();
        loop {
            let t = member_table(&others);
            if t.as_ref()
                .is_some_and(|t| t.len() == 5 && t.values().all(|(r, _)| r == "voter"))
            {
                break;
            }
            assert!(
                start_at.elapsed() < DEADLINE,
                "round {round}: {} not back as a voter: {t:?}\n{}",
                pods[lost].name,
                logs(&procs.iter().collect::<Vec<_>>())
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(
            procs[lost].log().contains("asking the cluster to add"),
            "{}",
            procs[lost].log()
        );
        let key = format!("lost{round}");
        call_any_to(&others, "kv_put", json!({"key": key, "value": "x"}), None).unwrap();
        for key in ["after", key.as_str()] {
            wait_for("the data on the re-added pod", || {
                let v = rpc_to(
                    &client(&m, &pods[lost]),
                    "kv_get",
                    json!({"key": key, "stale": true}),
                    None,
                )
                .ok()?;
                v["value"].is_string().then_some(())
            });
        }
    }
    drop(procs);
    drop(dns);
}

const DOCKERFILE: &str = include_str!("../../../deploy/Dockerfile");
const UNIT: &str = include_str!("../../../deploy/systemd/easyraft.service");

/// The lines of a Dockerfile with `instruction`, their arguments (continuations joined).
fn instructions(instruction: &str) -> Vec<String> {
    let joined = DOCKERFILE.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| {
            let (word, rest) = l.trim().split_once(char::is_whitespace)?;
            (word == instruction).then(|| rest.trim().to_string())
        })
        .collect()
}

/// `Key=` values of the unit file.
fn unit_values(key: &str) -> Vec<String> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .collect()
}

#[test]
fn t51_the_dockerfile_and_the_systemd_unit_name_binaries_flags_and_keys_that_exist() {
    let m = manifest();
    // The image: both binaries built and copied, easyraft-server the entrypoint, a
    // non-root user, the manifest's data mount as the volume and its ports exposed.
    for bin in ["easyraft-server", "easyraftctl"] {
        let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(bin)
            .join("Cargo.toml");
        let toml = std::fs::read_to_string(&package).unwrap();
        assert!(toml.contains(&format!("name = \"{bin}\"")), "{}", package.display());
        let run = instructions("RUN").join("\n");
        assert!(run.contains(&format!("-p {bin}")), "{bin} is not built");
        assert!(run.contains(&format!("target/release/{bin}")), "{bin} is not copied");
    }
    assert_eq!(instructions("ENTRYPOINT"), vec![r#"["easyraft-server"]"#.to_string()]);
    let user = instructions("USER");
    assert_eq!(user.len(), 1);
    assert!(!user[0].starts_with("root") && !user[0].starts_with("0"), "{user:?}");
    let data_mount = &m.mounts.iter().find(|(v, _)| *v == m.data_volume).unwrap().1;
    assert!(instructions("VOLUME").join(" ").contains(data_mount.as_str()));
    let mut exposed: Vec<u16> = instructions("EXPOSE")
        .join(" ")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    exposed.sort();
    let mut ports: Vec<u16> = m.container_ports.values().copied().collect();
    ports.sort();
    assert_eq!(exposed, ports);
    // Its EASYRAFT_ variables are configuration keys, and they work.
    let env: Vec<(String, String)> = instructions("ENV")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    assert!(!env.is_empty());
    assert_eq!(
        easyraft_server::config::Config::unknown_env(env.clone()),
        Vec::<String>::new()
    );
    let out = bin().args(["--id", "n1", "--print-config"]).envs(env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("data_dir = \"{data_mount}/data\"")),
        "{printed}"
    );

    // The unit: its ExecStart runs with the example config in place of
    // /etc/easyraft/easyraft.toml.
    let exec = unit_values("ExecStart");
    assert_eq!(exec.len(), 1);
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    assert!(words[0].ends_with("/easyraft-server"), "{words:?}");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/easyraft.toml");
    let args: Vec<String> = words[1..]
        .iter()
        .map(|w| match *w {
            "/etc/easyraft/easyraft.toml" => example.display().to_string(),
            w => w.to_string(),
        })
        .collect();
    assert!(args.iter().any(|a| *a == example.display().to_string()), "{args:?}");
    let out = bin().args(&args).arg("--print-config").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (key, value) in [
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "easyraft"),
        ("ReadWritePaths", "/var/lib/easyraft"),
        ("WorkingDirectory", "/var/lib/easyraft"),
    ] {
        assert_eq!(unit_values(key), vec![value.to_string()], "{key}");
    }
    let user = unit_values("User");
    assert!(user.len() == 1 && user[0] != "root", "{user:?}");
    assert_eq!(unit_values("LimitNOFILE").len(), 1);
    // leave_on_shutdown: the leave takes up to 30 s; stopping must not cut it short.
    let stop: u64 = unit_values("TimeoutStopSec")[0].parse().unwrap();
    assert!(stop > 30, "TimeoutStopSec={stop}");
}

#[test]
fn t52_founders_wait_for_every_record_of_the_bootstrap_set_before_bootstrapping() {
    // easyraft-2's records appear late (its pod is scheduled last). easyraft-0 and -1
    // must not found a cluster of two meanwhile: all three found the same cluster.
    let m = manifest();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dns = rt.block_on(DnsTestServer::start("cluster.local")).unwrap();
    let nameserver = dns.addr().to_string();
    // Other addresses than t50's: the tests may run at once.
    let pods: Vec<Pod> = (0..3u8)
        .map(|i| new_pod(&m, dir.path(), i, Ipv4Addr::new(127, 0, 0, 40 + i)))
        .collect();
    publish(&rt, &dns, &m, &[&pods[0], &pods[1]]);
    let mut procs: Vec<Proc> = pods[..2].iter().map(|p| start(&m, p, &nameserver)).collect();
    wait_for("the founders to wait for easyraft-2", || {
        procs
            .iter()
            .all(|p| p.log().contains("waiting for every node of the discovery set"))
            .then_some(())
    });
    publish(&rt, &dns, &m, &pods.iter().collect::<Vec<_>>());
    procs.push(start(&m, &pods[2], &nameserver));
    for (p, proc) in pods.iter().zip(&procs) {
        wait_probe(&m, p, proc, &m.readiness_path);
    }
    for p in &pods {
        let (_, body) = http_to(&client(&m, p), "GET", "/status", None, None).unwrap();
        let s: Value = serde_json::from_str(&body).unwrap();
        let voters = s["membership"]["voters"].as_array().unwrap().len();
        assert_eq!(
            voters,
            3,
            "{}: {s}\n{}",
            p.name,
            logs(&procs.iter().collect::<Vec<_>>())
        );
    }
    drop(procs);
    drop(dns);
}
