//! A small synchronous client for etcd v3's JSON/HTTP gateway, enough for FIP claims.
//!
//! Why not gRPC: the official Rust clients (`etcd-client`) sit on tokio + tonic, an async
//! runtime and an HTTP/2 stack for a handful of requests every few seconds from one thread.
//! etcd serves the same API as JSON over HTTP/1.1 (the grpc-gateway), so a request is one
//! `POST` on a fresh [`TcpStream`] with `Connection: close`: no connection state to manage,
//! nothing that can wedge a runtime, and every call bounded by a timeout.
//!
//! The gateway, as checked against Debian's etcd 3.4.23:
//! * prefix `/v3/` (3.4 also answers `/v3beta/`, which 3.5 removed; `/v3/` works on both);
//! * keys and values are base64 (standard alphabet, padded);
//! * 64-bit integers (revisions, lease ids, TTLs) come back as JSON *strings*; fields equal to
//!   their zero value are omitted (an expired lease's keep-alive answer has no `TTL`);
//! * `lease/keepalive` is a streaming call: with one request in the body it answers one
//!   `{"result": ...}` in a chunked body and closes;
//! * errors come back as HTTP 4xx/5xx with `{"error", "message", "code"}`.
//!
//! Only `http://` is supported (no TLS): the store is meant to be reached on loopback or a
//! trusted management network; put a local TLS proxy in front for anything else.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The largest response read (a range over every FIP of a big cloud stays far below this).
const MAX_RESPONSE: usize = 16 << 20;

/// What went wrong talking to etcd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// The `--etcd` URL is not usable.
    #[error("bad etcd URL {url:?}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// No connection (refused, unreachable, name not resolved, timed out).
    #[error("cannot connect to etcd at {addr}: {why}")]
    Connect {
        /// host:port.
        addr: String,
        /// The system's reason.
        why: String,
    },
    /// The connection broke or timed out during a request.
    #[error("etcd {path}: {why}")]
    Io {
        /// Request path.
        path: String,
        /// The system's reason.
        why: String,
    },
    /// etcd answered with an error status.
    #[error("etcd {path}: HTTP {status}: {message}")]
    Status {
        /// Request path.
        path: String,
        /// HTTP status code.
        status: u16,
        /// etcd's message, or the start of the body.
        message: String,
    },
    /// The answer is not what the gateway sends (not HTTP, not JSON, a field missing).
    #[error("etcd {path}: malformed answer: {why}")]
    Malformed {
        /// Request path.
        path: String,
        /// What is wrong with it.
        why: String,
    },
}

/// One key-value pair as etcd stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Revision that created the key.
    pub create_revision: i64,
    /// Revision of the last change.
    pub mod_revision: i64,
    /// Lease the key is bound to (0: none).
    pub lease: i64,
}

/// The outcome of a create-if-absent transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The key did not exist and now holds our value.
    Yes,
    /// The key exists; here it is.
    Exists(Kv),
    /// It existed when compared but was gone when read back (deleted in between): try again.
    Vanished,
}

/// A client of one etcd endpoint.
#[derive(Debug, Clone)]
pub struct EtcdClient {
    /// `host:port`, for connecting and the `Host` header.
    authority: String,
    /// Every request's bound: connect, write and read each.
    timeout: Duration,
}

