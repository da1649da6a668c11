//! Benchmark: pull + unpack of a multi-layer image (≥ 50 MiB) from the local registry.
//!
//! ```sh
//! bash /work/shared/testenv/registry.sh start
//! cargo run --release -p crius-image --example pull_bench -- [runs=5] [registry=127.0.0.1:5000]
//! ```
//!
//! Setup pushes `REGISTRY/crius-bench/random:v1` once (deterministic content, so re-runs push
//! nothing new): five 10 MiB layers of random bytes in 1 MiB files, one layer of 4000 small
//! files and one of 2 MiB text, gzip. Each run pulls it into a fresh store; the median is
//! printed. Compare with e.g.
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
    client
        .auth(&r, &auth, oci_client::RegistryOperation::Push)
        .await?;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut total = 0u64;
    for tar in layers() {
        diff_ids.push(sha256(&tar));
        let blob = gzip(&tar);
        let d = sha256(&blob);
        total += blob.len() as u64;
        if !client.blob_exists(&r, &d).await? {
            client.push_blob(&r, blob.clone(), &d).await?;
        }
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": blob.len()}));
    }
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
