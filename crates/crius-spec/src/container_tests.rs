//! Table tests of the whole container spec builder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    Capability as CriCapability, ContainerConfig, ContainerMetadata, Device, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, SecurityProfile, SupplementalGroupsPolicy,
};
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use oci_spec::runtime::{Capability, LinuxNamespaceType, Mount, Spec};

use super::*;
use crate::types::{HostFeatures, ImageVolume, PodFiles, PodNamespaces};

/// Owns everything a [`ContainerSpecInput`] borrows.
struct Fixture {
    config: ContainerConfig,
    sandbox: PodSandboxConfig,
    image: ImageConfiguration,
    rootfs: tempfile::TempDir,
    namespaces: PodNamespaces,
    pod_files: PodFiles,
    image_volumes: Vec<ImageVolume>,
    daemon_oom: i32,
}

impl Fixture {
    fn new() -> Self {
        let rootfs = tempfile::tempdir().expect("rootfs");
        std::fs::create_dir_all(rootfs.path().join("etc")).expect("etc");
        std::fs::write(
            rootfs.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n",
        )
        .expect("passwd");
        std::fs::write(
            rootfs.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nshared:x:500:www\n",
        )
        .expect("group");
        let image = ImageConfigurationBuilder::default()
            .config(
                ConfigBuilder::default()
                    .entrypoint(vec!["/bin/app".to_string()])
                    .cmd(vec!["--serve".to_string()])
                    .env(vec!["PATH=/bin".to_string(), "MODE=image".to_string()])
                    .working_dir("/srv")
                    .stop_signal("SIGQUIT")
                    .build()
                    .expect("config"),
            )
            .build()
            .expect("image");
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            envs: vec![KeyValue {
                key: "MODE".into(),
                value: "cri".into(),
            }],
            annotations: [("user.annotation".to_string(), "1".to_string())].into(),
            linux: Some(LinuxContainerConfig {
                resources: None,
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        pid: NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let sandbox = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "pod".into(),
                uid: "uid-1".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "pod-host".into(),
            linux: Some(LinuxPodSandboxConfig::default()),
            ..Default::default()
        };
        Fixture {
            config,
            sandbox,
            image,
            rootfs,
            namespaces: PodNamespaces {
                network: Some("/run/netns/pod".into()),
                ipc: Some("/run/ipcns/pod".into()),
                uts: Some("/run/utsns/pod".into()),
                pid: None,
            },
            pod_files: PodFiles::default(),
            image_volumes: Vec::new(),
            daemon_oom: 0,
        }
    }

    fn sc(&mut self) -> &mut LinuxContainerSecurityContext {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
    }

    fn sandbox_sc(&mut self) -> &mut LinuxSandboxSecurityContext {
        self.sandbox
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
    }

    fn input(&self) -> ContainerSpecInput<'_> {
        ContainerSpecInput {
            container_id: "ctr1",
            sandbox_id: "pod1",
            config: &self.config,
            sandbox_config: &self.sandbox,
            image: &self.image,
            image_name: "example.com/app:1",
            rootfs: self.rootfs.path(),
            namespaces: self.namespaces.clone(),
            target_pid_namespace: None,
            pod_files: self.pod_files.clone(),
            log_path: Some("/var/log/pods/x/app/0.log".into()),
            cgroup_parent: "/kubepods/pod-uid-1".into(),
            daemon_capabilities: crate::parse_capability_mask("000001fffeffffff").expect("mask"),
            daemon_oom_score_adj: self.daemon_oom,
            image_volumes: self.image_volumes.clone(),
            extra_annotations: HashMap::new(),
            host: HostFeatures::default(),
        }
    }

    fn build(&self) -> ContainerSpec {
        container_spec(&self.input()).expect("container spec")
    }
}

fn mount_at<'a>(spec: &'a Spec, dest: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_ref()?
        .iter()
        .find(|m| m.destination() == Path::new(dest))
}

fn effective(spec: &Spec) -> Vec<Capability> {
    let mut v: Vec<Capability> = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.effective().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    v.sort_by_key(|c| c.to_string());
    v
}