impl EtcdClient {
    /// A client for `url` (`http://host[:port][/]`, port 2379 by default). Nothing is
    /// contacted yet.
    pub fn new(url: &str, timeout: Duration) -> Result<EtcdClient, EtcdError> {
        let bad = |why: &str| EtcdError::Url {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(bad(
                "https is not supported (no TLS in this client): use http:// on loopback or a \
                 trusted network, or a local TLS proxy",
            ));
        } else {
            return Err(bad("expected http://HOST[:PORT]"));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad(
                "expected http://HOST[:PORT] with no path, user or query",
            ));
        }
        // A bracketed IPv6 literal may contain colons; the port is after the bracket.
        let has_port = match authority.rfind(']') {
            Some(close) => authority[close..].contains(':'),
            None => authority.contains(':'),
        };
        let authority = if has_port {
            let port = authority.rsplit(':').next().unwrap_or("");
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad(&format!("bad port {port:?}")));
            }
            authority.to_string()
        } else {
            format!("{authority}:2379")
        };
        Ok(EtcdClient { authority, timeout })
    }

    /// `host:port` this client talks to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Grant a lease of `ttl_secs`; returns its id and the TTL etcd granted (it may raise a
    /// TTL below its minimum).
    pub fn lease_grant(&self, ttl_secs: u64) -> Result<(i64, u64), EtcdError> {
        let path = "/v3/lease/grant";
        let v = self.post(path, &json!({ "TTL": ttl_secs.to_string() }))?;
        let id = int_field(&v, "ID").ok_or_else(|| malformed(path, "no lease ID"))?;
        if id == 0 {
            return Err(malformed(path, "lease ID 0"));
        }
        let ttl = int_field(&v, "TTL").unwrap_or(0);
        if ttl <= 0 {
            return Err(malformed(path, "no TTL granted"));
        }
        Ok((id, ttl as u64))
    }

    /// Refresh a lease. `Ok(Some(ttl))`: alive, its TTL restarted; `Ok(None)`: etcd no longer
    /// knows it (expired or revoked).
    pub fn lease_keepalive(&self, lease: i64) -> Result<Option<u64>, EtcdError> {
        let path = "/v3/lease/keepalive";
        let v = self.post(path, &json!({ "ID": lease.to_string() }))?;
        let Some(result) = v.get("result") else {
            return Err(malformed(path, "no result"));
        };
        match int_field(result, "TTL") {
            Some(ttl) if ttl > 0 => Ok(Some(ttl as u64)),
            _ => Ok(None),
        }
    }

    /// Revoke a lease: every key bound to it is deleted at once.
    pub fn lease_revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.post("/v3/lease/revoke", &json!({ "ID": lease.to_string() }))
            .map(drop)
    }

    /// Create `key` = `value` bound to `lease` if the key does not exist (`create_revision ==
    /// 0`), else read it back, in one transaction.
    pub fn create_if_absent(
        &self,
        key: &str,
        value: &[u8],
        lease: i64,
    ) -> Result<Created, EtcdError> {
        let path = "/v3/kv/txn";
        let k = b64_encode(key.as_bytes());
        let v = self.post(
            path,
            &json!({
                "compare": [{
                    "key": k, "result": "EQUAL", "target": "CREATE", "create_revision": "0"
                }],
                "success": [{ "request_put": {
                    "key": k, "value": b64_encode(value), "lease": lease.to_string()
                }}],
                "failure": [{ "request_range": { "key": k } }],
            }),
        )?;
        if v.get("succeeded").and_then(Value::as_bool) == Some(true) {
            return Ok(Created::Yes);
        }
        let kvs = v
            .get("responses")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("response_range"))
            .ok_or_else(|| malformed(path, "failed transaction without its range response"))?;
        Ok(match parse_kvs(path, kvs)?.into_iter().next() {
            Some(kv) => Created::Exists(kv),
            None => Created::Vanished,
        })
    }

    /// Put `key` = `value` bound to `lease` only if the key's last change is still
    /// `mod_revision` (nobody changed it since it was read). Returns whether it was put.
    pub fn replace_if_unchanged(
        &self,
        key: &str,
        value: &[u8],
        lease: i64,
        mod_revision: i64,
    ) -> Result<bool, EtcdError> {
        let k = b64_encode(key.as_bytes());
        let v = self.post(
            "/v3/kv/txn",
            &json!({
                "compare": [{
                    "key": k, "result": "EQUAL", "target": "MOD",
                    "mod_revision": mod_revision.to_string()
                }],
                "success": [{ "request_put": {
                    "key": k, "value": b64_encode(value), "lease": lease.to_string()
                }}],
            }),
        )?;
        Ok(v.get("succeeded").and_then(Value::as_bool) == Some(true))
    }

    /// Delete `key` only if it is bound to `lease` (so a node never deletes another's claim).
    /// Returns whether it was deleted.
    pub fn delete_if_lease(&self, key: &str, lease: i64) -> Result<bool, EtcdError> {
        let k = b64_encode(key.as_bytes());
        let v = self.post(
            "/v3/kv/txn",
            &json!({
                "compare": [{
                    "key": k, "result": "EQUAL", "target": "LEASE", "lease": lease.to_string()
                }],
                "success": [{ "request_delete_range": { "key": k } }],
            }),
        )?;
        Ok(v.get("succeeded").and_then(Value::as_bool) == Some(true))
    }

    /// Put `key` = `value` bound to `lease` unconditionally.
    pub fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<(), EtcdError> {
        self.post(
            "/v3/kv/put",
            &json!({
                "key": b64_encode(key.as_bytes()),
                "value": b64_encode(value),
                "lease": lease.to_string(),
            }),
        )
        .map(drop)
    }

    /// Delete `key`; returns how many keys were deleted (0 or 1).
    pub fn delete(&self, key: &str) -> Result<u64, EtcdError> {
        let v = self.post(
            "/v3/kv/deleterange",
            &json!({ "key": b64_encode(key.as_bytes()) }),
        )?;
        Ok(int_field(&v, "deleted").unwrap_or(0).max(0) as u64)
    }

    /// Every key starting with `prefix`.
    pub fn range_prefix(&self, prefix: &str) -> Result<Vec<Kv>, EtcdError> {
        let path = "/v3/kv/range";
        let v = self.post(
            path,
            &json!({
                "key": b64_encode(prefix.as_bytes()),
                "range_end": b64_encode(&prefix_end(prefix.as_bytes())),
            }),
        )?;
        parse_kvs(path, &v)
    }

    /// POST `body` to `path`; the answer's JSON, or why there is none.
    fn post(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let deadline = Instant::now() + self.timeout;
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.authority,
            body.len()
        );
        let mut stream = self.connect()?;
        let io = |e: std::io::Error| EtcdError::Io {
            path: path.to_string(),
            why: e.to_string(),
        };
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        stream.write_all(request.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(EtcdError::Io {
                    path: path.to_string(),
                    why: format!("no complete answer within {:?}", self.timeout),
                });
            }
            stream.set_read_timeout(Some(left)).map_err(io)?;
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if raw.len() > MAX_RESPONSE {
                        return Err(malformed(path, "answer larger than 16 MiB"));
                    }
                    // With Content-Length the body may be complete before the close.
                    if response_complete(&raw) {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        let (status, body) = parse_response(&raw).map_err(|why| malformed(path, &why))?;
        let json: Result<Value, _> = serde_json::from_slice(&body);
        if status != 200 {
            let message = json
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .or_else(|| v.get("error"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| snippet(&body));
            return Err(EtcdError::Status {
                path: path.to_string(),
                status,
                message,
            });
        }
        let v =
            json.map_err(|e| malformed(path, &format!("not JSON ({e}): {}", snippet(&body))))?;
        if !v.is_object() {
            return Err(malformed(path, "not a JSON object"));
        }
        // A streaming call reports its errors inside a 200 answer.
        if let Some(err) = v.get("error") {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            return Err(EtcdError::Status {
                path: path.to_string(),
                status,
                message,
            });
        }
        Ok(v)
    }

    fn connect(&self) -> Result<TcpStream, EtcdError> {
        let err = |why: String| EtcdError::Connect {
            addr: self.authority.clone(),
            why,
        };
        let addrs: Vec<SocketAddr> = self
            .authority
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .collect();
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(err(last))
    }
}

