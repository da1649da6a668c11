//! Daemon-level networking tests (run as root): the real crius binary over gRPC with Debian's
//! CNI plugins (bridge, host-local, portmap, loopback) on a private bridge per test.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Daemon;
use k8s_cri::v1 as cri;

const HTTP_PORT: i32 = 8080;

/// Deletes, on drop, every nat/filter rule that mentions one of `ids` (portmap tags its rules
/// with the pod ID) and the chains those rules jumped to: nothing stays in iptables when a test
/// fails before the daemon's CNI DEL ran. Declare it before the `Daemon` so that it drops after
/// the daemon's own teardown.
#[derive(Default)]
struct IptablesGuard {
    ids: Vec<String>,
}

impl Drop for IptablesGuard {
    fn drop(&mut self) {
        for table in ["nat", "filter"] {
            let dump = iptables_save(table);
            let mut chains = Vec::new();
            for line in dump.lines() {
                let Some(rule) = line.strip_prefix("-A ") else {
                    continue;
                };
                if !self.ids.iter().any(|id| rule.contains(id.as_str())) {
                    continue;
                }
                let args: Vec<&str> = rule.split_whitespace().collect();
                if let Some(pos) = args.iter().position(|a| *a == "-j") {
                    if let Some(t) = args.get(pos + 1).filter(|t| t.starts_with("CNI-")) {
                        chains.push(t.to_string());
                    }
                }
                // The comment is quoted in the dump: let a shell split it back.
                let _ = Command::new("sh")
                    .arg("-c")
                    .arg(format!("iptables -w -t {table} -D {rule}"))
                    .status();
            }
            for c in chains {
                let _ = Command::new("iptables")
                    .args(["-w", "-t", table, "-F", &c])
                    .status();
                let _ = Command::new("iptables")
                    .args(["-w", "-t", table, "-X", &c])
                    .status();
            }
        }
    }
}

fn iptables_save(table: &str) -> String {
    let out = Command::new("iptables-save")
        .args(["-t", table])
        .output()
        .expect("iptables-save");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lines of `iptables-save` (all tables) that mention the pod's ID or `ip` as an address.
fn iptables_lines_for(pod: &str, ip: &str) -> Vec<String> {
    let out = Command::new("iptables-save")
        .output()
        .expect("iptables-save");
    let ip_forms = [format!(" {ip}/"), format!(" {ip}:"), format!("{ip}/32")];
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(pod) || ip_forms.iter().any(|f| l.contains(f.as_str())))
        .map(String::from)
        .collect()
}

/// Host-side ports of `bridge` (the veths of its pods).
fn bridge_ports(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("ip link show")
        .success()
}

/// A host port unlikely to be taken by another test running now.
fn pick_host_port() -> u16 {
    let id = crius_testutil::unique_id("port");
    let h = id
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    20000 + (h % 30000) as u16
}

/// Runs the pod of `config` and returns its ID and IP.
async fn run_pod_ip(d: &mut Daemon, config: &cri::PodSandboxConfig) -> (String, String) {
    let pod = d.run_pod(config).await;
    let ip = pod_status(d, &pod).await.network.expect("network").ip;
    (pod, ip)
}

async fn pod_status(d: &mut Daemon, pod: &str) -> cri::PodSandboxStatus {
    d.rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
        pod_sandbox_id: pod.into(),
        verbose: false,
    })
    .await
    .expect("pod status")
    .into_inner()
    .status
    .expect("status")
}

async fn exec(d: &mut Daemon, id: &str, script: &str) -> cri::ExecSyncResponse {
    d.rt.exec_sync(cri::ExecSyncRequest {
        container_id: id.into(),
        cmd: vec!["sh".into(), "-c".into(), script.into()],
        timeout: 10,
    })
    .await
    .expect("exec_sync")
    .into_inner()
}

