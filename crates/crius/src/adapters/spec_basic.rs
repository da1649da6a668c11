//! A minimal spec generator used until crius-spec is wired in: the default OCI spec with the
//! CRI command/args merged over the image's Entrypoint/Cmd, env, working dir and terminal.
//! No user resolution, security context or resources.

use k8s_cri::v1 as cri;
use oci_spec::runtime::{LinuxResources, ProcessBuilder, RootBuilder, Spec};

use crate::backend::{SpecGenerator, SpecInput};
use crate::error::{Error, Result};

/// The minimal generator.
pub struct BasicSpec;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("build spec: {e}"))
}

impl SpecGenerator for BasicSpec {
    fn container_spec(&self, input: &SpecInput<'_>) -> Result<Spec> {
        let img = input.image.config().clone().unwrap_or_default();
        let entry = img.entrypoint().clone().unwrap_or_default();
        let cmd = img.cmd().clone().unwrap_or_default();
        let c = input.config;
        let args: Vec<String> = match (c.command.is_empty(), c.args.is_empty()) {
            (false, false) => c.command.iter().chain(c.args.iter()).cloned().collect(),
            (false, true) => c.command.clone(),
            (true, false) => entry.into_iter().chain(c.args.iter().cloned()).collect(),
            (true, true) => entry.into_iter().chain(cmd).collect(),
        };
        if args.is_empty() {
            return Err(Error::InvalidArgument("no command: neither the config nor the image has one".into()));
        }
        let mut env: Vec<String> = img.env().clone().unwrap_or_default();
        for kv in &c.envs {
            env.retain(|e| e.split('=').next() != Some(kv.key.as_str()));
            env.push(format!("{}={}", kv.key, kv.value));
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        let cwd = if !c.working_dir.is_empty() {
            c.working_dir.clone()
        } else {
            img.working_dir().clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into())
        };
        let mut spec = Spec::default();
        let base = spec.process().clone().unwrap_or_default();
        let process = ProcessBuilder::default()
            .terminal(c.tty)
            .args(args)
            .env(env)
            .cwd(cwd)
            .user(base.user().clone())
            .capabilities(base.capabilities().clone().unwrap_or_default())
            .rlimits(base.rlimits().clone().unwrap_or_default())
            .no_new_privileges(true)
            .build()
            .map_err(internal)?;
        spec.set_process(Some(process));
        spec.set_root(Some(RootBuilder::default().path(input.rootfs).readonly(false).build().map_err(internal)?));
        Ok(spec)
    }

    fn linux_resources(&self, res: &cri::LinuxContainerResources) -> Result<LinuxResources> {
        let mut r = LinuxResources::default();
        let mut cpu = oci_spec::runtime::LinuxCpu::default();
        if res.cpu_shares > 0 {
            cpu.set_shares(Some(res.cpu_shares as u64));
        }
        if res.cpu_quota != 0 {
            cpu.set_quota(Some(res.cpu_quota));
        }
        if res.cpu_period > 0 {
            cpu.set_period(Some(res.cpu_period as u64));
        }
        if !res.cpuset_cpus.is_empty() {
            cpu.set_cpus(Some(res.cpuset_cpus.clone()));
        }
        if !res.cpuset_mems.is_empty() {
            cpu.set_mems(Some(res.cpuset_mems.clone()));
        }
        r.set_cpu(Some(cpu));
        if res.memory_limit_in_bytes > 0 {
            let mut m = oci_spec::runtime::LinuxMemory::default();
            m.set_limit(Some(res.memory_limit_in_bytes));
            r.set_memory(Some(m));
        }
        Ok(r)
    }
}