fn malformed(path: &str, why: &str) -> EtcdError {
    EtcdError::Malformed {
        path: path.to_string(),
        why: why.to_string(),
    }
}

/// The first bytes of a body, printable, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text
    }
}

/// A 64-bit integer field, as the gateway writes it (a string) or as a JSON number.
fn int_field(v: &Value, name: &str) -> Option<i64> {
    match v.get(name)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn parse_kvs(path: &str, v: &Value) -> Result<Vec<Kv>, EtcdError> {
    let Some(kvs) = v.get("kvs") else {
        return Ok(Vec::new()); // omitted when empty
    };
    let kvs = kvs
        .as_array()
        .ok_or_else(|| malformed(path, "kvs is not a list"))?;
    kvs.iter()
        .map(|kv| {
            let bytes = |name: &str| -> Result<Vec<u8>, EtcdError> {
                match kv.get(name) {
                    None => Ok(Vec::new()),
                    Some(Value::String(s)) => b64_decode(s)
                        .ok_or_else(|| malformed(path, &format!("{name} is not base64"))),
                    Some(_) => Err(malformed(path, &format!("{name} is not a string"))),
                }
            };
            let key = bytes("key")?;
            if key.is_empty() {
                return Err(malformed(path, "a kv without key"));
            }
            Ok(Kv {
                key,
                value: bytes("value")?,
                create_revision: int_field(kv, "create_revision").unwrap_or(0),
                mod_revision: int_field(kv, "mod_revision").unwrap_or(0),
                lease: int_field(kv, "lease").unwrap_or(0),
            })
        })
        .collect()
}

/// The end of the range of keys starting with `prefix`: the prefix with its last byte below
/// 0xff incremented (and what follows dropped), as etcd's clients compute it.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// Split the head from the body; `None` until the blank line has arrived.
fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&raw[..at], &raw[at + 4..]))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Whether a Content-Length answer has all its body (chunked and close-delimited answers end
/// when the server closes).
fn response_complete(raw: &[u8]) -> bool {
    let Some((head, body)) = split_head(raw) else {
        return false;
    };
    let head = String::from_utf8_lossy(head);
    match header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => header(&head, "transfer-encoding").is_none() && body.len() >= len,
        None => false,
    }
}

