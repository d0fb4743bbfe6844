//! Small python3 peers shared by lab tests (the kernel's own TCP stack on both ends, driven by
//! a few lines of Python so a test can run many connections without extra tools).

/// TCP echo server for many concurrent connections: argv `PORT TIMEOUT`. Prints `listening`
/// once bound, `peer ADDR PORT` for every accepted connection (so a test can see the address
/// and port a NAT presented), echoes everything, and exits after TIMEOUT seconds without
/// activity (a bound, never the test's pass condition).
pub const TCP_ECHO_SERVER: &str = r#"
import selectors, socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
sel = selectors.DefaultSelector()
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port)); ls.listen(512); ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    ev = sel.select(timeout)
    if not ev:
        break
    for k, _ in ev:
        if k.fileobj is ls:
            c, peer = ls.accept()
            print("peer %s %d" % peer, flush=True)
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
        else:
            try:
                b = k.fileobj.recv(65536)
            except OSError:
                b = b""
            if b:
                # Blocking for the echo: a full send buffer must not drop bytes.
                k.fileobj.setblocking(True)
                k.fileobj.sendall(b)
                k.fileobj.setblocking(False)
            else:
                sel.unregister(k.fileobj); k.fileobj.close()
"#;

/// UDP echo server, argv `ADDR PORT TIMEOUT FIRST`: sends every datagram back until `timeout` passes without one. The first
/// datagram may take longer (up to `first`): on a loaded 2-core machine the client's
/// interpreter can take seconds to start, and a server gone by then loses the exchange.
pub const UDP_ECHO_SERVER: &str = r#"
import socket, sys
addr, port, timeout, first = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port)); s.settimeout(first)
print("ready", flush=True)
try:
    while True:
        b, peer = s.recvfrom(65536)
        s.settimeout(timeout)
        s.sendto(b, peer)
except socket.timeout:
    pass
"#;

/// One-shot TCP echo server, argv `PORT TIMEOUT`: prints `listening`, then for every connection
/// `peer ADDR PORT` (the address and port a NAT presented) and sends back `echo:` + what came;
/// exits after TIMEOUT seconds without a connection.
pub const TCP_ONE_ECHO: &str = r#"
import socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port)); ls.listen(8); ls.settimeout(timeout)
print("listening", flush=True)
try:
    while True:
        c, peer = ls.accept()
        print("peer %s %d" % peer, flush=True)
        c.settimeout(5)
        c.sendall(b"echo:" + c.recv(1000))
        c.close()
except socket.timeout:
    pass
"#;

/// Client of [`TCP_ONE_ECHO`], argv `ADDR PORT MESSAGE`: connects, sends MESSAGE, prints
/// `REPLY PEERADDR PEERPORT LOCALPORT`.
pub const TCP_ONE_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(sys.argv[3].encode())
got = b""
while True:
    b = s.recv(100)
    if not b:
        break
    got += b
print(got.decode(), s.getpeername()[0], s.getpeername()[1], s.getsockname()[1], flush=True)
"#;

/// Hand-made TCP segments through a raw socket, argv `SRC DST SPORT DPORT FLAGS COUNT`:
/// `COUNT` segments with TCP `FLAGS` from SRC (source ports SPORT, SPORT+1, ...) to DST:DPORT,
/// belonging to no connection (no SYN before them unless they are SYNs); sequence and
/// acknowledgment numbers random, seeded by SPORT so a run is repeatable.
pub const RAW_TCP: &str = r#"
import socket, struct, sys, random
src, dst, sport, dport, flags, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
rnd = random.Random(sport)
for i in range(count):
    seq, ack = rnd.getrandbits(32), (rnd.getrandbits(32) if flags & 0x10 else 0)
    h = struct.pack("!HHIIBBHHH", sport + i, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(h))
    h = h[:16] + struct.pack("!H", csum(ph + h)) + h[18:]
    s.sendto(h, (dst, 0))
print("sent", count, flush=True)
"#;