#[test]
fn default_container() {
    let f = Fixture::new();
    let out = f.build();
    let spec = &out.spec;
    let p = spec.process().as_ref().expect("process");
    assert_eq!(
        p.args().as_deref(),
        Some(&["/bin/app".to_string(), "--serve".to_string()][..])
    );
    let env = p.env().clone().expect("env");
    assert!(env.contains(&"PATH=/bin".to_string()));
    assert!(env.contains(&"MODE=cri".to_string()));
    assert!(env.contains(&"HOSTNAME=pod-host".to_string()));
    assert!(env.contains(&"HOME=/root".to_string()));
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!(p.no_new_privileges(), Some(false));
    assert_eq!(p.oom_score_adj(), Some(0));
    assert!(p.rlimits().is_none());
    assert_eq!(effective(spec).len(), 14);
    assert_eq!(out.stop_signal, libc::SIGQUIT);
    assert!(!out.tty);
    assert_eq!(spec.hostname().as_deref(), Some("pod-host"));
    assert_eq!(
        spec.root().as_ref().map(|r| r.path().clone()),
        Some(f.rootfs.path().to_path_buf())
    );
    assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(false));

    let linux = spec.linux().as_ref().expect("linux");
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/kubepods/pod-uid-1/ctr1"))
    );
    let ns: Vec<(LinuxNamespaceType, Option<PathBuf>)> = linux
        .namespaces()
        .clone()
        .expect("ns")
        .iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect();
    assert!(ns.contains(&(LinuxNamespaceType::Mount, None)));
    assert!(ns.contains(&(LinuxNamespaceType::Network, Some("/run/netns/pod".into()))));
    assert!(ns.contains(&(LinuxNamespaceType::Pid, None)));
    assert!(
        linux.seccomp().is_none(),
        "no profile requested = unconfined"
    );
    assert!(linux
        .masked_paths()
        .as_ref()
        .expect("masked")
        .contains(&"/proc/kcore".to_string()));
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .expect("rules");
    assert!(!rules[0].allow(), "deny all first");
    assert!(linux.devices().is_none());

    assert!(mount_at(spec, "/proc").is_some());
    assert_eq!(
        mount_at(spec, "/dev/shm")
            .and_then(|m| m.typ().clone())
            .as_deref(),
        Some("tmpfs")
    );
    let sys = mount_at(spec, "/sys").expect("sys");
    assert!(sys
        .options()
        .as_ref()
        .expect("opts")
        .contains(&"ro".to_string()));

    let a = spec.annotations().as_ref().expect("annotations");
    assert_eq!(a["user.annotation"], "1");
    assert_eq!(a[crate::annotations::CONTAINER_TYPE], "container");
    assert_eq!(a[crate::annotations::SANDBOX_ID], "pod1");
    assert_eq!(a[crate::annotations::CONTAINER_NAME], "app");
    assert_eq!(a[crate::annotations::SANDBOX_NAMESPACE], "default");
    assert_eq!(a[crate::annotations::IMAGE_NAME], "example.com/app:1");
    assert_eq!(a[crate::annotations::LOG_PATH], "/var/log/pods/x/app/0.log");
}

#[test]
fn spec_serializes_with_oci_field_names() {
    let f = Fixture::new();
    let json = serde_json::to_value(&f.build().spec).expect("json");
    assert_eq!(json["linux"]["cgroupsPath"], "/kubepods/pod-uid-1/ctr1");
    assert_eq!(json["process"]["oomScoreAdj"], 0);
    assert_eq!(json["process"]["user"]["additionalGids"][0], 0);
    assert!(json["process"]["capabilities"]["bounding"]
        .as_array()
        .expect("bounding")
        .contains(&serde_json::json!("CAP_CHOWN")));
    assert!(json["process"].get("rlimits").is_none());
}

#[test]
fn privileged_container() {
    let mut f = Fixture::new();
    f.sc().privileged = true;
    f.sc().seccomp = Some(SecurityProfile {
        profile_type: ProfileType::RuntimeDefault as i32,
        localhost_ref: String::new(),
    });
    // The pod was not created privileged: refused.
    match container_spec(&f.input()) {
        Err(SpecError::InvalidField { field, .. }) => assert!(field.ends_with("privileged")),
        other => panic!("expected an error, got {other:?}"),
    }
    f.sandbox_sc().privileged = true;
    let spec = f.build().spec;
    let eff = effective(&spec);
    assert_eq!(eff.len(), 40, "all the daemon holds");
    assert!(eff.contains(&Capability::SysAdmin));
    assert!(
        !eff.contains(&Capability::SysResource),
        "never more than the daemon holds"
    );
    let linux = spec.linux().as_ref().expect("linux");
    assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
    assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
    assert!(linux.seccomp().is_none());
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .expect("rules");
    assert!(
        rules[0].allow() && rules[0].major().is_none(),
        "allow all devices"
    );
    let devs = linux.devices().clone().expect("host devices");
    assert!(devs.iter().any(|d| d.path() == Path::new("/dev/null")));
    for dest in ["/sys", "/sys/fs/cgroup"] {
        let opts = mount_at(&spec, dest)
            .and_then(|m| m.options().clone())
            .expect(dest);
        assert!(opts.contains(&"rw".to_string()), "{dest}");
    }
}

