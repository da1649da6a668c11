//! Container lifecycle benchmark (not a test; needs root, runc, conmon, crius-monitor).
//!
//! `cargo bench -p crius-oci --bench lifecycle` (set `CRIUS_MONITOR` to pick the monitor binary;
//! default: target/release/crius-monitor, else target/debug/crius-monitor; `ITERS` to change
//! the sample count from 20).
//!
//! Prints markdown tables: medians of create -> start -> stop -> delete through crius-monitor,
//! through conmon, and of raw `runc run -d` + `runc delete -f`; exec_sync against raw
//! `runc exec`; and the RSS/PSS of one idle monitor of each kind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crius_oci::{CreateOptions, MonitorConfig, Runtime, RuntimeHandler};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn monitor_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CRIUS_MONITOR") {
        return PathBuf::from(p);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let release = target.join("release/crius-monitor");
    if release.exists() {
        release
    } else {
        target.join("debug/crius-monitor")
    }
}

struct Phases {
    create: Vec<Duration>,
    start: Vec<Duration>,
    stop: Vec<Duration>,
    delete: Vec<Duration>,
    total: Vec<Duration>,
}

fn runtime(base: &Path, runtime: &str, monitor: &Path) -> Runtime {
    let handler = RuntimeHandler::new(runtime, format!("/usr/bin/{runtime}"), base.join("root"));
    let mon = MonitorConfig::new(monitor, base.join("exits"), base.join("s"));
    Runtime::new(handler, mon).expect("runtime")
}

async fn lifecycle(base: &Path, rt: &Runtime, iters: usize, tag: &str) -> Phases {
    let mut p = Phases {
        create: vec![],
        start: vec![],
        stop: vec![],
        delete: vec![],
        total: vec![],
    };
    let bundle =
        crius_testutil::write_bundle(&base.join(format!("bundle-{tag}")), &["sleep", "1000"])
            .expect("bundle");
    for i in 0..iters + 1 {
        let id = crius_testutil::unique_id(&format!("bench-{tag}"));
        let opts = CreateOptions::new(
            &id,
            &bundle,
            base.join(format!("{id}.log")),
            base.join("persist").join(&id),
        );
        let t0 = Instant::now();
        rt.create(&opts).await.expect("create");
        let t1 = Instant::now();
        rt.start(&id).await.expect("start");
        let t2 = Instant::now();
        rt.stop(&id, Duration::ZERO, None).await.expect("stop");
        let t3 = Instant::now();
        rt.delete(&id).await.expect("delete");
        let t4 = Instant::now();
        let _ = std::fs::remove_dir_all(base.join("persist").join(&id));
        let _ = std::fs::remove_file(base.join(format!("{id}.log")));
        for f in ["pidfile", "ctl", "winsz", "attach"] {
            let _ = std::fs::remove_file(bundle.join(f));
        }
        if i == 0 {
            continue; // warm-up
        }
        p.create.push(t1 - t0);
        p.start.push(t2 - t1);
        p.stop.push(t3 - t2);
        p.delete.push(t4 - t3);
        p.total.push(t4 - t0);
    }
    p
}

