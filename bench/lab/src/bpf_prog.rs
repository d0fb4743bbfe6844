//! Hand-assembled XDP programs (no clang needed). Each instruction is one `struct bpf_insn`
//! packed into a u64 the way it lies in memory on a little-endian machine:
//! code (8) | dst (4) | src (4) | off (16) | imm (32).

/// XDP return codes.
pub const XDP_DROP: i32 = 1;
pub const XDP_PASS: i32 = 2;
pub const XDP_TX: i32 = 3;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R6: u8 = 6;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    code as u64
        | ((dst as u64 | (src as u64) << 4) << 8)
        | ((off as u16 as u64) << 16)
        | ((imm as u32 as u64) << 32)
}
/// dst = imm (64-bit).
const fn mov_imm(dst: u8, imm: i32) -> u64 {
    insn(0xb7, dst, 0, 0, imm)
}
/// dst = src (64-bit).
const fn mov_reg(dst: u8, src: u8) -> u64 {
    insn(0xbf, dst, src, 0, 0)
}
const fn call(helper: i32) -> u64 {
    insn(0x85, 0, 0, 0, helper)
}
const fn exit() -> u64 {
    insn(0x95, 0, 0, 0, 0)
}
/// dst = *(u32 *)(src + off)
const fn ldx_w(dst: u8, src: u8, off: i16) -> u64 {
    insn(0x61, dst, src, off, 0)
}
/// *(u16 *)(dst + off) = src
const fn stx_h(dst: u8, src: u8, off: i16) -> u64 {
    insn(0x6b, dst, src, off, 0)
}
/// dst += imm (64-bit).
const fn add64_imm(dst: u8, imm: i32) -> u64 {
    insn(0x07, dst, 0, 0, imm)
}
/// w_dst += imm (32-bit).
const fn add32_imm(dst: u8, imm: i32) -> u64 {
    insn(0x04, dst, 0, 0, imm)
}
/// w_dst &= imm (32-bit).
const fn and32_imm(dst: u8, imm: i32) -> u64 {
    insn(0x54, dst, 0, 0, imm)
}
/// w_dst >>= imm (32-bit, logical).
const fn rsh32_imm(dst: u8, imm: i32) -> u64 {
    insn(0x74, dst, 0, 0, imm)
}
/// w_dst %= imm (32-bit, unsigned).
const fn mod32_imm(dst: u8, imm: i32) -> u64 {
    insn(0x94, dst, 0, 0, imm)
}
/// dst = htobe16(dst)
const fn be16(dst: u8) -> u64 {
    insn(0xdc, dst, 0, 0, 16)
}
/// if dst > src goto +off (unsigned).
const fn jgt_reg(dst: u8, src: u8, off: i16) -> u64 {
    insn(0x2d, dst, src, off, 0)
}
/// Two-slot load of a map file descriptor (BPF_PSEUDO_MAP_FD).
const fn ld_map_fd(dst: u8, fd: u32) -> [u64; 2] {
    [insn(0x18, dst, 1, 0, fd as i32), insn(0, 0, 0, 0, 0)]
}

const BPF_FUNC_GET_PRANDOM_U32: i32 = 7;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;

/// `r0 = action; exit`: XDP_TX for the generator, XDP_DROP for the sink.
pub fn constant(action: i32) -> Vec<u64> {
    vec![mov_imm(R0, action), exit()]
}

/// Offset of the UDP source port in our frames: Ethernet (14) + IPv4 without options (20).
pub const UDP_SPORT_OFF: i16 = 34;

/// Generator program for `flows` > 1: sets the UDP source port to `base + random % flows`
/// (the IPv4 header checksum does not cover ports and the UDP checksum is 0), then XDP_TX.
/// Random rather than round-robin because the program keeps no state between frames.
pub fn spread_flows(flows: u32, base_port: u16) -> Vec<u64> {
    vec![
        mov_reg(R6, R1),
        call(BPF_FUNC_GET_PRANDOM_U32),
        mod32_imm(R0, flows as i32),
        add32_imm(R0, base_port as i32),
        be16(R0),
        ldx_w(R2, R6, 0), // xdp_md.data
        ldx_w(R3, R6, 4), // xdp_md.data_end
        mov_reg(R4, R2),
        add64_imm(R4, UDP_SPORT_OFF as i32 + 8),
        jgt_reg(R4, R3, 1),
        stx_h(R2, R0, UDP_SPORT_OFF),
        mov_imm(R0, XDP_TX),
        exit(),
    ]
}

/// Offset of the UDP destination port.
pub const UDP_DPORT_OFF: i16 = 36;

/// Bits of randomness in each port of [`new_tuples`]: source and destination ports each take
/// `base + (15 random bits)`, so one frame is one of 2^30 UDP 5-tuples.
pub const NEW_TUPLE_PORT_BITS: u32 = 15;

