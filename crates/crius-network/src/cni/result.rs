//! CNI results: parsing plugin output and extracting pod IPs.

use std::net::IpAddr;

use serde_json::Value;

use super::PodNetworkStatus;
use crate::{Error, Result};

/// Parses an ADD's stdout: `None` if empty (the previous result stands), else a JSON object.
pub(crate) fn parse_output(pod: &str, plugin: &str, out: &[u8]) -> Result<Option<Value>> {
    if out.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = |msg: String| Error::BadResult {
        pod: pod.to_string(),
        plugin: plugin.to_string(),
        msg,
    };
    match serde_json::from_slice::<Value>(out) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        Ok(_) => Err(bad("not a JSON object".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Pod IPs (v4 first, then v6) and MAC from a result of any version from 0.1.0 to 1.0.0.
///
/// 0.3.0 and later: `ips[].address` (CIDR), counted only if `ips[].interface` is absent or
/// points at an interface with a `sandbox` (the pod's side, not the host's bridge or veth).
/// 0.1.0/0.2.0: `ip4.ip`, `ip6.ip`.
pub(crate) fn status(
    pod: &str,
    network: &str,
    if_name: &str,
    result: &Value,
) -> Result<PodNetworkStatus> {
    let bad = |msg: String| Error::BadResult {
        pod: pod.to_string(),
        plugin: format!("network {network}"),
        msg,
    };
    let empty = Vec::new();
    let interfaces = result
        .get("interfaces")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let in_sandbox = |iface: &Value| {
        iface
            .get("sandbox")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let mut cidrs = Vec::new();
    if let Some(ips) = result.get("ips").and_then(Value::as_array) {
        for ip in ips {
            if let Some(idx) = ip.get("interface").and_then(Value::as_u64) {
                let idx = usize::try_from(idx).unwrap_or(usize::MAX);
                if !interfaces.get(idx).is_some_and(in_sandbox) {
                    continue;
                }
            }
            match ip.get("address").and_then(Value::as_str) {
                Some(a) => cidrs.push(a),
                None => return Err(bad(format!("ips entry without address: {ip}"))),
            }
        }
    } else {
        for key in ["ip4", "ip6"] {
            if let Some(a) = result
                .get(key)
                .and_then(|v| v.get("ip"))
                .and_then(Value::as_str)
            {
                cidrs.push(a);
            }
        }
    }
    let mut ips = Vec::with_capacity(cidrs.len());
    for cidr in cidrs {
        let addr = cidr.split('/').next().unwrap_or(cidr);
        let ip: IpAddr = addr
            .parse()
            .map_err(|e| bad(format!("address {cidr:?}: {e}")))?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips.sort_by_key(|ip| ip.is_ipv6()); // stable: keeps the plugin's order within a family
    let mac = interfaces
        .iter()
        .find(|i| in_sandbox(i) && i.get("name").and_then(Value::as_str) == Some(if_name))
        .and_then(|i| i.get("mac"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(PodNetworkStatus {
        network: network.to_string(),
        interface: if_name.to_string(),
        ips,
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_result_uses_sandbox_interfaces_v4_first() {
        let r = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "br0", "mac": "aa:aa:aa:aa:aa:aa"},
                {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
                {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/x"}
            ],
            "ips": [
                {"address": "fd00::5/64", "interface": 2},
                {"address": "10.1.0.1/24", "interface": 0},
                {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2}
            ]
        });
        let st = status("p", "n", "eth0", &r).unwrap();
        assert_eq!(
            st.ips,
            vec![
                "10.1.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
        assert_eq!(st.mac.as_deref(), Some("cc:cc:cc:cc:cc:cc"));
    }

    #[test]
    fn v04_and_v02_results() {
        let r = json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.2.0.7/16"}]});
        assert_eq!(
            status("p", "n", "eth0", &r).unwrap().ips,
            vec!["10.2.0.7".parse::<IpAddr>().unwrap()]
        );
        let r = json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.3.0.2/24"}, "ip6": {"ip": "fd01::2/64"}});
        assert_eq!(status("p", "n", "eth0", &r).unwrap().ips.len(), 2);
        let r = json!({"ips": [{"address": "nonsense/24"}]});
        assert!(status("p", "n", "eth0", &r).is_err());
        assert!(status("p", "n", "eth0", &Value::Null)
            .unwrap()
            .ips
            .is_empty());
    }

    #[test]
    fn output_parsing() {
        assert_eq!(parse_output("p", "x", b" \n").unwrap(), None);
        assert!(parse_output("p", "x", b"[1]").is_err());
        assert!(parse_output("p", "x", b"{").is_err());
        assert!(parse_output("p", "x", b"{\"ips\":[]}").unwrap().is_some());
    }
}