/// Starts busybox httpd on `HTTP_PORT` in `pod`, serving /tmp with `hello.txt` = `body`.
async fn start_httpd(d: &mut Daemon, pod: &str, pc: &cri::PodSandboxConfig, body: &str) -> String {
    let port = HTTP_PORT.to_string();
    let cfg = Daemon::container_config("web", &["httpd", "-f", "-p", &port, "-h", "/tmp"]);
    let id = d.create(pod, pc, cfg).await;
    d.start_ctr(&id).await;
    let w = exec(d, &id, &format!("printf '%s' '{body}' > /tmp/hello.txt")).await;
    assert_eq!(w.exit_code, 0, "{}", String::from_utf8_lossy(&w.stderr));
    id
}

/// What must be gone once a pod is stopped and removed: its veth, its netns pin (file and
/// mount), iptables rules naming its ID or IP, its host-local allocation.
fn assert_pod_network_gone(d: &Daemon, pod: &str, ip: &str, veths: &[String]) {
    for v in veths {
        assert!(!link_exists(v), "veth {v} of pod {pod} left behind");
    }
    let left = bridge_ports(&d.bridge);
    assert!(left.is_empty(), "bridge still has ports: {left:?}");
    let pin = d.dir.path().join("run/ns/netns").join(pod);
    assert!(!pin.exists(), "netns pin {} left", pin.display());
    let mounts: Vec<String> = common::mounts_under(d.dir.path())
        .into_iter()
        .filter(|m| m.contains(pod))
        .collect();
    assert!(mounts.is_empty(), "mounts of pod left: {mounts:?}");
    let rules = iptables_lines_for(pod, ip);
    assert!(rules.is_empty(), "iptables rules of pod left: {rules:?}");
    let alloc = d.dir.path().join("ipam").join(&d.bridge).join(ip);
    assert!(
        !alloc.exists(),
        "host-local allocation {} left",
        alloc.display()
    );
}

/// Checks the pod's network is really there (so the "gone" checks cannot pass vacuously) and
/// returns its veths.
fn assert_pod_network_present(d: &Daemon, pod: &str, ip: &str, host_port: bool) -> Vec<String> {
    let veths = bridge_ports(&d.bridge);
    assert_eq!(veths.len(), 1, "one veth on the bridge: {veths:?}");
    assert!(d.dir.path().join("run/ns/netns").join(pod).exists());
    assert!(
        common::mounts_under(d.dir.path())
            .iter()
            .any(|m| m.ends_with(&format!("netns/{pod}"))),
        "netns pin is a mount"
    );
    let alloc = d.dir.path().join("ipam").join(&d.bridge).join(ip);
    assert!(alloc.exists(), "host-local allocation {}", alloc.display());
    if host_port {
        let rules = iptables_lines_for(pod, ip);
        assert!(
            rules.iter().any(|r| r.contains(pod)),
            "portmap rules for the pod: {rules:?}"
        );
    }
    veths
}

