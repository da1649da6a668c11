//! Benchmark: pull + unpack of a multi-layer image (≥ 50 MiB) from the local registry.
//!
//! ```sh
//! bash /work/shared/testenv/registry.sh start
//! cargo run --release -p crius-image --example pull_bench -- [runs=5] [registry=127.0.0.1:5000] [split]
//! ```
//!
//! With `split`, each run instead times the steps apart (medians printed): download of the
//! 7 blobs (3 at a time, as a pull does), sha256 of the compressed blobs, gzip decode, sha256
//! of the tars, unpack of the plain tars (tar parse + file system work, no gzip) and the whole
//! decompress + unpack from memory (what a pull does after download, without the network).
//!
//! Setup pushes `REGISTRY/crius-bench/random:v1` once: five 10 MiB layers of random bytes in
//! 1 MiB files, one layer of 4000 small files and one of 2 MiB text, gzip. The content is
//! deterministic; when the tag already holds it (compressed by whichever gzip backend flate2
//! had then), nothing is pushed, so every run pulls the same bytes. Each run pulls it into a
//! fresh store; the median is printed. Compare with e.g.
//! `skopeo copy --src-tls-verify=false docker://REGISTRY/crius-bench/random:v1 oci:/tmp/x`
//! or `ctr -n bench image pull --plain-http REGISTRY/crius-bench/random:v1`.

use std::io::Write;
use std::time::Instant;

use crius_image::{ImageService, ImageServiceConfig};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

fn sha256(d: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(d)))
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).expect("tar append");
    }
    b.into_inner().expect("tar finish")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn layers() -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut out = Vec::new();
    for l in 0..5 {
        let files = (0..10)
            .map(|i| {
                let mut v = vec![0u8; 1 << 20];
                rng.fill_bytes(&mut v);
                (format!("data/l{l}/blob{i}"), v)
            })
            .collect::<Vec<_>>();
        out.push(tar_of(&files));
    }
    let small = (0..4000)
        .map(|i| {
            (
                format!("small/d{}/f{i}", i % 40),
                format!("file {i}\n").repeat(8).into_bytes(),
            )
        })
        .collect::<Vec<_>>();
    out.push(tar_of(&small));
    let text = (0..40_000)
        .map(|i| format!("line {i} of some text that compresses\n"))
        .collect::<String>();
    out.push(tar_of(&[("text/big.txt".to_string(), text.into_bytes())]));
    out
}

async fn push(reference: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let r: oci_client::Reference = reference.parse()?;
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![r.registry().to_string()]),
        ..Default::default()
    });
    let auth = RegistryAuth::Anonymous;
    let tars = layers();
    let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let cd = sha256(&cfg);
    // Same content already there (whatever gzip made its blobs: flate2's backends compress
    // differently): keep it, so that every benchmark pulls the same bytes.
    if let Ok((m, _)) = client.pull_image_manifest(&r, &auth).await {
        if m.config.digest == cd {
            return Ok(m.layers.iter().map(|l| l.size.max(0) as u64).sum());
        }
    }
    client
        .auth(&r, &auth, oci_client::RegistryOperation::Push)
        .await?;
    let mut descs = Vec::new();
    let mut total = 0u64;
    for tar in tars {
        let blob = gzip(&tar);
        let d = sha256(&blob);
        total += blob.len() as u64;
        if !client.blob_exists(&r, &d).await? {
            client.push_blob(&r, blob.clone(), &d).await?;
        }
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": blob.len()}));
    }
    client.push_blob(&r, cfg.clone(), &cd).await?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
        "layers": descs,
    }))?;
    client
        .push_manifest_raw(
            &r,
            manifest,
            http::HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
        )
        .await?;
    Ok(total)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let registry = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:5000".into());
    let reference = format!("{registry}/crius-bench/random:v1");
    let split = args.get(3).is_some_and(|a| a == "split");

    let t = Instant::now();
    let bytes = push(&reference).await?;
    println!(
        "setup: {reference} ready ({:.1} MiB compressed, 7 layers) in {:.2}s",
        bytes as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );

    let work = tempfile::Builder::new().prefix("crius-bench-").tempdir()?;
    let conf = work.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!("[[registry]]\nlocation = \"{registry}\"\ninsecure = true\n"),
    )?;
    if split {
        return split_runs(&reference, runs, work.path()).await;
    }
    let mut times = Vec::new();
    for i in 0..runs {
        let root = work.path().join(format!("store-{i}"));
        let mut cfg = ImageServiceConfig::new(&root);
        cfg.registries_conf = Some(conf.clone());
        let svc = ImageService::open(cfg).await?;
        let t = Instant::now();
        let info = svc.pull(&reference, None).await?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "run {i}: pull+unpack {secs:.3}s ({:.0} MiB/s) id {}",
            bytes as f64 / (1 << 20) as f64 / secs,
            &info.id[..19]
        );
        times.push(secs);
        std::fs::remove_dir_all(&root)?;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    println!(
        "crius-image pull+unpack median of {runs}: {median:.3}s ({:.0} MiB/s)",
        bytes as f64 / (1 << 20) as f64 / median
    );
    Ok(())
}

