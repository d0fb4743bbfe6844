//! The generator's frames: Ethernet + IPv4 + UDP, 60 bytes (64 on the wire with the FCS).

/// Frame length without the FCS: the classic "64-byte frame".
pub const FRAME_LEN: usize = 60;

pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
}

/// RFC 1071 checksum of an IPv4 header.
fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn build(s: &FrameSpec) -> Vec<u8> {
    let mut f = vec![0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&s.dst_mac);
    f[6..12].copy_from_slice(&s.src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (FRAME_LEN - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&s.src_ip);
    ip[16..20].copy_from_slice(&s.dst_ip);
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&s.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&s.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    // UDP checksum 0: "none" for IPv4, so varying the source port needs no fix-up.
    f
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect();
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checksum_verifies() {
        let f = build(&FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: [10, 1, 0, 1],
            dst_ip: [10, 1, 1, 1],
            src_port: 1024,
            dst_port: 9,
        });
        assert_eq!(f.len(), FRAME_LEN);
        // Summing a header that includes its checksum gives 0 after complement.
        assert_eq!(ipv4_checksum(&f[14..34]), 0);
        assert_eq!(&f[34..36], &1024u16.to_be_bytes());
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:aa:00:00:00:0f"),
            Some([2, 0xaa, 0, 0, 0, 0xf])
        );
        assert_eq!(parse_mac("02:aa"), None);
    }
}