#[test]
fn capabilities_and_non_root_users() {
    let mut f = Fixture::new();
    f.sc().capabilities = Some(CriCapability {
        add_capabilities: vec!["NET_ADMIN".into()],
        drop_capabilities: vec!["ALL".into()],
        add_ambient_capabilities: vec![],
    });
    assert_eq!(effective(&f.build().spec), vec![Capability::NetAdmin]);

    // Non-root: effective/permitted cleared as execve would; bounding kept.
    f.sc().run_as_user = Some(Int64Value { value: 33 });
    let spec = f.build().spec;
    assert!(effective(&spec).is_empty());
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().clone())
        .expect("caps");
    assert!(caps
        .bounding()
        .as_ref()
        .expect("bounding")
        .contains(&Capability::NetAdmin));
    let u = spec.process().as_ref().expect("p").user().clone();
    assert_eq!((u.uid(), u.gid()), (33, 33));
    assert_eq!(u.additional_gids().as_deref(), Some(&[33, 500][..]));
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .expect("env");
    assert!(env.contains(&"HOME=/var/www".to_string()));

    // Ambient capabilities survive for non-root.
    f.sc().capabilities = Some(CriCapability {
        add_capabilities: vec![],
        drop_capabilities: vec![],
        add_ambient_capabilities: vec!["NET_BIND_SERVICE".into()],
    });
    assert_eq!(effective(&f.build().spec), vec![Capability::NetBindService]);
}

#[test]
#[allow(deprecated)]
fn security_options() {
    let mut f = Fixture::new();
    f.sc().readonly_rootfs = true;
    f.sc().no_new_privs = true;
    f.sc().seccomp_profile_path = "runtime/default".into();
    f.sc().masked_paths = vec!["/proc/custom".into()];
    f.pod_files.hosts = Some("/run/pod/hosts".into());
    let spec = f.build().spec;
    assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(true));
    assert_eq!(
        spec.process().as_ref().and_then(|p| p.no_new_privileges()),
        Some(true)
    );
    let linux = spec.linux().as_ref().expect("linux");
    assert!(linux.seccomp().is_some());
    assert_eq!(
        linux.masked_paths().as_deref(),
        Some(&["/proc/custom".to_string()][..])
    );
    let hosts = mount_at(&spec, "/etc/hosts").expect("hosts");
    assert!(hosts
        .options()
        .as_ref()
        .expect("opts")
        .contains(&"ro".to_string()));

    f.sc().apparmor_profile = "localhost/custom".into();
    match container_spec(&f.input()) {
        Err(e @ SpecError::AppArmorUnavailable { .. }) => assert!(e.to_string().contains("custom")),
        other => panic!("expected AppArmorUnavailable, got {other:?}"),
    }
    f.sc().apparmor_profile = "runtime/default".into();
    f.sc().seccomp = Some(SecurityProfile {
        profile_type: ProfileType::Localhost as i32,
        localhost_ref: "/nonexistent/profile.json".into(),
    });
    match container_spec(&f.input()) {
        Err(e @ SpecError::Seccomp { .. }) => {
            assert!(e.to_string().contains("/nonexistent/profile.json"))
        }
        other => panic!("expected a seccomp error, got {other:?}"),
    }
}

