//! 802.1Q / 802.1ad VLAN tags, in the style of smoltcp's `wire` module (which has none).
//!
//! A tag sits between the source MAC and the payload's Ethertype: `TPID(2) TCI(2) TYPE(2)`.
//! The TPID is the Ethertype of the enclosing header (smoltcp's `EthernetFrame::ethertype()`
//! reads it as 0x8100 or 0x88a8), so a [`VlanPacket`] covers the 4 bytes after it — TCI and
//! the inner Ethertype — and its payload. That way `VlanPacket::new_checked(eth.payload())`
//! layers exactly like smoltcp's own headers, and a QinQ frame is two nested `VlanPacket`s.

use super::Malformed;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// Bytes a tag occupies after its TPID.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

const VID_MASK: u16 = 0x0fff;
const DEI_BIT: u16 = 0x1000;
const PCP_SHIFT: u16 = 13;

/// A read/write view of a VLAN tag (TCI and inner Ethertype) and its payload.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct VlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanPacket<T> {
    /// Wrap a buffer without checking its length; accessors may panic if it is shorter than
    /// [`HEADER_LEN`]. Use [`VlanPacket::new_checked`] for untrusted input.
    pub const fn new_unchecked(buffer: T) -> VlanPacket<T> {
        VlanPacket { buffer }
    }

    /// Wrap a buffer, checking that every accessor is safe to call.
    pub fn new_checked(buffer: T) -> Result<VlanPacket<T>, Malformed> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(Malformed::TruncatedVlan)` if the buffer cannot hold a tag.
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Malformed::TruncatedVlan)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole tag control information word.
    #[inline]
    pub fn tci(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::TCI];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & VID_MASK
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> PCP_SHIFT) as u8
    }

    /// Drop eligible indicator (formerly CFI).
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & DEI_BIT != 0
    }

    /// Ethertype of the payload (another TPID for QinQ).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanPacket<&'a T> {
    /// The bytes after the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanPacket<T> {
    /// Set the whole TCI.
    #[inline]
    pub fn set_tci(&mut self, value: u16) {
        self.buffer.as_mut()[field::TCI].copy_from_slice(&value.to_be_bytes());
    }

    /// Set the VLAN identifier (low 12 bits of `value`), keeping PCP and DEI.
    #[inline]
    pub fn set_vid(&mut self, value: u16) {
        let tci = (self.tci() & !VID_MASK) | (value & VID_MASK);
        self.set_tci(tci)
    }

    /// Set the priority (low 3 bits of `value`), keeping VID and DEI.
    #[inline]
    pub fn set_pcp(&mut self, value: u8) {
        let tci = (self.tci() & !(7 << PCP_SHIFT)) | (u16::from(value & 7) << PCP_SHIFT);
        self.set_tci(tci)
    }

    /// Set or clear the drop eligible indicator.
    #[inline]
    pub fn set_dei(&mut self, value: bool) {
        let tci = (self.tci() & !DEI_BIT) | if value { DEI_BIT } else { 0 };
        self.set_tci(tci)
    }

    /// Set the payload's Ethertype.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// The bytes after the tag, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for VlanPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A VLAN tag's contents, decoded.
#[derive(Debug, PartialEq, Eq, Clone, Copy, Default)]
pub struct VlanRepr {
    /// Priority code point (0..=7).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (0..=4095).
    pub vid: u16,
    /// Ethertype of the payload.
    pub ethertype: u16,
}

impl VlanRepr {
    /// Decode a tag. Every TCI value is accepted (VID 0 is priority-tagged, 4095 reserved;
    /// judging them is policy, not parsing).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &VlanPacket<&T>) -> Result<VlanRepr, Malformed> {
        packet.check_len()?;
        Ok(VlanRepr {
            pcp: packet.pcp(),
            dei: packet.dei(),
            vid: packet.vid(),
            ethertype: packet.ethertype(),
        })
    }

    /// Bytes [`VlanRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The TCI word this tag encodes (out-of-range `pcp`/`vid` bits are dropped).
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 7) << PCP_SHIFT)
            | if self.dei { DEI_BIT } else { 0 }
            | (self.vid & VID_MASK)
    }

    /// Write the tag into `packet` (whose buffer must be at least [`HEADER_LEN`] long).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut VlanPacket<T>) {
        packet.set_tci(self.tci());
        packet.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tag of a frame `... 8100 | a0 64 0800 | 45 ...`: PCP 5, DEI 0, VID 100, IPv4 payload.
    static TAG: [u8; 6] = [0xa0, 0x64, 0x08, 0x00, 0x45, 0x00];

    #[test]
    fn read_fields() {
        let p = VlanPacket::new_checked(&TAG[..]).unwrap();
        assert_eq!(p.tci(), 0xa064);
        assert_eq!(p.vid(), 100);
        assert_eq!(p.pcp(), 5);
        assert!(!p.dei());
        assert_eq!(p.ethertype(), 0x0800);
        assert_eq!(p.payload(), &[0x45, 0x00]);
        let r = VlanRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            VlanRepr {
                pcp: 5,
                dei: false,
                vid: 100,
                ethertype: 0x0800
            }
        );
    }

    #[test]
    fn rebuild_byte_for_byte() {
        let r = VlanRepr::parse(&VlanPacket::new_unchecked(&TAG[..])).unwrap();
        let mut buf = [0u8; 6];
        buf[4..].copy_from_slice(&TAG[4..]);
        let mut p = VlanPacket::new_unchecked(&mut buf[..]);
        r.emit(&mut p);
        assert_eq!(buf, TAG);
        assert_eq!(r.buffer_len(), 4);
    }

    #[test]
    fn setters_touch_only_their_bits() {
        let mut buf = TAG;
        let mut p = VlanPacket::new_unchecked(&mut buf[..]);
        p.set_dei(true);
        assert_eq!(p.tci(), 0xb064);
        p.set_vid(0xfff);
        assert_eq!(p.tci(), 0xbfff);
        p.set_pcp(0);
        assert_eq!(p.tci(), 0x1fff);
        p.set_vid(0x1_001); // high bits ignored
        assert_eq!(p.vid(), 1);
        assert!(p.dei());
        p.set_ethertype(0x86dd);
        assert_eq!(p.ethertype(), 0x86dd);
        p.payload_mut()[0] = 0x60;
        assert_eq!(buf[4], 0x60);
    }

    #[test]
    fn cut_short() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                VlanPacket::new_checked(&TAG[..n]).unwrap_err(),
                Malformed::TruncatedVlan
            );
        }
        let p = VlanPacket::new_checked(&TAG[..4]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn qinq_nests() {
        // 88a8 | 000a 8100 | 0014 0800 | payload
        let inner_outer = [0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00, 0xaa];
        let outer = VlanPacket::new_checked(&inner_outer[..]).unwrap();
        assert_eq!(outer.vid(), 10);
        assert_eq!(outer.ethertype(), 0x8100);
        let inner = VlanPacket::new_checked(outer.payload()).unwrap();
        assert_eq!(inner.vid(), 20);
        assert_eq!(inner.ethertype(), 0x0800);
        assert_eq!(inner.payload(), &[0xaa]);
    }
}