/// `chattr +T`: ext4 places new subdirectories in the least used block group.
fn set_top_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
    let f = std::fs::File::open(dir)?;
    let flags = ioctl_getflags(&f)?;
    ioctl_setflags(&f, flags | IFlags::TOPDIR)?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times download, hashing, gzip decode and unpack apart (see the module docs).
async fn split_runs(
    reference: &str,
    runs: usize,
    work: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use futures::StreamExt;
    use std::io::Read;
    let r: oci_client::Reference = reference.parse()?;
    let steps = [
        "download (3 at a time)",
        "sha256 compressed",
        "gzip decode",
        "sha256 tar",
        "unpack plain tars (all layers)",
        "unpack small-files layer alone",
        "same, dir without the +T flag",
        "decompress + unpack from memory",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    for run in 0..runs {
        // A fresh client each run: new connections, as a new pull would make.
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![r.registry().to_string()]),
            ..Default::default()
        });
        let (manifest, _) = client
            .pull_image_manifest(&r, &RegistryAuth::Anonymous)
            .await?;
        let start = Instant::now();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(3));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, l) in manifest.layers.iter().enumerate() {
            let (client, r, l, sem) = (client.clone(), r.clone(), l.clone(), sem.clone());
            tasks.spawn(async move {
                let _p = sem.acquire_owned().await.expect("semaphore");
                let mut s = client.pull_blob_stream(&r, &l).await?;
                let mut buf = Vec::with_capacity(l.size as usize);
                while let Some(c) = s.stream.next().await {
                    buf.extend_from_slice(&c?);
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((i, buf))
            });
        }
        let mut blobs = vec![Vec::new(); manifest.layers.len()];
        while let Some(res) = tasks.join_next().await {
            let (i, b) = res?.map_err(|e| e.to_string())?;
            blobs[i] = b;
        }
        t[0].push(start.elapsed().as_secs_f64());
        let s = Instant::now();
        for b in &blobs {
            std::hint::black_box(Sha256::digest(b));
        }
        t[1].push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        let tars = blobs
            .iter()
            .map(|b| {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&b[..]).read_to_end(&mut out)?;
                Ok(out)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        t[2].push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        for b in &tars {
            std::hint::black_box(Sha256::digest(b));
        }
        t[3].push(s.elapsed().as_secs_f64());
        let unpack_all = |what: &[Vec<u8>], tag: &str| -> Result<f64, Box<dyn std::error::Error>> {
            let base = work.join(format!("{tag}-{run}"));
            std::fs::create_dir(&base)?;
            if tag != "plain" {
                // As the store does for its unpack dir (see crius-image's store.rs).
                set_top_dir(&base)?;
            }
            let s = Instant::now();
            for b in what {
                // Random names, as the store's temp dirs have: ext4 hashes the name of a
                // directory made under a +T one to pick where its search for a group starts.
                let d = tempfile::Builder::new()
                    .prefix("layer-")
                    .tempdir_in(&base)?;
                crius_image::unpack_layer_blob(&b[..], d.path(), "bench")?;
                let _ = d.keep();
            }
            let secs = s.elapsed().as_secs_f64();
            std::fs::remove_dir_all(&base)?;
            Ok(secs)
        };
        t[4].push(unpack_all(&tars, "tar")?);
        t[5].push(unpack_all(&tars[5..6], "small")?);
        t[6].push(unpack_all(&tars[5..6], "plain")?);
        t[7].push(unpack_all(&blobs, "gz")?);
        println!(
            "run {run}: {}",
            t.iter()
                .map(|v| format!("{:.0}", v[run] * 1000.0))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    for (name, v) in steps.iter().zip(t) {
        println!("{name:>34}: median {:>6.0} ms", median(v) * 1000.0);
    }
    Ok(())
}
