//! The control socket: a root-only Unix socket speaking JSON lines (see `control::protocol`).

use super::handlers::Switch;
use control::protocol::{ErrorKind, ErrorReply, Request, Response, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another daemon answers on the socket.
    #[error("another vswitchd is already listening on {0}")]
    InUse(PathBuf),
    /// Filesystem or bind failure.
    #[error("cannot create control socket {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The longest request line accepted (a large `add-flows` batch fits; a runaway client does not
/// exhaust memory).
const MAX_REQUEST_BYTES: u64 = 64 << 20;

/// Create the socket at `path`: parent directory made if missing (mode 0700), a stale socket
/// left by a crashed daemon removed, a live one refused; the socket itself is mode 0600 so only
/// root can connect.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.to_path_buf()));
        }
        tracing::warn!(path = %path.display(), "removing stale control socket");
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    // With the usual umask (022) the socket is born 0755: not connectable by others (connect
    // needs write permission), so tightening it right after bind leaves no window.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Accept connections forever, one thread per client.
pub fn serve(listener: UnixListener, switch: Arc<Switch>) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let switch = switch.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("ctl-conn".into())
                        .spawn(move || {
                            if let Err(e) = handle_connection(stream, &switch) {
                                tracing::debug!(error = %e, "control connection ended");
                            }
                        });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot spawn control connection thread");
                }
            }
            Err(e) => tracing::warn!(error = %e, "accept failed on control socket"),
        }
    }
}

fn handle_connection(stream: UnixStream, switch: &Switch) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream).take(MAX_REQUEST_BYTES);
    let mut line = String::new();
    loop {
        line.clear();
        reader.set_limit(MAX_REQUEST_BYTES);
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let result = match serde_json::from_str::<Request>(&line) {
            Err(e) => Err(ErrorReply::new(
                ErrorKind::BadRequest,
                format!("cannot decode request: {e}"),
            )),
            Ok(req) if req.version != PROTOCOL_VERSION => Err(ErrorReply::new(
                ErrorKind::VersionMismatch,
                format!(
                    "client speaks protocol version {}, vswitchd speaks {PROTOCOL_VERSION}",
                    req.version
                ),
            )),
            Ok(req) => {
                tracing::debug!(command = ?req.command, "control request");
                let outcome = switch.handle(req.command);
                if let Err(e) = &outcome {
                    tracing::info!(error = %e.message, "control request refused");
                }
                outcome
            }
        };
        let resp = Response {
            version: PROTOCOL_VERSION,
            result,
        };
        let mut out = serde_json::to_string(&resp).unwrap_or_else(|e| {
            format!(
                r#"{{"version":{PROTOCOL_VERSION},"result":{{"Err":{{"kind":"internal","message":"cannot encode reply: {e}","line":null,"token":null}}}}}}"#
            )
        });
        out.push('\n');
        writer.write_all(out.as_bytes())?;
    }
}
