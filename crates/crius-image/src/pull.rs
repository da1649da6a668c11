//! Talking to registries: auth, manifest resolution over mirrors, layer download + unpack.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::Client;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ImageError, Result};
use crate::reference::ImageReference;
use crate::registries::Endpoint;
use crate::types::RegistryAuth;
use crate::unpack::{unpack_layer, UnpackStats};

/// A downloaded chunk handed to the unpacker.
type Bytes = Vec<u8>;

const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT: &[&str] = &[
    MEDIA_OCI_INDEX,
    MEDIA_DOCKER_LIST,
    MEDIA_OCI_MANIFEST,
    MEDIA_DOCKER_MANIFEST,
];
/// Largest manifest or config we accept.
const MAX_JSON_BLOB: i64 = 32 << 20;

/// Builds an oci-client for the given plain-HTTP hosts.
pub(crate) fn make_client(insecure_hosts: &[String]) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure_hosts.to_vec()),
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(20)),
        read_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    })
}

/// CRI AuthConfig → oci-client credentials.
pub(crate) fn to_oci_auth(auth: Option<&RegistryAuth>) -> Result<OciAuth> {
    let Some(a) = auth else {
        return Ok(OciAuth::Anonymous);
    };
    if !a.registry_token.is_empty() {
        return Ok(OciAuth::Bearer(a.registry_token.clone()));
    }
    if !a.identity_token.is_empty() {
        return Ok(OciAuth::Bearer(a.identity_token.clone()));
    }
    if !a.username.is_empty() {
        return Ok(OciAuth::Basic(a.username.clone(), a.password.clone()));
    }
    if !a.auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| ImageError::InvalidArgument(format!("auth is not base64: {e}")))?;
        let s = String::from_utf8(raw)
            .map_err(|_| ImageError::InvalidArgument("auth is not UTF-8".into()))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| ImageError::InvalidArgument("auth is not user:password".into()))?;
        return Ok(OciAuth::Basic(u.to_string(), p.to_string()));
    }
    Ok(OciAuth::Anonymous)
}

/// A content descriptor (manifests, configs, layers, index entries).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyManifest {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// An image manifest, resolved for this platform.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Digest the reference resolved to (the index's when there is one).
    pub top_digest: String,
    /// Manifests fetched: (digest, bytes), index first.
    pub manifests: Vec<(String, Vec<u8>)>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// How an endpoint failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Unreachable(String),
    NotFound(String),
    Unauthorized(String),
    /// The registry answered with an error we do not classify further.
    Registry(String),
    Other(ImageError),
}

impl Failure {
    /// One-line description for error details.
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::Unreachable(d) => format!("unreachable: {d}"),
            Failure::NotFound(d) => format!("not found: {d}"),
            Failure::Unauthorized(d) => format!("unauthorized: {d}"),
            Failure::Registry(d) => d.clone(),
            Failure::Other(e) => e.to_string(),
        }
    }
}

