//! CNI against Debian's real plugins in /usr/lib/cni (needs root).
//!
//! Every test has its own temp dir, conflist, bridge `crnet<n>`, subnet 10.199.<200+n>.0/24 and
//! host-local dataDir, so tests (and other crates' tests) can run in parallel.

use std::fs;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;

use crius_network::namespace::{self, NamespaceDirs, NamespaceSet};
use crius_network::{
    Cni, CniOptions, Error, PodNetwork, PortMapping, Protocol, DEFAULT_CONFLIST,
    DEFAULT_CONFLIST_NAME,
};
use crius_testutil::{unique_id, BUSYBOX};
use nix::mount::{umount2, MntFlags};

/// A test network: temp dirs, conflist, and the bridge (deleted on drop).
struct TestNet {
    n: u8,
    tmp: tempfile::TempDir,
    opts: CniOptions,
    dirs: NamespaceDirs,
    pods: Vec<String>,
}

impl TestNet {
    fn new(n: u8) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let conf_dir = tmp.path().join("net.d");
        fs::create_dir_all(&conf_dir).unwrap();
        let mut opts = CniOptions::new(tmp.path().join("cache"));
        opts.conf_dir = conf_dir;
        opts.plugin_dirs = vec![tmp.path().join("plugins"), PathBuf::from("/usr/lib/cni")];
        let net = Self {
            n,
            dirs: NamespaceDirs::under(tmp.path().join("ns")),
            opts,
            tmp,
            pods: Vec::new(),
        };
        net.write_conflist("10-test.conflist", &net.conflist(&[]));
        net
    }

    fn bridge(&self) -> String {
        format!("crnet{}", self.n)
    }

    fn subnet_prefix(&self) -> String {
        format!("10.199.{}.", 200 + u32::from(self.n))
    }

    fn gateway(&self) -> String {
        format!("{}1", self.subnet_prefix())
    }

    fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("ipam")
    }

    /// bridge + host-local + portmap, then `extra` plugins.
    fn conflist(&self, extra: &[serde_json::Value]) -> String {
        let mut plugins = vec![
            serde_json::json!({
                "type": "bridge",
                "bridge": self.bridge(),
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "dataDir": self.data_dir(),
                    "ranges": [[{"subnet": format!("{}0/24", self.subnet_prefix()), "gateway": self.gateway()}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            }),
            serde_json::json!({"type": "portmap", "capabilities": {"portMappings": true}}),
        ];
        plugins.extend_from_slice(extra);
        serde_json::json!({"cniVersion": "1.0.0", "name": self.bridge(), "plugins": plugins})
            .to_string()
    }

    fn write_conflist(&self, name: &str, body: &str) {
        fs::write(self.opts.conf_dir.join(name), body).unwrap();
    }

    fn cni(&self) -> Cni {
        Cni::new(self.opts.clone())
    }

    /// Creates a pod netns (removed on drop, with a best-effort teardown).
    async fn pod(&mut self, prefix: &str, port_mappings: Vec<PortMapping>) -> PodNetwork {
        let id = unique_id(prefix);
        let which = NamespaceSet {
            net: true,
            ipc: false,
            uts: false,
        };
        let pins = namespace::create(&self.dirs, &id, which, None)
            .await
            .unwrap();
        self.pods.push(id.clone());
        PodNetwork {
            name: format!("{prefix}-name"),
            namespace: "test".into(),
            uid: format!("uid-{id}"),
            netns: pins.net.unwrap(),
            id,
            port_mappings,
            dns: None,
        }
    }

    /// Host-local allocations (files named by IP) left in the data dir.
    fn allocated_ips(&self) -> Vec<String> {
        let dir = self.data_dir().join(self.bridge());
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.parse::<IpAddr>().is_ok())
            .collect()
    }

    /// Host-side interfaces enslaved to the test bridge (the pods' veths).
    fn bridge_ports(&self) -> Vec<String> {
        let out = run("ip", &["-o", "link", "show", "master", &self.bridge()]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let (opts, dirs, pods) = (self.opts.clone(), self.dirs.clone(), self.pods.clone());
        // Drop may run inside the test's runtime: tear down on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let cni = Cni::new(opts);
            for id in &pods {
                let _ = rt.block_on(cni.teardown(id));
                let _ = namespace::remove_blocking(&dirs, id);
            }
        })
        .join();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .stderr(Stdio::null())
            .status();
        for dir in [&self.dirs.net, &self.dirs.ipc, &self.dirs.uts] {
            let _ = umount2(dir, MntFlags::MNT_DETACH);
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
    out
}

fn iptables_save() -> String {
    String::from_utf8(run("iptables-save", &[]).stdout).unwrap()
}

/// Chains that rules mentioning `id` jump to (portmap's per-pod chains).
fn chains_of(rules: &str, id: &str) -> Vec<String> {
    rules
        .lines()
        .filter(|l| l.contains(id))
        .filter_map(|l| l.split(" -j ").nth(1))
        .filter_map(|t| t.split_whitespace().next())
        .filter(|c| c.starts_with("CNI-") && !c.starts_with("CNI-HOSTPORT"))
        .map(str::to_string)
        .collect()
}

/// A www dir with index.html containing `body`.
fn www(dir: &Path, body: &str) -> PathBuf {
    let www = dir.join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("index.html"), body).unwrap();
    www
}