/// GET `path` from `addr` over plain HTTP/1.0, retrying connects until `deadline` (the server
/// becoming ready is the event waited for).
fn http_get(addr: &str, path: &str, deadline: Duration) -> String {
    let end = Instant::now() + deadline;
    let mut backoff = Duration::from_millis(20);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr.parse().expect("addr"), backoff * 10)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n")?;
            let mut resp = String::new();
            s.read_to_string(&mut resp)?;
            Ok(resp)
        })();
        match attempt {
            Ok(r) if !r.is_empty() => return r,
            other => {
                assert!(Instant::now() < end, "GET http://{addr}{path}: {other:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}

#[tokio::test]
async fn two_pods_distinct_ips_and_reach_each_other() {
    let mut ipt = IptablesGuard::default();
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    let pca = d.pod_config("neta", false);
    let pcb = d.pod_config("netb", false);
    let (pa, ipa) = run_pod_ip(&mut d, &pca).await;
    let (pb, ipb) = run_pod_ip(&mut d, &pcb).await;
    ipt.ids.push(pa.clone());
    ipt.ids.push(pb.clone());
    assert!(!ipa.is_empty() && !ipb.is_empty(), "{ipa:?} {ipb:?}");
    assert_ne!(ipa, ipb);
    let prefix = d.subnet.trim_end_matches("0/24");
    assert!(
        ipa.starts_with(prefix) && ipb.starts_with(prefix),
        "{ipa} {ipb} in {}",
        d.subnet
    );

    start_httpd(&mut d, &pa, &pca, "hello-from-a").await;
    let client = d
        .create(
            &pb,
            &pcb,
            Daemon::container_config("cli", &["sleep", "1000"]),
        )
        .await;
    d.start_ctr(&client).await;
    // The container in B sees its own address, not A's.
    let own = exec(&mut d, &client, "ip -4 -o addr show eth0").await;
    assert!(
        String::from_utf8_lossy(&own.stdout).contains(&format!(" {ipb}/")),
        "{}",
        String::from_utf8_lossy(&own.stdout)
    );

    // httpd's readiness is the event: bounded retries.
    let url = format!("http://{ipa}:{HTTP_PORT}/hello.txt");
    let end = Instant::now() + Duration::from_secs(20);
    let mut backoff = Duration::from_millis(20);
    loop {
        let r = exec(&mut d, &client, &format!("wget -q -O - {url}")).await;
        if r.exit_code == 0 {
            assert_eq!(String::from_utf8_lossy(&r.stdout), "hello-from-a");
            break;
        }
        assert!(
            Instant::now() < end,
            "wget {url} from pod B: {} {}",
            r.exit_code,
            String::from_utf8_lossy(&r.stderr)
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
    d.shutdown().await;
}

#[tokio::test]
async fn host_port_reaches_pod_from_host() {
    let mut ipt = IptablesGuard::default();
    let mut d = Daemon::start_with_portmap().await;
    d.pull_busybox().await;
    let host_port = pick_host_port();
    let mut pc = d.pod_config("hport", false);
    pc.port_mappings = vec![cri::PortMapping {
        protocol: cri::Protocol::Tcp as i32,
        container_port: HTTP_PORT,
        host_port: host_port.into(),
        host_ip: String::new(),
    }];
    let (pod, _ip) = run_pod_ip(&mut d, &pc).await;
    ipt.ids.push(pod.clone());
    start_httpd(&mut d, &pod, &pc, "via-host-port").await;
    let addr = format!("{}:{host_port}", d.gateway);
    let resp = http_get(&addr, "/hello.txt", Duration::from_secs(20));
    assert!(resp.starts_with("HTTP/1."), "{resp}");
    assert!(resp.contains(" 200 "), "{resp}");
    assert!(resp.ends_with("via-host-port"), "{resp}");
    d.shutdown().await;
}

#[tokio::test]
async fn host_network_pod_sees_host_interfaces() {
    let mut ipt = IptablesGuard::default();
    let mut d = Daemon::start().await;
    d.pull_busybox().await;
    // A pod on the CNI network first: it brings the test's bridge up on the host.
    let pc = d.pod_config("cni", false);
    let (cni_pod, _) = run_pod_ip(&mut d, &pc).await;
    ipt.ids.push(cni_pod.clone());
    assert!(link_exists(&d.bridge), "bridge {} exists", d.bridge);

    let mut hc = d.pod_config("hostnet", false);
    let ns = hc
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .expect("namespace options");
    ns.network = cri::NamespaceMode::Node as i32;
    let host_pod = d.run_pod(&hc).await;
    let id = d
        .create(
            &host_pod,
            &hc,
            Daemon::container_config("look", &["sleep", "1000"]),
        )
        .await;
    d.start_ctr(&id).await;
    let out = exec(&mut d, &id, "cat /proc/net/dev").await;
    let dev = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        dev.contains(&format!("{}:", d.bridge)),
        "bridge {} not in the host-network pod's /proc/net/dev:\n{dev}",
        d.bridge
    );
    // ... and a pod with its own network namespace does not see it.
    let own = d
        .create(
            &cni_pod,
            &pc,
            Daemon::container_config("own", &["sleep", "1000"]),
        )
        .await;
    d.start_ctr(&own).await;
    let out = exec(&mut d, &own, "cat /proc/net/dev").await;
    let dev = String::from_utf8_lossy(&out.stdout);
    assert!(dev.contains("eth0:") && !dev.contains(&d.bridge), "{dev}");
    // The host-network pod has no netns pin and no bridge port of its own.
    assert!(!d.dir.path().join("run/ns/netns").join(&host_pod).exists());
    assert_eq!(bridge_ports(&d.bridge).len(), 1);
    d.shutdown().await;
}

/// Runs a hostPort pod with httpd, checks its network is in place, and returns (pod, ip, veths).
async fn hostport_pod(d: &mut Daemon, name: &str) -> (String, String, Vec<String>) {
    d.pull_busybox().await;
    let mut pc = d.pod_config(name, false);
    pc.port_mappings = vec![cri::PortMapping {
        protocol: cri::Protocol::Tcp as i32,
        container_port: HTTP_PORT,
        host_port: pick_host_port().into(),
        host_ip: String::new(),
    }];
    let (pod, ip) = run_pod_ip(d, &pc).await;
    start_httpd(d, &pod, &pc, "x").await;
    let veths = assert_pod_network_present(d, &pod, &ip, true);
    (pod, ip, veths)
}

#[tokio::test]
async fn stop_remove_leaves_no_network_state() {
    let mut ipt = IptablesGuard::default();
    let mut d = Daemon::start_with_portmap().await;
    let (pod, ip, veths) = hostport_pod(&mut d, "gone").await;
    ipt.ids.push(pod.clone());
    d.stop_and_remove_pod(&pod).await;
    assert_pod_network_gone(&d, &pod, &ip, &veths);
    d.shutdown().await;
}

#[tokio::test]
async fn teardown_after_daemon_restart() {
    let mut ipt = IptablesGuard::default();
    let mut d = Daemon::start_with_portmap().await;
    let (pod, ip, veths) = hostport_pod(&mut d, "rst").await;
    ipt.ids.push(pod.clone());
    // An unclean end of the daemon: SIGKILL, no shutdown path.
    d.kill_only();
    d.start_again().await;
    let st = pod_status(&mut d, &pod).await;
    assert_eq!(st.state, cri::PodSandboxState::SandboxReady as i32);
    assert_eq!(st.network.expect("network").ip, ip);
    d.stop_and_remove_pod(&pod).await;
    assert_pod_network_gone(&d, &pod, &ip, &veths);
    d.shutdown().await;
}

#[tokio::test]
async fn cni_state_of_a_vanished_pod_is_torn_down_at_start() {
    // A pod whose record is gone while its CNI state is not (what a DEL failing during a
    // rollback leaves): the next start runs DEL from the cache and unpins what is left.
    let mut ipt = IptablesGuard::default();
    let mut d = Daemon::start_with_portmap().await;
    let (pod, ip, veths) = hostport_pod(&mut d, "orphan").await;
    ipt.ids.push(pod.clone());
    d.kill_only();
    let record = d
        .dir
        .path()
        .join("root/state/pods")
        .join(format!("{pod}.json"));
    std::fs::remove_file(&record).expect("remove the pod record");
    let cache = d
        .dir
        .path()
        .join("root/cni-cache")
        .join(format!("{pod}.json"));
    assert!(cache.exists(), "CNI cache entry {} before", cache.display());
    d.start_again().await;
    assert!(!cache.exists(), "CNI cache entry {} left", cache.display());
    assert_pod_network_gone(&d, &pod, &ip, &veths);
    d.shutdown().await;
}
