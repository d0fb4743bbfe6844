//! The configuration database: bridges, ports with their ofports, and flows, in one JSON file.
//!
//! Durability rule: a command is acknowledged only after the configuration it produced is on
//! disk. Each save writes a temporary file beside the database, `fsync`s it, renames it over
//! the database and `fsync`s the directory, so after a crash (even SIGKILL or power loss) the
//! file holds either the previous or the new configuration, never a mix. If the save fails,
//! the command fails and the running configuration is left as it was.
//!
//! Flows are stored as the text `swctl dump-flows` prints (without counters): the same parser
//! reads them back, so the file is readable and editable by an operator, and a database written
//! by one version is read by the next through the stable flow language rather than through
//! internal structures. Timeouts restart from zero when a flow is restored.
//!
//! A database that cannot be read or parsed stops the daemon with an error naming the file and
//! the problem; the file is left untouched for the operator to inspect.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the file format.
pub const FORMAT: u32 = 1;

/// The whole persistent configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// File format version ([`FORMAT`]).
    pub format: u32,
    /// Bridges, sorted by name.
    pub bridges: Vec<BridgeConfig>,
    /// Conntrack zone settings (`set-ct-zone`), by zone; absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ct_zones: Vec<CtZoneConfig>,
}

/// Settings of one conntrack zone, as `set-ct-zone` took them (`limit=10`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtZoneConfig {
    /// Zone.
    pub zone: u16,
    /// `key=value` items, applied in order.
    pub settings: Vec<String>,
}

/// One bridge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeConfig {
    /// Name.
    pub name: String,
    /// Ports, by ofport.
    pub ports: Vec<PortConfig>,
    /// Flows in `add-flow` syntax, in dump order.
    pub flows: Vec<String>,
    /// Floating IPs (`add-fip`), by address; absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fips: Vec<FipConfig>,
    /// Shared-address SNAT pools (`add-snat-pool`), by name; absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snat_pools: Vec<SnatPoolConfig>,
}

/// One SNAT pool, as `add-snat-pool` took it (checked again at start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnatPoolConfig {
    /// Pool name.
    pub name: String,
    /// The public address.
    pub public: std::net::Ipv4Addr,
    /// The inside prefix, `A.B.C.D/LEN`.
    pub inside: String,
    /// The port range, `LO-HI`.
    pub ports: String,
}

/// One floating IP, as `add-fip` took it. Ownership is not stored: it is claimed again
/// through the claim store at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FipConfig {
    /// The floating IP.
    pub fip: std::net::Ipv4Addr,
    /// The fixed IP.
    pub fixed: std::net::Ipv4Addr,
    /// The MAC ARP is answered with (`aa:bb:cc:dd:ee:ff`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// How this node carries it.
    pub mode: super::ownership::FipMode,
}

/// One port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortConfig {
    /// Interface name.
    pub iface: String,
    /// OpenFlow port number.
    pub ofport: u32,
    /// Requested kind: "auto", "afxdp", "afpacket" or "vxlan".
    pub kind: String,
    /// Options of a VXLAN port (`local`, `remote`, `key`, `dst_port`, as `swctl add-port`
    /// takes them); absent for other kinds and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<crate::port::vxlan::VxlanConfig>,
}

/// Why the database could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Reading failed.
    #[error("cannot read configuration database {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The content is not a configuration of a format we know.
    #[error("configuration database {path} is corrupt or unreadable ({reason}); it was left untouched — fix or move it away, then restart")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing failed.
    #[error("cannot write configuration database {path}: {source}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Read the database. `Ok(None)` if the file does not exist (first start).
pub fn load(path: &Path) -> Result<Option<Config>, DbError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DbError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let corrupt = |reason: String| DbError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let config: Config = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if config.format != FORMAT {
        return Err(corrupt(format!(
            "format {} (this vswitchd reads format {FORMAT})",
            config.format
        )));
    }
    Ok(Some(config))
}

/// Write the database atomically (temp file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, config: &Config) -> Result<(), DbError> {
    let werr = |source| DbError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(werr)?;
    let mut text = serde_json::to_string_pretty(config).map_err(|e| werr(e.into()))?;
    text.push('\n');
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into());
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vswitch-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample() -> Config {
        Config {
            format: FORMAT,
            bridges: vec![BridgeConfig {
                name: "br0".into(),
                ports: vec![PortConfig {
                    iface: "veth0".into(),
                    ofport: 1,
                    kind: "auto".into(),
                    vxlan: None,
                }],
                flows: vec!["table=20, priority=5,ip actions=output:1".into()],
                fips: vec![FipConfig {
                    fip: "192.168.111.223".parse().unwrap(),
                    fixed: "88.88.88.4".parse().unwrap(),
                    mac: Some("fa:16:3e:4b:eb:3c".into()),
                    mode: super::super::ownership::FipMode::Centralized,
                }],
                snat_pools: vec![SnatPoolConfig {
                    name: "gw".into(),
                    public: "203.0.113.7".parse().unwrap(),
                    inside: "10.1.0.0/24".into(),
                    ports: "1024-65535".into(),
                }],
            }],
            ct_zones: vec![CtZoneConfig {
                zone: 5,
                settings: vec!["limit=10".into(), "profile=liberal".into()],
            }],
        }
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let d = tmpdir("rt");
        let p = d.join("conf.db");
        assert_eq!(load(&p).unwrap(), None, "missing file = first start");
        save(&p, &sample()).unwrap();
        assert_eq!(load(&p).unwrap(), Some(sample()));
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("conf.db")]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn files_without_fips_still_load() {
        let d = tmpdir("nofips");
        let p = d.join("conf.db");
        std::fs::write(
            &p,
            r#"{"format": 1, "bridges": [{"name": "br0", "ports": [], "flows": []}]}"#,
        )
        .unwrap();
        let c = load(&p).unwrap().unwrap();
        assert!(c.bridges[0].fips.is_empty());
        // And a bridge without FIPs is saved without the key (older readers are unaffected).
        save(&p, &c).unwrap();
        assert!(!std::fs::read_to_string(&p).unwrap().contains("fips"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn corrupt_file_is_an_error_and_is_left_in_place() {
        let d = tmpdir("corrupt");
        let p = d.join("conf.db");
        std::fs::write(&p, "{\"format\": 1, \"bridges\": [ oops").unwrap();
        let e = load(&p).unwrap_err();
        assert!(matches!(e, DbError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("left untouched"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"format\": 1, \"bridges\": [ oops"
        );
        std::fs::write(&p, "{\"format\": 99, \"bridges\": []}").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("format 99"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