/// Binds port `port` in `netns`; the returned thread serves one connection with
/// `busybox httpd -i` (inetd mode), so the server is ready before any client starts.
async fn serve_once(netns: &Path, port: u16, www: PathBuf) -> JoinHandle<io::Result<ExitStatus>> {
    let listener = namespace::run_in_netns(netns, move || TcpListener::bind(("0.0.0.0", port)))
        .await
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept()?;
        let fd: OwnedFd = stream.into();
        let out = fd.try_clone()?;
        Command::new(BUSYBOX)
            .args(["httpd", "-i", "-h"])
            .arg(&www)
            .stdin(Stdio::from(fd))
            .stdout(Stdio::from(out))
            .status()
    })
}

fn wget(url: &str) -> Output {
    Command::new(BUSYBOX)
        .args(["wget", "-q", "-O", "-", url]) // (-T crashes Debian's busybox 1.35)
        .output()
        .unwrap()
}

#[tokio::test]
async fn two_pods_get_distinct_ips_and_reach_each_other() {
    let mut net = TestNet::new(1);
    let cni = net.cni();
    cni.status().await.unwrap();
    let a = net.pod("cni-a", vec![]).await;
    let b = net.pod("cni-b", vec![]).await;
    let sa = cni.setup(&a).await.unwrap();
    let sb = cni.setup(&b).await.unwrap();
    assert_eq!(sa.network, net.bridge());
    assert_eq!(sa.interface, "eth0");
    assert_eq!(sa.ips.len(), 1, "{sa:?}");
    assert_eq!(sb.ips.len(), 1, "{sb:?}");
    assert_ne!(sa.ips[0], sb.ips[0]);
    for ip in [sa.ips[0], sb.ips[0]] {
        assert!(ip.to_string().starts_with(&net.subnet_prefix()), "{ip}");
        assert_ne!(ip.to_string(), net.gateway());
    }
    assert!(sa.mac.is_some());
    assert_eq!(cni.cached_status(&a.id).await.unwrap(), Some(sa.clone()));
    assert_eq!(net.bridge_ports().len(), 2);

    // The pod's own view: eth0 carries the IP CNI reported.
    let addr = namespace::run_in_netns(&a.netns, || {
        Command::new("ip")
            .args(["-o", "-4", "addr", "show", "eth0"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&format!("{}/24", sa.ips[0])));

    // busybox httpd in pod A, busybox wget from pod B.
    let server = serve_once(&a.netns, 8080, www(net.tmp.path(), "hello from a")).await;
    let url = format!("http://{}:8080/index.html", sa.ips[0]);
    let out = namespace::run_in_netns(&b.netns, move || wget(&url))
        .await
        .unwrap();
    assert!(out.status.success(), "wget: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from a");
    assert!(server.join().unwrap().unwrap().success());

    for pod in [&a, &b] {
        cni.teardown(&pod.id).await.unwrap();
        cni.teardown(&pod.id).await.unwrap(); // idempotent
        assert_eq!(cni.cached_status(&pod.id).await.unwrap(), None);
        namespace::remove(&net.dirs, &pod.id).await.unwrap();
    }
    assert!(net.bridge_ports().is_empty(), "{:?}", net.bridge_ports());
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
}

#[tokio::test]
async fn host_port_reaches_pod_and_teardown_leaves_nothing() {
    let mut net = TestNet::new(2);
    let cni = net.cni();
    let host_port = 39402;
    let pod = net
        .pod(
            "cni-hp",
            vec![PortMapping {
                host_port,
                container_port: 8080,
                protocol: Protocol::Tcp,
                host_ip: String::new(),
            }],
        )
        .await;
    let status = cni.setup(&pod).await.unwrap();
    let rules = iptables_save();
    let chains = chains_of(&rules, &pod.id);
    assert!(
        !chains.is_empty(),
        "no portmap rules for {}:\n{rules}",
        pod.id
    );

    // From the host, through the DNAT on the bridge's address.
    let server = serve_once(&pod.netns, 8080, www(net.tmp.path(), "hello via hostPort")).await;
    let url = format!("http://{}:{host_port}/index.html", net.gateway());
    let out = tokio::task::spawn_blocking(move || wget(&url))
        .await
        .unwrap();
    assert!(out.status.success(), "wget: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello via hostPort");
    assert!(server.join().unwrap().unwrap().success());

    // Teardown in the daemon's order: network first, then the namespace.
    cni.teardown(&pod.id).await.unwrap();
    namespace::remove(&net.dirs, &pod.id).await.unwrap();
    let rules = iptables_save();
    assert!(
        !rules.contains(&pod.id),
        "rules left for {}:\n{rules}",
        pod.id
    );
    for chain in &chains {
        assert!(
            !rules.contains(chain.as_str()),
            "chain {chain} left:\n{rules}"
        );
    }
    assert!(
        !rules.contains(&status.ips[0].to_string()),
        "rule for the pod IP left"
    );
    assert!(net.bridge_ports().is_empty(), "{:?}", net.bridge_ports());
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
    assert!(!pod.netns.exists());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(pod.netns.to_str().unwrap()));
    assert!(fs::read_dir(&net.opts.cache_dir).unwrap().next().is_none());
}

#[tokio::test]
async fn teardown_works_from_the_cache_alone_after_the_netns_is_gone() {
    let mut net = TestNet::new(3);
    let pod = net
        .pod(
            "cni-cache",
            vec![PortMapping {
                host_port: 39403,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: String::new(),
            }],
        )
        .await;
    {
        let cni = net.cni();
        cni.setup(&pod).await.unwrap();
    }
    let chains = chains_of(&iptables_save(), &pod.id);
    assert!(!chains.is_empty());
    assert_eq!(net.allocated_ips().len(), 1);
    // Crash-like: the namespace goes away first, and the config changes meanwhile.
    namespace::remove(&net.dirs, &pod.id).await.unwrap();
    net.write_conflist("10-test.conflist", "{ broken");

    // A new instance (daemon restart) tears down from the cache only.
    let cni = net.cni();
    assert!(cni.status().await.is_err());
    assert!(cni.cached_status(&pod.id).await.unwrap().is_some());
    cni.teardown(&pod.id).await.unwrap();
    cni.teardown(&pod.id).await.unwrap();
    let rules = iptables_save();
    assert!(!rules.contains(&pod.id), "rules left:\n{rules}");
    for chain in &chains {
        assert!(!rules.contains(chain.as_str()), "chain {chain} left");
    }
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
    assert_eq!(cni.cached_status(&pod.id).await.unwrap(), None);
}

#[tokio::test]
async fn failing_plugin_gives_its_message_and_leaves_nothing() {
    let mut net = TestNet::new(4);
    // A plugin that fails ADD with the CNI error JSON and succeeds DEL.
    let plugins = net.tmp.path().join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    let script = plugins.join("crius-fail");
    fs::write(
        &script,
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n\
         echo '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"crius test failure\",\"details\":\"on purpose\"}'\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    net.write_conflist(
        "10-test.conflist",
        &net.conflist(&[serde_json::json!({"type": "crius-fail"})]),
    );
    let cni = net.cni();
    cni.status().await.unwrap();
    let pod = net
        .pod(
            "cni-fail",
            vec![PortMapping {
                host_port: 39404,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: String::new(),
            }],
        )
        .await;
    let err = cni.setup(&pod).await.unwrap_err();
    match &err {
        Error::Plugin {
            plugin, code, msg, ..
        } => {
            assert_eq!(plugin, "crius-fail");
            assert_eq!(*code, Some(100));
            assert!(msg.contains("crius test failure: on purpose"), "{msg}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains(&pod.id));
    // bridge and portmap were undone: no veth, IP, rule or cache entry is left.
    assert!(net.bridge_ports().is_empty(), "{:?}", net.bridge_ports());
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
    assert!(!iptables_save().contains(&pod.id));
    assert!(fs::read_dir(&net.opts.cache_dir).unwrap().next().is_none());
    let eth0 = namespace::run_in_netns(&pod.netns, || {
        Command::new("ip").args(["link", "show", "eth0"]).output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!eth0.status.success(), "eth0 left in the pod netns");

    // A real plugin's own error, too: tuning with a sysctl that does not exist.
    net.write_conflist(
        "10-test.conflist",
        &net.conflist(&[serde_json::json!({
            "type": "tuning",
            "sysctl": {"net.ipv4.conf.eth0.crius_bogus": "1"}
        })]),
    );
    let err = cni.setup(&pod).await.unwrap_err().to_string();
    assert!(err.contains("CNI ADD tuning"), "{err}");
    assert!(err.contains("crius_bogus"), "{err}");
    assert!(net.bridge_ports().is_empty(), "{:?}", net.bridge_ports());
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
    assert!(!iptables_save().contains(&pod.id));
}

#[tokio::test]
async fn status_names_the_broken_file_missing_plugin_or_empty_dir() {
    let net = TestNet::new(5);
    let cni = net.cni();
    cni.status().await.unwrap();

    net.write_conflist("05-broken.conflist", "{\"cniVersion\": \"1.0.0\", ");
    let err = cni.status().await.unwrap_err();
    assert!(matches!(err, Error::ConfigParse { .. }), "{err:?}");
    assert!(err.to_string().contains("05-broken.conflist"), "{err}");
    let pod = PodNetwork {
        id: unique_id("cni-status"),
        name: "p".into(),
        namespace: "test".into(),
        uid: "u".into(),
        netns: net.tmp.path().join("no-such-netns"),
        port_mappings: vec![],
        dns: None,
    };
    let err = cni.setup(&pod).await.unwrap_err();
    assert!(err.to_string().contains("05-broken.conflist"), "{err}");

    fs::remove_file(net.opts.conf_dir.join("05-broken.conflist")).unwrap();
    net.write_conflist(
        "10-test.conflist",
        &net.conflist(&[serde_json::json!({"type": "no-such-plugin"})]),
    );
    let err = cni.status().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::PluginNotFound { .. }), "{err:?}");
    assert!(
        text.contains("no-such-plugin") && text.contains("/usr/lib/cni"),
        "{text}"
    );

    fs::remove_file(net.opts.conf_dir.join("10-test.conflist")).unwrap();
    let err = cni.status().await.unwrap_err();
    assert!(matches!(err, Error::NoConfig { .. }), "{err:?}");
    assert!(err
        .to_string()
        .contains(net.opts.conf_dir.to_str().unwrap()));

    // The shipped default config parses and all its plugins are in Debian's dir.
    assert!(crius_network::cni::install_default_config(&net.opts.conf_dir).unwrap());
    assert!(!crius_network::cni::install_default_config(&net.opts.conf_dir).unwrap());
    assert_eq!(
        fs::read_to_string(net.opts.conf_dir.join(DEFAULT_CONFLIST_NAME)).unwrap(),
        DEFAULT_CONFLIST
    );
    cni.status().await.unwrap();
}

#[tokio::test]
async fn plugins_get_the_cni_environment_prev_result_and_runtime_config() {
    let mut net = TestNet::new(6);
    // A plugin that records its environment and stdin and prints nothing.
    let plugins = net.tmp.path().join("plugins");
    let record = net.tmp.path().join("record");
    fs::create_dir_all(&plugins).unwrap();
    fs::create_dir_all(&record).unwrap();
    let script = plugins.join("crius-record");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > {r}/$CNI_COMMAND.stdin\nenv | grep '^CNI_' | sort > {r}/$CNI_COMMAND.env\n",
            r = record.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    net.write_conflist(
        "10-test.conflist",
        &net.conflist(&[serde_json::json!({
            "type": "crius-record",
            "capabilities": {"portMappings": true, "dns": true, "bandwidth": true}
        })]),
    );
    let cni = net.cni();
    let mut pod = net
        .pod(
            "cni-rec",
            vec![PortMapping {
                host_port: 39406,
                container_port: 53,
                protocol: Protocol::Udp,
                host_ip: net.gateway(),
            }],
        )
        .await;
    pod.dns = Some(crius_network::DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["test.svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    let status = cni.setup(&pod).await.unwrap();
    let err = cni.setup(&pod).await.unwrap_err();
    assert!(err.to_string().contains("already set up"), "{err}");

    let env = fs::read_to_string(record.join("ADD.env")).unwrap();
    let cni_path = format!("CNI_PATH={}:/usr/lib/cni", plugins.display());
    for want in [
        "CNI_COMMAND=ADD".to_string(),
        format!("CNI_CONTAINERID={}", pod.id),
        format!("CNI_NETNS={}", pod.netns.display()),
        "CNI_IFNAME=eth0".to_string(),
        format!(
            "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=test;K8S_POD_NAME=cni-rec-name;K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID=uid-{id}",
            id = pod.id
        ),
        cni_path.clone(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} not in\n{env}");
    }
    let stdin: serde_json::Value =
        serde_json::from_slice(&fs::read(record.join("ADD.stdin")).unwrap()).unwrap();
    assert_eq!(stdin["name"], net.bridge());
    assert_eq!(stdin["cniVersion"], "1.0.0");
    let prev_ip = stdin["prevResult"]["ips"][0]["address"].as_str().unwrap();
    assert_eq!(prev_ip, format!("{}/24", status.ips[0]));
    assert_eq!(
        stdin["runtimeConfig"],
        serde_json::json!({
            "portMappings": [{"hostPort": 39406, "containerPort": 53, "protocol": "udp", "hostIP": net.gateway()}],
            "dns": {"servers": ["10.96.0.10"], "searches": ["test.svc.cluster.local"], "options": ["ndots:5"]}
        })
    );

    // DEL after the netns is gone: empty CNI_NETNS, the final ADD result as prevResult.
    namespace::remove(&net.dirs, &pod.id).await.unwrap();
    cni.teardown(&pod.id).await.unwrap();
    let env = fs::read_to_string(record.join("DEL.env")).unwrap();
    assert!(env.lines().any(|l| l == "CNI_COMMAND=DEL"), "{env}");
    assert!(env.lines().any(|l| l == "CNI_NETNS="), "{env}");
    assert!(env.lines().any(|l| l == cni_path), "{env}");
    let stdin: serde_json::Value =
        serde_json::from_slice(&fs::read(record.join("DEL.stdin")).unwrap()).unwrap();
    assert_eq!(stdin["prevResult"]["ips"][0]["address"], prev_ip);
    assert_eq!(stdin["runtimeConfig"]["portMappings"][0]["hostPort"], 39406);
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
}

#[tokio::test]
async fn older_cni_versions_and_single_plugin_conf_files_work() {
    let mut net = TestNet::new(7);
    let list_040 = net.conflist(&[]).replace("\"1.0.0\"", "\"0.4.0\"");
    let bridge: serde_json::Value = serde_json::from_str(&net.conflist(&[])).unwrap();
    let mut single_031 = bridge["plugins"][0].clone();
    single_031["cniVersion"] = "0.3.1".into();
    single_031["name"] = net.bridge().into();
    for (file, body, version) in [
        ("10-test.conflist", list_040, "0.4.0"),
        ("10-test.conf", single_031.to_string(), "0.3.1"),
    ] {
        for f in fs::read_dir(&net.opts.conf_dir).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
        net.write_conflist(file, &body);
        let cni = net.cni();
        cni.status().await.unwrap();
        let pod = net.pod("cni-ver", vec![]).await;
        let status = cni.setup(&pod).await.unwrap();
        assert_eq!(status.ips.len(), 1, "{version}: {status:?}");
        assert!(status.ips[0].to_string().starts_with(&net.subnet_prefix()));
        assert_eq!(
            net.allocated_ips(),
            vec![status.ips[0].to_string()],
            "{version}"
        );
        cni.teardown(&pod.id).await.unwrap();
        namespace::remove(&net.dirs, &pod.id).await.unwrap();
        assert!(net.allocated_ips().is_empty(), "{version}");
        assert!(net.bridge_ports().is_empty(), "{version}");
    }
}

#[tokio::test]
async fn setup_cancelled_mid_chain_is_undone_by_teardown() {
    let mut net = TestNet::new(8);
    // A plugin that announces itself on a FIFO and then blocks: ADD is cancelled while bridge
    // has already added the veth and the IP (as if the daemon died or timed out).
    let plugins = net.tmp.path().join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    let started = net.tmp.path().join("started.fifo");
    let never = net.tmp.path().join("never.fifo");
    for fifo in [&started, &never] {
        nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let script = plugins.join("crius-hang");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\necho started > {}\nread x < {}\n",
            started.display(),
            never.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    net.write_conflist(
        "10-test.conflist",
        &net.conflist(&[serde_json::json!({"type": "crius-hang"})]),
    );
    let cni = net.cni();
    let pod = net.pod("cni-cancel", vec![]).await;
    tokio::select! {
        r = cni.setup(&pod) => panic!("setup finished: {r:?}"),
        s = tokio::fs::read_to_string(&started) => assert_eq!(s.unwrap().trim(), "started"),
    }
    // Cancelled: the bridge's work is there, the cache knows about it, no status is claimed.
    assert_eq!(net.bridge_ports().len(), 1);
    assert_eq!(net.allocated_ips().len(), 1);
    assert_eq!(cni.cached_status(&pod.id).await.unwrap(), None);

    let cni = net.cni(); // as after a restart
    cni.teardown(&pod.id).await.unwrap();
    assert!(net.bridge_ports().is_empty(), "{:?}", net.bridge_ports());
    assert!(net.allocated_ips().is_empty(), "{:?}", net.allocated_ips());
    assert!(fs::read_dir(&net.opts.cache_dir).unwrap().next().is_none());
}