fn raw_runc(base: &Path, iters: usize) -> Vec<Duration> {
    let bundle =
        crius_testutil::write_bundle(&base.join("bundle-raw"), &["sleep", "1000"]).expect("bundle");
    let root = base.join("rawroot");
    let mut v = vec![];
    for i in 0..iters + 1 {
        let id = crius_testutil::unique_id("bench-raw");
        let t0 = Instant::now();
        let ok = Command::new("/usr/bin/runc")
            .arg("--root")
            .arg(&root)
            .args(["run", "-d", "-b"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("runc run")
            .success();
        assert!(ok, "runc run -d failed");
        let ok = Command::new("/usr/bin/runc")
            .arg("--root")
            .arg(&root)
            .args(["delete", "-f", &id])
            .status()
            .expect("runc delete")
            .success();
        assert!(ok, "runc delete -f failed");
        if i > 0 {
            v.push(t0.elapsed());
        }
    }
    v
}

async fn exec_compare(base: &Path, rt: &Runtime, iters: usize) -> (Duration, Duration) {
    let bundle = crius_testutil::write_bundle(&base.join("bundle-exec"), &["sleep", "1000"])
        .expect("bundle");
    let id = crius_testutil::unique_id("bench-exec");
    let persist = base.join("persist").join(&id);
    let opts = CreateOptions::new(&id, &bundle, base.join("exec.log"), &persist);
    rt.create(&opts).await.expect("create");
    rt.start(&id).await.expect("start");
    let cmd = vec!["true".to_string()];
    let mut ours = vec![];
    let mut raw = vec![];
    for i in 0..iters + 1 {
        let t = Instant::now();
        let out = rt
            .exec_sync(&id, &cmd, Some(Duration::from_secs(30)))
            .await
            .expect("exec");
        assert_eq!(out.exit_code, 0);
        let d1 = t.elapsed();
        let t = Instant::now();
        let ok = Command::new("/usr/bin/runc")
            .arg("--root")
            .arg(base.join("root"))
            .args(["exec", &id, "true"])
            .stdin(Stdio::null())
            .status()
            .expect("runc exec")
            .success();
        assert!(ok);
        let d2 = t.elapsed();
        if i > 0 {
            ours.push(d1);
            raw.push(d2);
        }
    }
    rt.delete(&id).await.expect("delete");
    (median(&mut ours), median(&mut raw))
}

/// (Rss, Pss) in KiB from /proc/<pid>/smaps_rollup.
fn rss_pss(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps_rollup");
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

async fn idle_memory(base: &Path, rt: &Runtime, tag: &str) -> (u64, u64) {
    let bundle =
        crius_testutil::write_bundle(&base.join(format!("bundle-mem-{tag}")), &["sleep", "1000"])
            .expect("bundle");
    let id = crius_testutil::unique_id(&format!("bench-mem-{tag}"));
    let opts = CreateOptions::new(
        &id,
        &bundle,
        base.join(format!("{id}.log")),
        base.join("persist").join(&id),
    );
    let created = rt.create(&opts).await.expect("create");
    rt.start(&id).await.expect("start");
    let pid = created.monitor_pid.expect("monitor pid");
    let m = rss_pss(pid);
    rt.delete(&id).await.expect("delete");
    m
}

#[tokio::main]
async fn main() {
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let base = tempfile::Builder::new()
        .prefix("crius-bench-")
        .tempdir()
        .expect("tempdir");
    let crius_mon = monitor_path();
    let conmon = PathBuf::from("/usr/bin/conmon");
    println!(
        "monitor binaries: {} / {}",
        crius_mon.display(),
        conmon.display()
    );
    println!("samples per row: {iters} (after one warm-up)\n");

    println!("| path | create | start | stop (kill) | delete | total | vs raw runc |");
    println!("|---|---|---|---|---|---|---|");
    let mut raw = raw_runc(base.path(), iters);
    let raw_m = median(&mut raw);
    for runtime_name in ["runc", "crun"] {
        for (name, mon) in [("crius-monitor", &crius_mon), ("conmon", &conmon)] {
            let dir = base.path().join(format!("{runtime_name}-{name}"));
            std::fs::create_dir_all(&dir).expect("dir");
            let rt = runtime(&dir, runtime_name, mon);
            let mut p = lifecycle(&dir, &rt, iters, name).await;
            let total = median(&mut p.total);
            println!(
                "| {runtime_name} + {name} | {} | {} | {} | {} | {} | {:.2}x |",
                ms(median(&mut p.create)),
                ms(median(&mut p.start)),
                ms(median(&mut p.stop)),
                ms(median(&mut p.delete)),
                ms(total),
                total.as_secs_f64() / raw_m.as_secs_f64()
            );
        }
    }
    println!(
        "| raw `runc run -d` + `runc delete -f` | | | | | {} | 1.00x |",
        ms(raw_m)
    );

    let dir = base.path().join("exec");
    std::fs::create_dir_all(&dir).expect("dir");
    let rt = runtime(&dir, "runc", &crius_mon);
    let (ours, raw) = exec_compare(&dir, &rt, iters).await;
    println!("\n| exec of `true` (runc) | median ms | ratio |");
    println!("|---|---|---|");
    println!(
        "| Runtime::exec_sync (direct runc exec, pid file, capped pipes) | {} | {:.2}x |",
        ms(ours),
        ours.as_secs_f64() / raw.as_secs_f64()
    );
    println!("| raw `runc exec` | {} | 1.00x |", ms(raw));

    println!("\n| idle monitor (runc, `sleep`) | RSS KiB | PSS KiB |");
    println!("|---|---|---|");
    for (name, mon) in [("crius-monitor", &crius_mon), ("conmon", &conmon)] {
        let dir = base.path().join(format!("mem-{name}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let rt = runtime(&dir, "runc", mon);
        let (rss, pss) = idle_memory(&dir, &rt, name).await;
        println!("| {name} | {rss} | {pss} |");
    }
}
