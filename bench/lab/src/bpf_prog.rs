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
    }
}