/// Generator program for "every frame a new connection": one `bpf_get_prandom_u32` gives the
/// UDP source port (low 15 bits) and destination port (bits 16..31), each `base +` those bits,
/// then XDP_TX. 2^30 tuples: among the few million frames of a measurement, repeats are ~0.1%
/// of the frames offered and far fewer of those a peer forwards (birthday bound; the runner
/// counts the entries created to show it). Ports are not covered by the IPv4 checksum, and the
/// UDP checksum is 0.
pub fn new_tuples(base_port: u16) -> Vec<u64> {
    let mask = (1i32 << NEW_TUPLE_PORT_BITS) - 1;
    vec![
        mov_reg(R6, R1),
        call(BPF_FUNC_GET_PRANDOM_U32),
        mov_reg(R1, R0),
        and32_imm(R1, mask),
        add32_imm(R1, base_port as i32),
        be16(R1),
        rsh32_imm(R0, 16),
        and32_imm(R0, mask),
        add32_imm(R0, base_port as i32),
        be16(R0),
        ldx_w(R2, R6, 0), // xdp_md.data
        ldx_w(R3, R6, 4), // xdp_md.data_end
        mov_reg(R4, R2),
        add64_imm(R4, UDP_SPORT_OFF as i32 + 8),
        jgt_reg(R4, R3, 2),
        stx_h(R2, R1, UDP_SPORT_OFF),
        stx_h(R2, R0, UDP_DPORT_OFF),
        mov_imm(R0, XDP_TX),
        exit(),
    ]
}

/// AF_XDP redirect: `bpf_redirect_map(xskmap, ctx->rx_queue_index, XDP_PASS)` (the low bits of
/// the flags are the action when the queue has no socket).
pub fn xsk_redirect(xskmap_fd: u32) -> Vec<u64> {
    let [a, b] = ld_map_fd(R1, xskmap_fd);
    vec![
        ldx_w(R2, R1, 16), // xdp_md.rx_queue_index
        a,
        b,
        mov_imm(R3, XDP_PASS),
        call(BPF_FUNC_REDIRECT_MAP),
        exit(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_kernel_layout() {
        // r0 = 3; exit  ==  b7 00 00 00 03 00 00 00 / 95 00 ...
        assert_eq!(mov_imm(R0, 3).to_le_bytes(), [0xb7, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(exit().to_le_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        // *(u16 *)(r2 + 34) = r0  ==  6b 02 22 00 ...
        assert_eq!(
            stx_h(R2, R0, 34).to_le_bytes(),
            [0x6b, 0x02, 34, 0, 0, 0, 0, 0]
        );
        // r2 = *(u32 *)(r6 + 4)  ==  61 62 04 00 ...
        assert_eq!(
            ldx_w(R2, R6, 4).to_le_bytes(),
            [0x61, 0x62, 4, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            ld_map_fd(R1, 7)[0].to_le_bytes(),
            [0x18, 0x11, 0, 0, 7, 0, 0, 0]
        );
        // w1 &= 0x7fff  ==  54 01 00 00 ff 7f 00 00;  w0 >>= 16  ==  74 00 00 00 10 00 00 00
        assert_eq!(
            and32_imm(R1, 0x7fff).to_le_bytes(),
            [0x54, 0x01, 0, 0, 0xff, 0x7f, 0, 0]
        );
        assert_eq!(
            rsh32_imm(R0, 16).to_le_bytes(),
            [0x74, 0, 0, 0, 16, 0, 0, 0]
        );
    }

    /// Root (CAP_BPF) needed; without it the test is skipped, except under `CI=true` where a
    /// missing privilege is a failure.
    fn may_load() -> bool {
        if crate::sys::prog_load_xdp(&constant(XDP_PASS), "benchlab_probe").is_ok() {
            return true;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot load XDP programs (root/CAP_BPF needed)"
        );
        eprintln!("skipped: cannot load XDP programs (not root)");
        false
    }

    fn frame() -> Vec<u8> {
        crate::frame::build(&crate::frame::FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: [10, 250, 0, 1],
            dst_ip: [10, 250, 1, 1],
            src_port: 1024,
            dst_port: 9,
        })
    }

    fn ports(f: &[u8]) -> (u16, u16) {
        let o = UDP_SPORT_OFF as usize;
        (
            u16::from_be_bytes([f[o], f[o + 1]]),
            u16::from_be_bytes([f[o + 2], f[o + 3]]),
        )
    }

    /// The kernel's verifier accepts the generator programs and they write what they claim:
    /// run each on a real frame (BPF_PROG_RUN, not live) and read the frame back.
    #[test]
    fn generator_programs_rewrite_the_ports_in_the_kernel() {
        if !may_load() {
            return;
        }
        let data = frame();
        let run = |insns: &[u64]| {
            let prog = crate::sys::prog_load_xdp(insns, "benchlab_test").expect("verifier");
            crate::sys::prog_run_xdp_once(&prog, &data).expect("BPF_PROG_RUN")
        };
        // --flows 100: source port 1024..1123, destination port kept, rest of the frame kept.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let (ret, out) = run(&spread_flows(100, 1024));
            assert_eq!(ret, XDP_TX as u32);
            let (s, d) = ports(&out);
            assert!((1024..1124).contains(&s), "source port {s}");
            assert_eq!(d, 9);
            assert_eq!(out[..34], data[..34]);
            seen.insert(s);
        }
        assert!(seen.len() > 50, "only {} distinct ports", seen.len());
        // --new-conns: both ports in 1024..1024+2^15, and (almost) every frame a new pair.
        let span = 1024..1024 + (1u16 << NEW_TUPLE_PORT_BITS);
        let mut pairs = std::collections::HashSet::new();
        for _ in 0..500 {
            let (ret, out) = run(&new_tuples(1024));
            assert_eq!(ret, XDP_TX as u32);
            let (s, d) = ports(&out);
            assert!(span.contains(&s) && span.contains(&d), "ports {s} {d}");
            assert_eq!(out[..34], data[..34]);
            assert_eq!(out[38..], data[38..]);
            pairs.insert((s, d));
        }
        // 500 draws from 2^30: a repeat has probability ~1e-4.
        assert!(pairs.len() >= 499, "only {} distinct tuples", pairs.len());
    }
}