#[test]
fn request_errors_are_invalid_argument() {
    type Edit = fn(&mut Fixture);
    let cases: &[(&str, Edit)] = &[
        ("no command", |f| {
            f.image = ImageConfiguration::default();
        }),
        ("unknown user", |f| f.sc().run_as_username = "ghost".into()),
        ("bad resources", |f| {
            f.config
                .linux
                .get_or_insert_with(Default::default)
                .resources = Some(LinuxContainerResources {
                cpu_period: 5,
                ..Default::default()
            })
        }),
        ("missing host path", |f| {
            f.config.mounts.push(k8s_cri::v1::Mount {
                host_path: "/nonexistent/crius".into(),
                container_path: "/x".into(),
                ..Default::default()
            })
        }),
        ("non-namespaced sysctl", |f| {
            f.sandbox
                .linux
                .get_or_insert_with(Default::default)
                .sysctls
                .insert("vm.swappiness".into(), "1".into());
        }),
        ("net sysctl on host network", |f| {
            f.namespaces.network = None;
            f.sandbox
                .linux
                .get_or_insert_with(Default::default)
                .sysctls
                .insert("net.ipv4.ip_forward".into(), "1".into());
        }),
        ("unknown capability", |f| {
            f.sc().capabilities = Some(CriCapability {
                add_capabilities: vec!["NOPE".into()],
                ..Default::default()
            })
        }),
        ("bad device", |f| {
            f.config.devices.push(Device {
                host_path: "/etc/passwd".into(),
                container_path: "/dev/x".into(),
                permissions: "rw".into(),
            })
        }),
        ("bad oom", |f| {
            f.config
                .linux
                .get_or_insert_with(Default::default)
                .resources = Some(LinuxContainerResources {
                oom_score_adj: 5000,
                ..Default::default()
            })
        }),
    ];
    for (name, edit) in cases {
        let mut f = Fixture::new();
        edit(&mut f);
        match container_spec(&f.input()) {
            Err(e) => assert!(e.is_invalid_argument(), "{name}: {e}"),
            Ok(_) => panic!("{name}: expected an error"),
        }
    }
}

#[test]
fn resources_oom_and_sysctls() {
    let mut f = Fixture::new();
    f.daemon_oom = -500;
    f.config
        .linux
        .get_or_insert_with(Default::default)
        .resources = Some(LinuxContainerResources {
        cpu_shares: 256,
        memory_limit_in_bytes: 32 << 20,
        oom_score_adj: -999,
        ..Default::default()
    });
    f.sandbox
        .linux
        .get_or_insert_with(Default::default)
        .sysctls
        .insert("net.ipv4.ping_group_range".into(), "0 1".into());
    let spec = f.build().spec;
    assert_eq!(
        spec.process().as_ref().and_then(|p| p.oom_score_adj()),
        Some(-500)
    );
    let linux = spec.linux().as_ref().expect("linux");
    let res = linux.resources().as_ref().expect("resources");
    assert_eq!(res.cpu().as_ref().and_then(|c| c.shares()), Some(256));
    assert_eq!(
        res.memory().as_ref().and_then(|m| m.limit()),
        Some(32 << 20)
    );
    assert_eq!(
        linux.sysctl().as_ref().expect("sysctl")["net.ipv4.ping_group_range"],
        "0 1"
    );
}

#[test]
fn host_namespaces_and_hostname() {
    let mut f = Fixture::new();
    f.namespaces = PodNamespaces::default();
    let spec = f.build().spec;
    assert_eq!(
        spec.hostname(),
        &None,
        "no hostname in the host UTS namespace"
    );
    let types: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .expect("ns")
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(types, [LinuxNamespaceType::Mount, LinuxNamespaceType::Pid]);
    // The container still learns the pod's hostname through HOSTNAME.
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .expect("env");
    assert!(env.contains(&"HOSTNAME=pod-host".to_string()));
}