pub(crate) fn classify(e: OciDistributionError) -> Failure {
    match &e {
        OciDistributionError::RequestError(re) => {
            let mut msg = re.to_string();
            let mut src = std::error::Error::source(re);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            Failure::Unreachable(msg)
        }
        OciDistributionError::UnauthorizedError { .. } => Failure::Unauthorized(e.to_string()),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => Failure::Unauthorized(e.to_string()),
        OciDistributionError::ServerError { code: 404, .. } => Failure::NotFound(e.to_string()),
        OciDistributionError::ServerError {
            code: 429 | 502 | 503 | 504,
            ..
        } => Failure::Unreachable(e.to_string()),
        OciDistributionError::ImageManifestNotFoundError(_) => Failure::NotFound(e.to_string()),
        OciDistributionError::RegistryError { envelope, .. } => {
            let detail = envelope
                .errors
                .iter()
                .map(|x| format!("{:?}: {}", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; ");
            if envelope.errors.iter().any(|x| {
                matches!(
                    x.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                Failure::NotFound(detail)
            } else if envelope
                .errors
                .iter()
                .any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                Failure::Unauthorized(detail)
            } else {
                Failure::Registry(detail)
            }
        }
        _ => Failure::Registry(e.to_string()),
    }
}

/// The OCI arch name of this host.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn pick_platform(entries: &[Descriptor]) -> Option<&Descriptor> {
    let arch = host_arch();
    let matching = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    };
    // Prefer the expected variant on arm64 (v8 or none), else the first match.
    entries
        .iter()
        .filter(matching)
        .find(|d| {
            let v = d.platform.as_ref().and_then(|p| p.variant.as_deref());
            arch != "arm64" || v.is_none() || v == Some("v8")
        })
        .or_else(|| entries.iter().find(matching))
}

fn sha256_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Fetches and resolves the manifest of `oref` on one endpoint.
pub(crate) async fn resolve(
    client: &Client,
    r: &ImageReference,
    oref: &oci_client::Reference,
    auth: &OciAuth,
) -> std::result::Result<Resolved, Failure> {
    let unsupported = |reason: String| {
        Failure::Other(ImageError::Unsupported {
            reference: r.to_string(),
            reason,
        })
    };
    let (body, digest) = client
        .pull_manifest_raw(oref, auth, ACCEPT)
        .await
        .map_err(classify)?;
    let body = body.to_vec();
    let top_digest = match &r.digest {
        Some(want) => {
            let got = sha256_of(&body);
            if want.starts_with("sha256:") && &got != want {
                return Err(Failure::Other(ImageError::DigestMismatch {
                    blob: want.clone(),
                    actual: got,
                    reference: r.to_string(),
                }));
            }
            want.clone()
        }
        None => digest,
    };
    let parsed: AnyManifest = serde_json::from_slice(&body)
        .map_err(|e| unsupported(format!("manifest {top_digest} is not valid JSON: {e}")))?;
    let mut manifests = vec![(top_digest.clone(), body)];
    let manifest = if let Some(entries) = &parsed.manifests {
        let chosen = pick_platform(entries).ok_or_else(|| {
            let have: Vec<String> = entries
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect();
            unsupported(format!(
                "no linux/{} entry in index {top_digest} (has: {})",
                host_arch(),
                have.join(", ")
            ))
        })?;
        if chosen.size > MAX_JSON_BLOB {
            return Err(unsupported(format!("manifest {} too large", chosen.digest)));
        }
        let child_ref = oref.clone_with_digest(chosen.digest.clone());
        let (body, _) = client
            .pull_manifest_raw(&child_ref, auth, ACCEPT)
            .await
            .map_err(classify)?;
        let body = body.to_vec();
        let got = sha256_of(&body);
        if got != chosen.digest {
            return Err(Failure::Other(ImageError::DigestMismatch {
                blob: chosen.digest.clone(),
                actual: got,
                reference: r.to_string(),
            }));
        }
        let m: AnyManifest = serde_json::from_slice(&body).map_err(|e| {
            unsupported(format!("manifest {} is not valid JSON: {e}", chosen.digest))
        })?;
        manifests.push((chosen.digest.clone(), body));
        m
    } else {
        parsed
    };
    if manifest.schema_version != Some(2) {
        return Err(unsupported(format!(
            "manifest schema version {:?} (only 2 is supported)",
            manifest.schema_version
        )));
    }
    if let Some(mt) = &manifest.media_type {
        if mt != MEDIA_OCI_MANIFEST && mt != MEDIA_DOCKER_MANIFEST {
            return Err(unsupported(format!("manifest media type {mt}")));
        }
    }
    let (Some(config), Some(layers)) = (manifest.config, manifest.layers) else {
        return Err(unsupported("manifest without config or layers".into()));
    };
    Ok(Resolved {
        top_digest,
        manifests,
        config,
        layers,
    })
}

/// Downloads a small JSON blob (the config), verified against its digest.
pub(crate) async fn fetch_json_blob(
    client: &Client,
    oref: &oci_client::Reference,
    desc: &Descriptor,
    r: &ImageReference,
) -> std::result::Result<Vec<u8>, Failure> {
    if desc.size > MAX_JSON_BLOB {
        return Err(Failure::Other(ImageError::Unsupported {
            reference: r.to_string(),
            reason: format!("config {} too large ({} bytes)", desc.digest, desc.size),
        }));
    }
    let mut buf: Vec<u8> = Vec::with_capacity(desc.size.max(0) as usize);
    let od = oci_desc(desc);
    match client.pull_blob(oref, &od, &mut buf).await {
        Ok(()) => {}
        Err(OciDistributionError::DigestError(e)) => {
            return Err(Failure::Other(ImageError::DigestMismatch {
                blob: desc.digest.clone(),
                actual: e.to_string(),
                reference: r.to_string(),
            }))
        }
        Err(e) => return Err(classify(e)),
    }
    let got = sha256_of(&buf);
    if desc.digest.starts_with("sha256:") && got != desc.digest {
        return Err(Failure::Other(ImageError::DigestMismatch {
            blob: desc.digest.clone(),
            actual: got,
            reference: r.to_string(),
        }));
    }
    Ok(buf)
}

fn oci_desc(d: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        ..Default::default()
    }
}