/// Status code and (de-chunked) body of a complete HTTP/1.1 answer.
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    if raw.is_empty() {
        return Err("connection closed without an answer".into());
    }
    let (head, body) = split_head(raw).ok_or("no end of HTTP headers")?;
    let head = std::str::from_utf8(head).map_err(|_| "HTTP headers are not text")?;
    let status_line = head.split("\r\n").next().unwrap_or("");
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 status line: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status code in {status_line:?}"))?;
    let chunked = header(head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return dechunk(body).map(|b| (status, b));
    }
    match header(head, "content-length") {
        Some(v) => {
            let len: usize = v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?;
            if body.len() < len {
                return Err(format!(
                    "body cut short: {} of {len} bytes before the connection closed",
                    body.len()
                ));
            }
            Ok((status, body[..len].to_vec()))
        }
        None => Ok((status, body.to_vec())),
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body cut short (no chunk size line)")?;
        let line = std::str::from_utf8(&body[..eol]).map_err(|_| "bad chunk size line")?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("chunked body cut short".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as the gateway's JSON carries bytes.
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode standard base64 (padding optional); `None` if it is not base64.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be padding zeros, and one leftover character cannot encode a byte.
    (bits < 6 && acc == 0).then_some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// A fake etcd: answers each connection with the next canned raw response (the last one
    /// repeats), and keeps the requests it got.
    pub(crate) struct FakeServer {
        pub(crate) url: String,
        pub(crate) requests: Arc<Mutex<Vec<String>>>,
    }

    impl FakeServer {
        pub(crate) fn start(responses: Vec<Vec<u8>>) -> FakeServer {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let log = requests.clone();
            std::thread::spawn(move || {
                for (i, conn) in listener.incoming().enumerate() {
                    let Ok(mut conn) = conn else { return };
                    let request = read_request(&mut conn);
                    log.lock().unwrap().push(request);
                    let resp = &responses[i.min(responses.len() - 1)];
                    let _ = conn.write_all(resp);
                }
            });
            FakeServer { url, requests }
        }
    }

    fn read_request(conn: &mut TcpStream) -> String {
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some((head, body)) = split_head(&raw) {
                let head = String::from_utf8_lossy(head);
                let len: usize = header(&head, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&raw).into_owned()
    }

    pub(crate) fn ok(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn chunked(body: &str) -> Vec<u8> {
        let (a, b) = body.split_at(body.len() / 2);
        format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .into_bytes()
    }

    fn client(url: &str) -> EtcdClient {
        EtcdClient::new(url, Duration::from_secs(2)).unwrap()
    }

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let e = b64_encode(s.as_bytes());
            assert_eq!(b64_decode(&e).unwrap(), s.as_bytes(), "{s:?} -> {e}");
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert_eq!(
            b64_encode(b"/vswitch/fips/1.2.3.4/owner"),
            "L3Zzd2l0Y2gvZmlwcy8xLjIuMy40L293bmVy" // as etcd 3.4 returned it
        );
        assert_eq!(b64_decode("!!!"), None);
        assert_eq!(b64_decode("Z"), None);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(b64_decode(&b64_encode(&all)).unwrap(), all);
    }

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/vswitch/fips/"), b"/vswitch/fips0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn urls() {
        let c = |u: &str| EtcdClient::new(u, Duration::from_secs(1)).map(|c| c.authority);
        assert_eq!(c("http://127.0.0.1:2379").unwrap(), "127.0.0.1:2379");
        assert_eq!(c("http://etcd.local/").unwrap(), "etcd.local:2379");
        assert_eq!(c("http://[::1]").unwrap(), "[::1]:2379");
        assert_eq!(c("http://[::1]:4001").unwrap(), "[::1]:4001");
        for bad in [
            "127.0.0.1:2379",
            "https://x",
            "http://",
            "http://h:0",
            "http://h:x",
            "http://h/v3",
        ] {
            let e = c(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn grant_sends_json_and_parses_string_integers() {
        let fake = FakeServer::start(vec![ok(
            r#"{"header":{"revision":"1"},"ID":"7587869543417413379","TTL":"10"}"#,
        )]);
        let (id, ttl) = client(&fake.url).lease_grant(10).unwrap();
        assert_eq!((id, ttl), (7587869543417413379, 10));
        let req = fake.requests.lock().unwrap()[0].clone();
        assert!(
            req.starts_with("POST /v3/lease/grant HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains("Connection: close"), "{req}");
        assert!(req.ends_with(r#"{"TTL":"10"}"#), "{req}");
    }

    #[test]
    fn keepalive_reads_chunked_answers_and_sees_expired_leases() {
        let alive = r#"{"result":{"header":{"revision":"3"},"ID":"5","TTL":"10"}}"#;
        let gone = r#"{"result":{"header":{"revision":"3"},"ID":"5"}}"#;
        let fake = FakeServer::start(vec![chunked(alive), chunked(gone)]);
        let c = client(&fake.url);
        assert_eq!(c.lease_keepalive(5).unwrap(), Some(10));
        assert_eq!(c.lease_keepalive(5).unwrap(), None);
    }

    #[test]
    fn txn_create_if_absent_both_outcomes() {
        let won = r#"{"header":{"revision":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"2"}}}]}"#;
        let lost = r#"{"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"L3Zzd2l0Y2gvZmlwcy8xLjIuMy40L293bmVy","create_revision":"2","mod_revision":"2","version":"1","value":"eyJub2RlIjoiYSJ9","lease":"2324035521473397516"}],"count":"1"}}]}"#;
        let vanished = r#"{"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"}}}]}"#;
        let fake = FakeServer::start(vec![ok(won), ok(lost), ok(vanished)]);
        let c = client(&fake.url);
        assert_eq!(
            c.create_if_absent("/vswitch/fips/1.2.3.4/owner", b"{}", 9)
                .unwrap(),
            Created::Yes
        );
        let Created::Exists(kv) = c
            .create_if_absent("/vswitch/fips/1.2.3.4/owner", b"{}", 9)
            .unwrap()
        else {
            panic!("expected Exists");
        };
        assert_eq!(kv.key, b"/vswitch/fips/1.2.3.4/owner");
        assert_eq!(kv.value, br#"{"node":"a"}"#);
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.lease),
            (2, 2, 2324035521473397516)
        );
        assert_eq!(
            c.create_if_absent("/k", b"{}", 9).unwrap(),
            Created::Vanished
        );
        let req = fake.requests.lock().unwrap()[0].clone();
        let body: Value = serde_json::from_str(req.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["compare"][0]["target"], "CREATE");
        assert_eq!(body["compare"][0]["create_revision"], "0");
        assert_eq!(body["success"][0]["request_put"]["lease"], "9");
        assert_eq!(
            body["success"][0]["request_put"]["key"],
            "L3Zzd2l0Y2gvZmlwcy8xLjIuMy40L293bmVy"
        );
    }

    #[test]
    fn error_paths_are_errors_never_panics() {
        let err_json = br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
        let status_404 = [
            b"HTTP/1.1 404 Not Found\r\nContent-Length: ".as_slice(),
            err_json.len().to_string().as_bytes(),
            b"\r\n\r\n",
            err_json,
        ]
        .concat();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                status_404,
                "HTTP 404: etcdserver: requested lease not found",
            ),
            (
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy!".to_vec(),
                "HTTP 503: busy!",
            ),
            (ok("{not json"), "malformed answer: not JSON"),
            (ok("[1,2]"), "not a JSON object"),
            (ok(r#"{"ID":"x"}"#), "no lease ID"),
            (ok(r#"{"ID":"5","TTL":"0"}"#), "no TTL granted"),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(),
                "not an HTTP/1 status line",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Le".to_vec(),
                "no end of HTTP headers",
            ),
            (Vec::new(), "connection closed without an answer"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}".to_vec(),
                "body cut short",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
                "bad chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{}".to_vec(),
                "chunked body cut short",
            ),
            (
                ok(r#"{"error":{"grpc_code":14,"message":"etcdserver: leader changed"}}"#),
                "leader changed",
            ),
        ];
        for (resp, want) in cases {
            let fake = FakeServer::start(vec![resp.clone()]);
            let e = client(&fake.url).lease_grant(5).unwrap_err();
            assert!(
                e.to_string().contains(want),
                "{:?}: got {e}",
                String::from_utf8_lossy(&resp)
            );
        }
        // Not base64 in a kv.
        let fake = FakeServer::start(vec![ok(r#"{"kvs":[{"key":"!!","value":"e30="}]}"#)]);
        let e = client(&fake.url).range_prefix("/vswitch/").unwrap_err();
        assert!(e.to_string().contains("key is not base64"), "{e}");
    }

    #[test]
    fn nothing_listening_is_a_connect_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = client(&format!("http://127.0.0.1:{port}"))
            .lease_grant(5)
            .unwrap_err();
        assert!(matches!(e, EtcdError::Connect { .. }), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
    }

    #[test]
    fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hold = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(Duration::from_millis(800));
            drop(conn);
        });
        let c = EtcdClient::new(&url, Duration::from_millis(300)).unwrap();
        let t = Instant::now();
        let e = c.lease_grant(5).unwrap_err();
        assert!(
            t.elapsed() < Duration::from_millis(750),
            "{:?}",
            t.elapsed()
        );
        assert!(matches!(e, EtcdError::Io { .. }), "{e}");
        hold.join().unwrap();
    }
}
