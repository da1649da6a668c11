//! The container process: command line, environment, working directory, stop signal.

use k8s_cri::v1::{ContainerConfig, KeyValue, Signal};
use oci_spec::image::Config as ImageConfig;

use crate::error::{Result, SpecError};

/// `PATH` for containers whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The kubelet's command rules: a CRI `command` replaces the image's Entrypoint *and* drops its
/// Cmd; CRI `args` replace Cmd. The result is entrypoint + cmd and must not be empty.
pub fn command_line(config: &ContainerConfig, image: Option<&ImageConfig>) -> Result<Vec<String>> {
    let image_entrypoint = image
        .and_then(|i| i.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|i| i.cmd().clone()).unwrap_or_default();
    let (entrypoint, cmd) = if !config.command.is_empty() {
        (config.command.clone(), config.args.clone())
    } else if !config.args.is_empty() {
        (image_entrypoint, config.args.clone())
    } else {
        (image_entrypoint, image_cmd)
    };
    let mut argv = entrypoint;
    argv.extend(cmd);
    if argv.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(argv)
}

/// The environment: the image's variables, then the CRI ones (a CRI key replaces the image's
/// value in place; new keys are appended in order). `PATH` defaults to [`DEFAULT_PATH`],
/// `HOSTNAME` is set to `hostname` (unless the CRI config sets it), and `HOME` to `home` when
/// neither sets it.
pub fn environment(
    image_env: &[String],
    cri_env: &[KeyValue],
    hostname: &str,
    home: Option<&str>,
) -> Result<Vec<String>> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, key: &str, value: &str| match env
        .iter_mut()
        .find(|(k, _)| k == key)
    {
        Some(slot) => slot.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    };
    for kv in image_env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if !k.is_empty() {
            set(&mut env, k, v);
        }
    }
    let has = |env: &[(String, String)], key: &str| env.iter().any(|(k, _)| k == key);
    if !has(&env, "PATH") {
        set(&mut env, "PATH", DEFAULT_PATH);
    }
    if !hostname.is_empty() {
        set(&mut env, "HOSTNAME", hostname);
    }
    for kv in cri_env {
        if kv.key.is_empty() || kv.key.contains('=') {
            return Err(SpecError::field(
                "envs",
                format!("invalid variable name {:?}", kv.key),
            ));
        }
        let value = std::str::from_utf8(&kv.value).map_err(|_| {
            SpecError::field("envs", format!("value of {:?} is not valid UTF-8", kv.key))
        })?;
        set(&mut env, &kv.key, value);
    }
    if let Some(home) = home {
        if !has(&env, "HOME") {
            set(&mut env, "HOME", home);
        }
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// The working directory: the CRI one, else the image's, else `/`. Must be absolute.
pub fn working_dir(config: &ContainerConfig, image: Option<&ImageConfig>) -> Result<String> {
    let cwd = if !config.working_dir.is_empty() {
        config.working_dir.clone()
    } else {
        image
            .and_then(|i| i.working_dir().clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string())
    };
    if !cwd.starts_with('/') {
        return Err(SpecError::field(
            "working_dir",
            format!("{cwd:?} is not an absolute path"),
        ));
    }
    Ok(cwd)
}

/// Parses a signal as images write it: `SIGTERM`, `TERM`, `sigterm`, `15`, `SIGRTMIN+3`.
pub fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')?.parse().ok()?
        };
        let n = libc::SIGRTMIN() + off;
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')?.parse().ok()?
        };
        let n = libc::SIGRTMAX() - off;
        return (n >= libc::SIGRTMIN()).then_some(n);
    }
    signal_by_name(name)
}

