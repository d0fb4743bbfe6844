//! The VXLAN header (RFC 7348), in the style of smoltcp's `wire` module (which has none).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The header follows the outer UDP header (destination port 4789) and precedes the inner
//! Ethernet frame. Receive rule (RFC 7348 §5): the I flag must be set — a header without it
//! carries no valid VNI and is refused ([`VxlanError::NoVni`]); reserved bits are ignored on
//! receipt, as the RFC says (Linux and Open vSwitch refuse unknown flags because they also
//! speak the GBP/GPE extensions that reuse them; we speak neither). [`VxlanRepr::emit`] writes
//! the I flag and zero reserved bits.

mod field {
    use core::ops::{Range, RangeFrom};
    pub const FLAGS: usize = 0;
    pub const VNI: Range<usize> = 4..7;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// Bytes of a VXLAN header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The "VNI is valid" flag (I).
pub const FLAG_I: u8 = 0x08;

/// Largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// UDP destination port assigned to VXLAN by IANA.
pub const UDP_PORT: u16 = 4789;

/// Why bytes are not a VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VxlanError {
    /// Shorter than the 8-byte header.
    #[error("VXLAN header truncated")]
    Truncated,
    /// The I flag is clear: no valid VNI.
    #[error("VXLAN header without the I (valid VNI) flag")]
    NoVni,
}

/// A read/write view of a VXLAN header and the inner frame after it.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Wrap a buffer without checking its length; accessors may panic if it is shorter than
    /// [`HEADER_LEN`]. Use [`VxlanPacket::new_checked`] for untrusted input.
    pub const fn new_unchecked(buffer: T) -> VxlanPacket<T> {
        VxlanPacket { buffer }
    }

    /// Wrap a buffer, checking that every accessor is safe to call.
    pub fn new_checked(buffer: T) -> Result<VxlanPacket<T>, VxlanError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(VxlanError::Truncated)` if the buffer cannot hold the header.
    pub fn check_len(&self) -> Result<(), VxlanError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(VxlanError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag (valid VNI) is set.
    #[inline]
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24-bit VXLAN network identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Set the flags byte.
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Set the VNI (the top 8 bits of `vni` are ignored).
    #[inline]
    pub fn set_vni(&mut self, vni: u32) {
        let b = vni.to_be_bytes();
        self.buffer.as_mut()[field::VNI].copy_from_slice(&b[1..]);
    }

    /// Zero the reserved bytes.
    #[inline]
    pub fn clear_reserved(&mut self) {
        let b = self.buffer.as_mut();
        b[1..4].fill(0);
        b[7] = 0;
    }

    /// The inner Ethernet frame, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// A parsed VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanRepr {
    /// VXLAN network identifier (24 bits).
    pub vni: u32,
}

impl VxlanRepr {
    /// Parse a header (see the module docs for what is accepted).
    pub fn parse<T: AsRef<[u8]>>(packet: &VxlanPacket<T>) -> Result<VxlanRepr, VxlanError> {
        packet.check_len()?;
        if !packet.vni_valid() {
            return Err(VxlanError::NoVni);
        }
        Ok(VxlanRepr { vni: packet.vni() })
    }

    /// Bytes [`VxlanRepr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header (I flag, VNI, zero reserved bits) into `packet`, which must hold at
    /// least [`HEADER_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut VxlanPacket<T>) {
        packet.set_flags(FLAG_I);
        packet.clear_reserved();
        packet.set_vni(self.vni);
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.emit(&mut VxlanPacket::new_unchecked(&mut b[..]));
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A header with VNI 0x43e (seed 000's tenant network) and two inner bytes.
    static PACKET: [u8; 10] = [0x08, 0, 0, 0, 0x00, 0x04, 0x3e, 0, 0xaa, 0xbb];

    #[test]
    fn read_fields() {
        let p = VxlanPacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.flags(), FLAG_I);
        assert!(p.vni_valid());
        assert_eq!(p.vni(), 0x43e);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        assert_eq!(VxlanRepr::parse(&p), Ok(VxlanRepr { vni: 0x43e }));
    }

    #[test]
    fn emit_rebuilds_the_header_byte_for_byte() {
        let mut buf = [0xffu8; 10];
        let mut p = VxlanPacket::new_unchecked(&mut buf[..]);
        VxlanRepr { vni: 0x43e }.emit(&mut p);
        p.payload_mut().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(buf, PACKET);
        assert_eq!(VxlanRepr { vni: 0x43e }.to_bytes(), PACKET[..8]);
    }

    #[test]
    fn short_buffers_are_truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                VxlanPacket::new_checked(&PACKET[..n]).err(),
                Some(VxlanError::Truncated)
            );
        }
        assert!(VxlanPacket::new_checked(&PACKET[..HEADER_LEN]).is_ok());
    }

    #[test]
    fn i_flag_required_reserved_bits_ignored() {
        let mut b = PACKET;
        b[0] = 0;
        let p = VxlanPacket::new_unchecked(&b[..]);
        assert_eq!(VxlanRepr::parse(&p), Err(VxlanError::NoVni));
        let mut b = PACKET;
        b[0] = 0xff;
        b[1] = 0x12;
        b[7] = 0x34;
        let p = VxlanPacket::new_unchecked(&b[..]);
        assert_eq!(VxlanRepr::parse(&p), Ok(VxlanRepr { vni: 0x43e }));
    }

    #[test]
    fn vni_is_24_bits() {
        let b = VxlanRepr { vni: 0xab12_3456 }.to_bytes();
        let p = VxlanPacket::new_unchecked(&b[..]);
        assert_eq!(p.vni(), 0x12_3456);
    }

    proptest! {
        #[test]
        fn parse_of_emit_is_identity(vni in 0..=VNI_MAX, inner in proptest::collection::vec(any::<u8>(), 0..64)) {
            let repr = VxlanRepr { vni };
            let mut buf = vec![0u8; HEADER_LEN + inner.len()];
            let mut p = VxlanPacket::new_unchecked(&mut buf[..]);
            repr.emit(&mut p);
            p.payload_mut().copy_from_slice(&inner);
            let p = VxlanPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(VxlanRepr::parse(&p), Ok(repr));
            prop_assert_eq!(p.payload(), &inner[..]);
        }

        #[test]
        fn no_panic_on_any_input(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let p = VxlanPacket::new_unchecked(&bytes[..]);
            match VxlanRepr::parse(&p) {
                Ok(r) => {
                    prop_assert!(bytes.len() >= HEADER_LEN && bytes[0] & FLAG_I != 0);
                    prop_assert!(r.vni <= VNI_MAX);
                    prop_assert_eq!(&r.to_bytes()[4..7], &bytes[4..7]);
                }
                Err(VxlanError::Truncated) => prop_assert!(bytes.len() < HEADER_LEN),
                Err(VxlanError::NoVni) => prop_assert!(bytes[0] & FLAG_I == 0),
            }
        }
    }
}