/// Reads chunks sent from the async download task.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.blocking_recv() {
                Some(b) => {
                    self.cur = b;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Decompresses (gzip, zstd or none, by magic bytes), unpacks into `dest`, and returns
/// the diff ID (digest of the uncompressed tar) with the stats.
pub(crate) fn decompress_and_unpack<R: Read>(
    reader: R,
    dest: &Path,
    layer: &str,
) -> Result<(String, UnpackStats)> {
    let mut br = std::io::BufReader::with_capacity(256 * 1024, reader);
    let magic = {
        use std::io::BufRead;
        let buf = br.fill_buf().map_err(|e| ImageError::HostileLayer {
            layer: layer.to_string(),
            entry: String::new(),
            reason: format!("read: {e}"),
        })?;
        buf.get(..4).map(|m| m.to_vec()).unwrap_or_default()
    };
    let decoded: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let d =
            zstd::stream::read::Decoder::with_buffer(br).map_err(|e| ImageError::HostileLayer {
                layer: layer.to_string(),
                entry: String::new(),
                reason: format!("zstd: {e}"),
            })?;
        Box::new(d)
    } else {
        Box::new(br)
    };
    let mut hr = HashingReader {
        inner: decoded,
        hasher: Sha256::new(),
    };
    let stats = unpack_layer(&mut hr, dest, layer)?;
    // Hash the tar's trailing padding too.
    std::io::copy(&mut hr, &mut std::io::sink()).map_err(|e| ImageError::HostileLayer {
        layer: layer.to_string(),
        entry: String::new(),
        reason: format!("read after end of archive: {e}"),
    })?;
    Ok((
        format!("sha256:{}", hex::encode(hr.hasher.finalize())),
        stats,
    ))
}

/// Downloads layer `desc` and unpacks it into `dest` (an empty dir) while it streams in.
/// Checks the compressed digest and the diff ID. Returns the unpack stats.
pub(crate) async fn fetch_and_unpack_layer(
    client: &Client,
    oref: &oci_client::Reference,
    desc: &Descriptor,
    diff_id: &str,
    dest: &Path,
    r: &ImageReference,
) -> std::result::Result<UnpackStats, Failure> {
    let od = oci_desc(desc);
    let mut stream = client.pull_blob_stream(oref, &od).await.map_err(classify)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    let dest_owned = dest.to_path_buf();
    let layer_name = desc.digest.clone();
    let unpack = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        };
        decompress_and_unpack(reader, &dest_owned, &layer_name)
    });
    // oci-client's stream hashes what it yields and ends with a `DigestError` instead of its
    // end when the blob does not match `desc.digest` (sha256, sha384 or sha512; any other
    // algorithm fails before the download): a stream that ends cleanly was verified. We do not
    // hash the compressed bytes a second time.
    let mut download_err: Option<Failure> = None;
    let mut receiver_alive = true;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                if receiver_alive && tx.send(chunk.to_vec()).await.is_err() {
                    // The unpacker stopped (it failed); keep hashing to report the right error.
                    receiver_alive = false;
                }
            }
            Err(e) => {
                let digest_err = e
                    .get_ref()
                    .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>());
                download_err = Some(if digest_err {
                    Failure::Other(ImageError::DigestMismatch {
                        blob: desc.digest.clone(),
                        actual: e.to_string(),
                        reference: r.to_string(),
                    })
                } else {
                    Failure::Unreachable(format!("download {}: {e}", desc.digest))
                });
                break;
            }
        }
    }
    drop(tx);
    let unpacked = unpack
        .await
        .map_err(|e| Failure::Other(ImageError::Internal(format!("unpack task: {e}"))))?;
    if let Some(f) = download_err {
        return Err(f);
    }
    let (got_diff, stats) = unpacked.map_err(Failure::Other)?;
    if got_diff != diff_id {
        return Err(Failure::Other(ImageError::DigestMismatch {
            blob: format!("{} (uncompressed, diff ID {diff_id})", desc.digest),
            actual: got_diff,
            reference: r.to_string(),
        }));
    }
    Ok(stats)
}

/// The oci-client reference of `r` on endpoint `ep`.
pub(crate) fn endpoint_ref(r: &ImageReference, ep: &Endpoint) -> oci_client::Reference {
    r.to_oci(&ep.registry, &ep.repository)
}