#[test]
fn tty_mounts_devices_volumes() {
    let mut f = Fixture::new();
    f.config.tty = true;
    let host = tempfile::tempdir().expect("host dir");
    f.config.mounts.push(k8s_cri::v1::Mount {
        host_path: host.path().display().to_string(),
        container_path: "/data".into(),
        readonly: true,
        ..Default::default()
    });
    f.config.devices.push(Device {
        host_path: "/dev/null".into(),
        container_path: "/dev/extra".into(),
        permissions: "rwm".into(),
    });
    f.image = ImageConfigurationBuilder::default()
        .config(
            ConfigBuilder::default()
                .cmd(vec!["/bin/sh".to_string()])
                .volumes(vec![
                    "/data".to_string(),
                    "/cache".to_string(),
                    "/skipped".to_string(),
                ])
                .build()
                .expect("config"),
        )
        .build()
        .expect("image");
    f.image_volumes = vec![ImageVolume {
        container_path: "/cache".into(),
        host_dir: "/var/lib/crius/vol/cache".into(),
    }];
    f.pod_files.shm = Some("/run/pod/shm".into());
    let out = f.build();
    assert!(out.tty);
    assert_eq!(out.skipped_volumes, ["/skipped"]);
    assert_eq!(out.stop_signal, libc::SIGTERM);
    let spec = &out.spec;
    let p = spec.process().as_ref().expect("process");
    assert_eq!(p.terminal(), Some(true));
    assert!(p
        .env()
        .as_ref()
        .expect("env")
        .contains(&"TERM=xterm".to_string()));
    assert_eq!(p.cwd(), Path::new("/"));
    let data = mount_at(spec, "/data").expect("data");
    assert_eq!(
        data.source().as_deref(),
        Some(std::fs::canonicalize(host.path()).expect("canon").as_path())
    );
    assert_eq!(
        mount_at(spec, "/cache").and_then(|m| m.source().clone()),
        Some(PathBuf::from("/var/lib/crius/vol/cache"))
    );
    assert!(mount_at(spec, "/skipped").is_none());
    assert_eq!(
        mount_at(spec, "/dev/shm").and_then(|m| m.source().clone()),
        Some(PathBuf::from("/run/pod/shm"))
    );
    let linux = spec.linux().as_ref().expect("linux");
    let devs = linux.devices().clone().expect("devices");
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0].path(), Path::new("/dev/extra"));
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .expect("rules");
    assert_eq!(rules.len(), 2);
    assert!(rules[1].allow());
    assert_eq!(rules[1].access().as_deref(), Some("rwm"));
}

#[test]
fn cgroups_path_joins() {
    assert_eq!(cgroups_path("/crius", "abc"), "/crius/abc");
    assert_eq!(
        cgroups_path("kubepods/burstable/pod1/", "abc"),
        "/kubepods/burstable/pod1/abc"
    );
    assert_eq!(cgroups_path("", "abc"), "/abc");
}

#[test]
fn supplemental_groups_policy_reaches_spec_and_status_user() {
    // (policy, process additionalGids = ContainerStatus.user.linux.supplemental_groups)
    let cases: &[(SupplementalGroupsPolicy, &[u32])] = &[
        (SupplementalGroupsPolicy::Merge, &[33, 500, 1234]),
        (SupplementalGroupsPolicy::Strict, &[33, 1234]),
    ];
    for (policy, want) in cases {
        let mut f = Fixture::new();
        f.sc().run_as_user = Some(Int64Value { value: 33 });
        f.sc().supplemental_groups = vec![1234];
        f.sc().supplemental_groups_policy = *policy as i32;
        let out = f.build();
        let user = out.spec.process().as_ref().expect("process").user();
        assert_eq!((user.uid(), user.gid()), (33, 33), "{policy:?}");
        assert_eq!(
            user.additional_gids().clone().unwrap_or_default(),
            want.to_vec(),
            "{policy:?}"
        );
        assert_eq!(out.user.supplemental_groups_policy, *policy);
        let linux = out.user.container_user().linux.expect("linux");
        assert_eq!((linux.uid, linux.gid), (33, 33), "{policy:?}");
        let want64: Vec<i64> = want.iter().map(|g| i64::from(*g)).collect();
        assert_eq!(linux.supplemental_groups, want64, "{policy:?}");
    }
}

#[test]
fn recursive_read_only_needs_kernel_support() {
    let host_dir = tempfile::tempdir().expect("host dir");
    let mut f = Fixture::new();
    f.config.mounts.push(k8s_cri::v1::Mount {
        host_path: host_dir.path().display().to_string(),
        container_path: "/ro".into(),
        readonly: true,
        recursive_read_only: true,
        ..Default::default()
    });
    let mut input = f.input();
    input.host.recursive_read_only = false;
    match container_spec(&input) {
        Err(e) => {
            assert!(e.is_invalid_argument(), "{e}");
            assert!(e.to_string().contains("mount_setattr"), "{e}");
        }
        Ok(_) => panic!("rro accepted without mount_setattr"),
    }
    input.host.recursive_read_only = true;
    let out = container_spec(&input).expect("spec");
    let m = mount_at(&out.spec, "/ro").expect("/ro");
    assert_eq!(
        m.options().clone().unwrap_or_default(),
        ["rbind", "rprivate", "ro", "rro"]
    );
}
