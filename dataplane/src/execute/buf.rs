//! A frame buffer with headroom.

/// Tunnel metadata set by `SetTunnel`, for the encapsulating output port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TunnelMeta {
    /// Tunnel id / VNI.
    pub id: u64,
    /// Outer IPv4 source.
    pub src: u32,
    /// Outer IPv4 destination.
    pub dst: u32,
}

/// A frame inside a larger buffer: `buf[start..end]` is the frame, `buf[..start]` headroom for
/// headers pushed in front (VLAN tags now, tunnel headers later). Generic over the storage so
/// an AF_XDP UMEM chunk (`&mut [u8]`) works as well as an owned `Vec<u8>`.
#[derive(Debug, Clone)]
pub struct PacketBuf<B = Vec<u8>> {
    buf: B,
    start: usize,
    end: usize,
    /// Tunnel metadata, if a `SetTunnel` ran.
    pub tunnel: Option<TunnelMeta>,
}

impl PacketBuf<Vec<u8>> {
    /// Headroom of buffers made by [`PacketBuf::from_frame`]: room for many tags and an
    /// outer IPv6+UDP+Geneve header.
    pub const DEFAULT_HEADROOM: usize = 128;

    /// Copy `frame` into a new owned buffer with [`Self::DEFAULT_HEADROOM`].
    pub fn from_frame(frame: &[u8]) -> Self {
        let mut b = PacketBuf {
            buf: Vec::new(),
            start: 0,
            end: 0,
            tunnel: None,
        };
        b.reset(frame);
        b
    }

    /// Replace the contents with `frame` (reusing the allocation) and restore the headroom.
    /// This is on every received packet: the storage only grows, the frame is copied once, and
    /// the headroom keeps whatever bytes it had (nothing reads them before a push writes them).
    pub fn reset(&mut self, frame: &[u8]) {
        let h = Self::DEFAULT_HEADROOM;
        let end = h + frame.len();
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf[h..end].copy_from_slice(frame);
        self.start = h;
        self.end = end;
        self.tunnel = None;
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> PacketBuf<B> {
    /// Wrap storage whose bytes `start..start + len` hold a frame. `None` if that range is not
    /// inside the storage.
    pub fn new(buf: B, start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len)?;
        (end <= buf.as_ref().len()).then_some(PacketBuf {
            buf,
            start,
            end,
            tunnel: None,
        })
    }

    /// The frame.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[self.start..self.end]
    }

    /// The frame, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[self.start..self.end]
    }

    /// Frame length.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True if the frame is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Bytes available in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Offset of the frame inside the storage.
    #[inline]
    pub fn offset(&self) -> usize {
        self.start
    }

    /// Grow the frame by `n` bytes at the front (contents unspecified). False if the
    /// headroom is too small.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }

    /// Remove `n` bytes from the front. False if the frame is shorter.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }

    /// The underlying storage.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

#[cfg(test)]
mod reset_tests {
    use super::PacketBuf;

    #[test]
    fn reuse_for_a_shorter_frame_holds_exactly_that_frame() {
        let mut b = PacketBuf::from_frame(&[7u8; 1500]);
        b.reset(&[1, 2, 3]);
        assert_eq!(b.data(), &[1, 2, 3]);
        assert_eq!(b.len(), 3);
        assert!(b.push_front(4), "headroom restored");
        b.data_mut()[..4].copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(b.data(), &[9, 9, 9, 9, 1, 2, 3]);
        b.reset(&[5; 64]);
        assert_eq!(b.data(), &[5; 64][..]);
    }
}
