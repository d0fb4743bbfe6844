//! A blocking client for the daemon's control socket.

use crate::protocol::{Command, ErrorReply, Reply, Request, Response, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a request did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing is listening on the socket.
    #[error("cannot connect to vswitchd at {}: {cause} (is vswitchd running?)", path.display())]
    NotRunning {
        /// Socket path tried.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("lost connection to vswitchd: {0}")]
    Io(std::io::Error),
    /// The daemon answered something that is not a response of our protocol.
    #[error("unexpected answer from vswitchd: {0}")]
    Protocol(String),
    /// The daemon speaks another protocol version.
    #[error("vswitchd speaks protocol version {daemon}, this client speaks {client}")]
    Version {
        /// Daemon's version.
        daemon: u32,
        /// Ours.
        client: u32,
    },
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(ErrorReply),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A connection to `vswitchd`.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connect to the daemon's socket.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|cause| ClientError::NotRunning {
            path: path.to_path_buf(),
            cause,
        })?;
        // A request that takes longer than this is a hung daemon, not a slow one.
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Send one command and wait for its reply.
    pub fn request(&mut self, command: Command) -> Result<Reply, ClientError> {
        let req = Request {
            version: PROTOCOL_VERSION,
            command,
        };
        let mut line =
            serde_json::to_string(&req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ClientError::Protocol(
                "connection closed before a reply".into(),
            ));
        }
        let resp: Response =
            serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if resp.version != PROTOCOL_VERSION {
            return Err(ClientError::Version {
                daemon: resp.version,
                client: PROTOCOL_VERSION,
            });
        }
        resp.result.map_err(ClientError::Refused)
    }
}
