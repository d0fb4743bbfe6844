//! Connection-tracking cost at 1 000, 100 000 and 1 000 000 established TCP connections.
//!
//! The table is filled first with full three-way handshakes (committed), then:
//! - `lookup_est`: an ACK of an established connection (lookup, TCP window check, counters),
//!   rotating over all connections with a large odd stride so caches see the whole table;
//! - `create`: a SYN of a connection that does not exist, committed (miss, limit reservation,
//!   insertion of the entry and both index records, timer), then `flush` of that tuple so the
//!   table keeps its size — the figure is create + remove;
//! - `new_no_commit`: the same SYN without commit (miss and state check only).
//!
//! The memory per connection at 1M entries is printed once (allocated capacities of slabs,
//! indexes and expiry queues divided by entries, and the nominal size).
//!
//! First figures (2-core VM shared with other builds, `--warm-up-time 1 --measurement-time 3`,
//! so ±10%): lookup_est 69 / 437 / 663 ns, create(+flush) 184 / 323 / 612 ns, new_no_commit
//! 51 / 68 / 120 ns at 1k / 100k / 1M; 1M entries: entry 216 B, nominal 246 B, allocated
//! 284 B per connection. Beyond the caches the lookup is bound by the random access to the
//! entry (the stride defeats all locality; real traffic has much more).
//!
//! - `nat_create`: a SYN of a new connection SNATed to one address, ports 1024-65535
//!   (hash-started port search, reservation of the reply key in its shard, insertion, remote
//!   record fix-up), committed, then flushed; the table holds `n` connections SNATed the
//!   same way (to 8 servers). First figures (same conditions, machine shared with another
//!   build): 416-438 ns at 1k, 833-867 ns at 100k, i.e. about twice `create` (+flush): the
//!   extra shard lock round trips of the NAT creation protocol and the remote reply record.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use conntrack::tcp_flags::{ACK, SYN};
use conntrack::{Config, Conntrack, NatRequest, PacketInfo, TcpInfo};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 111, 223));

fn client(i: u32) -> (IpAddr, u16) {
    // 16 connections per client address, distinct source ports.
    let a = i >> 4;
    (
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | a)),
        10_000 + (i & 15) as u16,
    )
}

fn seg(i: u32, from_client: bool, flags: u8, seq: u32, ack: u32) -> PacketInfo {
    let (c, cport) = client(i);
    let (src, dst, sport, dport) = if from_client {
        (c, SERVER, cport, 22)
    } else {
        (SERVER, c, 22, cport)
    };
    PacketInfo::tcp(
        0,
        src,
        dst,
        TcpInfo {
            sport,
            dport,
            seq,
            ack,
            window: 65535,
            flags,
            wscale: None,
            payload_len: 0,
        },
    )
}

fn filled(n: u32) -> Conntrack {
    let ct = Conntrack::new(Config {
        global_limit: 4_000_000,
        ..Config::default()
    });
    for i in 0..n {
        ct.process(&seg(i, true, SYN, 1000, 0), 0, true);
        ct.process(&seg(i, false, SYN | ACK, 5000, 1001), 0, true);
        ct.process(&seg(i, true, ACK, 1001, 5001), 0, true);
    }
    assert_eq!(ct.len(), n as usize);
    ct
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    for n in [1_000u32, 100_000, 1_000_000] {
        let ct = filled(n);
        if n == 1_000_000 {
            let m = ct.memory();
            println!(
                "memory at {} entries: entry {} B, nominal {} B/connection, allocated {} B/connection ({} MiB)",
                m.entries,
                m.entry_size,
                m.nominal_per_entry,
                m.allocated_per_entry(),
                m.allocated >> 20
            );
        }
        let mut i = 0u32;
        g.bench_with_input(BenchmarkId::new("lookup_est", n), &n, |b, &n| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(ct.process(black_box(&seg(i, true, ACK, 1001, 5001)), 1000, true))
            })
        });
        let mut j = 0u32;
        g.bench_with_input(BenchmarkId::new("create", n), &n, |b, &n| {
            b.iter(|| {
                j = j.wrapping_add(1);
                let p = seg(n + 16 + (j & 0xffff), true, SYN, 1000, 0);
                black_box(ct.process(black_box(&p), 1000, true));
                ct.flush(None, Some(p.tuple()))
            })
        });
        g.bench_with_input(BenchmarkId::new("new_no_commit", n), &n, |b, &n| {
            b.iter(|| {
                j = j.wrapping_add(1);
                let p = seg(n + 16 + (j & 0xffff), true, SYN, 1000, 0);
                black_box(ct.process(black_box(&p), 1000, false))
            })
        });
    }
    g.finish();
}

const NAT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

/// SNAT to one address, ports 1024-65535 (the NAT benchmark's request).
fn snat() -> NatRequest {
    NatRequest::snat(NAT_IP).with_ports(1024, 65535)
}

/// A SYN from client `i` to one of 64 servers (so 1M translated connections fit in the port
/// range of one NAT address: 15.6k per server, a quarter of the range).
fn nat_syn(i: u32) -> PacketInfo {
    let mut p = seg(i, true, SYN, 1000, 0);
    p.dst = IpAddr::V4(Ipv4Addr::new(192, 168, 112, (i & 63) as u8 + 1));
    p
}

/// NAT creation: a SYN of a new connection SNATed to one address (hash-started port search
/// with collision checks in the reply key's shard), committed, then `flush` of it so the
/// table keeps its size — the figure is create + remove, comparable with `create`. The table
/// is filled with `n` connections SNATed the same way.
fn bench_nat(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    let req = snat();
    for n in [1_000u32, 100_000, 1_000_000] {
        let ct = Conntrack::new(Config {
            global_limit: 4_000_000,
            ..Config::default()
        });
        for i in 0..n {
            let v = ct.process_nat(&nat_syn(i), 0, true, Some(&req));
            assert!(v.rewrite.is_some());
        }
        assert_eq!(ct.len(), n as usize);
        let mut j = 0u32;
        g.bench_with_input(BenchmarkId::new("nat_create", n), &n, |b, &n| {
            b.iter(|| {
                j = j.wrapping_add(1);
                let p = nat_syn(n + 16 + (j & 0xffff));
                black_box(ct.process_nat(black_box(&p), 1000, true, Some(&req)));
                ct.flush(None, Some(p.tuple()))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_nat);
criterion_main!(benches);