/// A standard signal by its name without the `SIG` prefix (`TERM`, `IOT`, `POLL`), from nix's
/// table plus the three aliases it lacks.
fn signal_by_name(name: &str) -> Option<i32> {
    let name = match name {
        "IOT" => "ABRT",
        "POLL" => "IO",
        "CLD" => "CHLD",
        other => other,
    };
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

/// The signal a CRI `Signal` enum value names (`SIGNAL_SIGRTMINPLUS3` is `SIGRTMIN+3`);
/// `None` for `SIGNAL_RUNTIME_DEFAULT` and for values the enum does not have.
pub fn cri_signal(value: i32) -> Option<i32> {
    let name = Signal::try_from(value)
        .ok()?
        .as_str_name()
        .strip_prefix("SIGNAL_")?;
    parse_signal(&name.replace("PLUS", "+").replace("MINUS", "-"))
}

/// The CRI `Signal` enum value of a signal number (the first name in the enum's order when a
/// number has aliases, e.g. `SIGABRT` over `SIGIOT`); `SIGNAL_RUNTIME_DEFAULT` for none.
pub fn signal_to_cri(signal: i32) -> i32 {
    (1..=Signal::Sigrtmax as i32)
        .find(|&v| cri_signal(v) == Some(signal))
        .unwrap_or(Signal::RuntimeDefault as i32)
}

/// The container's stop signal: the CRI config's `stop_signal` when set, else the image's
/// `StopSignal`, else `SIGTERM`. An unknown value in either is an error naming it.
pub fn stop_signal(config: &ContainerConfig, image: Option<&ImageConfig>) -> Result<i32> {
    if config.stop_signal != Signal::RuntimeDefault as i32 {
        return cri_signal(config.stop_signal).ok_or_else(|| {
            SpecError::field(
                "stop_signal",
                format!("unknown signal value {}", config.stop_signal),
            )
        });
    }
    match image
        .and_then(|i| i.stop_signal().clone())
        .filter(|s| !s.trim().is_empty())
    {
        None => Ok(libc::SIGTERM),
        Some(s) => parse_signal(&s).ok_or_else(|| {
            SpecError::field("image config StopSignal", format!("unknown signal {s:?}"))
        }),
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table tests
mod tests {
    use super::*;
    use oci_spec::image::ConfigBuilder;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        let mut b = ConfigBuilder::default();
        if !entrypoint.is_empty() {
            b = b.entrypoint(entrypoint.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        if !cmd.is_empty() {
            b = b.cmd(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        b.build().expect("image config")
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_table() {
        // (image entrypoint, image cmd, cri command, cri args, expected)
        let cases: &[(&[&str], &[&str], &[&str], &[&str], &[&str])] = &[
            (&["/ep"], &["c1"], &[], &[], &["/ep", "c1"]),
            (&["/ep"], &["c1"], &["/cmd"], &[], &["/cmd"]),
            (&["/ep"], &["c1"], &["/cmd"], &["a"], &["/cmd", "a"]),
            (&["/ep"], &["c1"], &[], &["a", "b"], &["/ep", "a", "b"]),
            (&[], &["/bin/sh"], &[], &[], &["/bin/sh"]),
            (&[], &["/bin/sh"], &[], &["/x"], &["/x"]),
            (&[], &[], &["/cmd"], &["a"], &["/cmd", "a"]),
        ];
        for (ep, cmd, ccmd, cargs, want) in cases {
            let cfg = ContainerConfig {
                command: strs(ccmd),
                args: strs(cargs),
                ..Default::default()
            };
            let img = image(ep, cmd);
            assert_eq!(
                command_line(&cfg, Some(&img)).expect("command"),
                strs(want),
                "{ep:?} {cmd:?} {ccmd:?} {cargs:?}"
            );
        }
        let cfg = ContainerConfig::default();
        assert!(matches!(
            command_line(&cfg, Some(&image(&[], &[]))),
            Err(SpecError::NoCommand)
        ));
        assert!(matches!(
            command_line(&cfg, None),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn env_rules() {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: v.into(),
        };
        let env = environment(
            &strs(&["PATH=/img/bin", "A=1", "B=2", "EMPTY"]),
            &[kv("B", "cri"), kv("C", "x=y")],
            "pod-host",
            Some("/root"),
        )
        .expect("env");
        assert_eq!(
            env,
            strs(&[
                "PATH=/img/bin",
                "A=1",
                "B=cri",
                "EMPTY=",
                "HOSTNAME=pod-host",
                "C=x=y",
                "HOME=/root"
            ])
        );
        let env = environment(
            &[],
            &[kv("HOSTNAME", "mine"), kv("HOME", "/h")],
            "pod",
            Some("/root"),
        )
        .expect("env");
        assert_eq!(
            env,
            strs(&[&format!("PATH={DEFAULT_PATH}"), "HOSTNAME=mine", "HOME=/h"])
        );
        assert!(environment(&[], &[kv("", "v")], "h", None).is_err());
        assert!(environment(&[], &[kv("A=B", "v")], "h", None).is_err());
    }

    #[test]
    fn working_dir_rules() {
        let img = ConfigBuilder::default()
            .working_dir("/img")
            .build()
            .expect("img");
        let mut cfg = ContainerConfig::default();
        assert_eq!(working_dir(&cfg, Some(&img)).expect("img"), "/img");
        assert_eq!(working_dir(&cfg, None).expect("none"), "/");
        cfg.working_dir = "/cri".into();
        assert_eq!(working_dir(&cfg, Some(&img)).expect("cri"), "/cri");
        cfg.working_dir = "relative".into();
        assert!(working_dir(&cfg, Some(&img)).is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGQUIT"), Some(3));
        assert_eq!(parse_signal("SIGWINCH"), Some(libc::SIGWINCH));
        assert_eq!(parse_signal("IOT"), Some(libc::SIGABRT));
        assert_eq!(parse_signal("SIGPOLL"), Some(libc::SIGIO));
        assert_eq!(parse_signal("SIGSTKFLT"), Some(libc::SIGSTKFLT));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(cri_signal(Signal::Sigterm as i32), Some(libc::SIGTERM));
        assert_eq!(
            cri_signal(Signal::Sigrtminplus3 as i32),
            Some(libc::SIGRTMIN() + 3)
        );
        assert_eq!(
            cri_signal(Signal::Sigrtmaxminus1 as i32),
            Some(libc::SIGRTMAX() - 1)
        );
        assert_eq!(cri_signal(Signal::RuntimeDefault as i32), None);
        assert_eq!(cri_signal(999), None);
        assert_eq!(signal_to_cri(libc::SIGKILL), Signal::Sigkill as i32);
        assert_eq!(signal_to_cri(libc::SIGABRT), Signal::Sigabrt as i32);
        assert_eq!(signal_to_cri(libc::SIGRTMAX()), Signal::Sigrtmax as i32);
        for v in 1..=Signal::Sigrtmax as i32 {
            let n = cri_signal(v).expect("every enum value names a signal");
            assert_eq!(cri_signal(signal_to_cri(n)), Some(n));
        }
        let cfg = ContainerConfig::default();
        assert_eq!(stop_signal(&cfg, None).expect("default"), 15);
        let img = ConfigBuilder::default()
            .stop_signal("SIGINT")
            .build()
            .expect("img");
        assert_eq!(stop_signal(&cfg, Some(&img)).expect("int"), 2);
        let bad = ConfigBuilder::default()
            .stop_signal("SIGFOO")
            .build()
            .expect("img");
        assert!(stop_signal(&cfg, Some(&bad)).is_err());
    }
}
