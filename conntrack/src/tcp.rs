//! TCP state machine and window tracking.
//!
//! The state table is Linux nf_conntrack's (`tcp_conntracks[]`, itself from Guido van Rooij's
//! "Real Stateful TCP Packet Filtering in IP Filter"): a segment's class (SYN, SYN-ACK, FIN,
//! ACK, RST) and direction select the next state, or "invalid", or "ignore" (accepted, state
//! unchanged). Window tracking keeps per direction:
//! - `end`: highest sequence number sent + length (`td_end`),
//! - `maxend`: highest sequence number the peer's window allows (`td_maxend`),
//! - `maxwin`: largest window seen, scaled (`td_maxwin`),
//! - `maxack`: highest acknowledgment sent, used to place RSTs (RFC 5961).
//!
//! A segment is in window when (van Rooij's four conditions):
//! I `seq <= sender.maxend`, II `end >= sender.end - receiver.maxwin`,
//! III `ack <= receiver.end`, IV `ack >= receiver.end - max(sender.maxwin, 66000)`.
//!
//! The zone's [`Profile`] is an argument of `track`: `Strict` enforces windows, RST placement
//! and SYN-ACK acknowledgment; `Liberal` runs the same state machine and still tracks the
//! windows but accepts what the window checks would refuse; `Asym` is `Strict` plus one-sided
//! connections.
//!
//! # One-sided connections (profile `Asym`)
//!
//! For a node that may see only the original direction (scenario S1's network node):
//! - **Opening.** A SYN opens as under `Strict` (SYN_SENT). While nothing came back, an
//!   original-direction ACK, ACK with data or FIN-ACK whose sequence number is exactly the
//!   SYN's end (`SYN.seq + 1`, plus the SYN's data if it carried any) proves the originator
//!   received the peer's SYN-ACK — it could not otherwise acknowledge anything — and
//!   establishes the connection *one-sided* (`Sides::OneSided`): ESTABLISHED (FIN_WAIT for a
//!   FIN-ACK), `+est`, never `+rpl`. The unseen direction's end is initialised from the ACK
//!   (what the originator acknowledges is what the peer sent). Any other sequence number is
//!   `asym_bad_seq`; an ACK with no SYN before it opens nothing (`not_new`, as always).
//! - **Checks in the seen direction.** The peer's windows are unknown, so a segment is
//!   accepted when it is *plausible* for the sender: its sequence range lies within
//!   [`ONE_SIDED_SLACK`] of the highest sequence seen (retransmissions behind, segments beyond
//!   data lost upstream ahead), and its acknowledgment within the same distance of the
//!   highest one it sent (never checked against the unseen peer's sequence). A RST must fall
//!   in the same range (`bad_rst` otherwise); FIN and RST close as usual. An
//!   original-direction SYN on a one-sided connection that is closing (FIN_WAIT .. CLOSE)
//!   reopens it: the peer's side of the close is never seen, the new SYN is the best evidence
//!   the old connection is over.
//! - **The reply appears.** A reply-direction segment on a one-sided connection is accepted
//!   when its sequence number is plausible against what the originator acknowledged and its
//!   acknowledgment does not cover data the originator never sent (a RST: within the
//!   originator's receive window from its last acknowledgment, RFC 5961 style). The
//!   connection becomes two-sided (`Sides::PickedUp`): the reply direction's window is
//!   initialised from that segment (liberally: its window scale was negotiated in a SYN-ACK we
//!   did not see), and from then on the connection is tracked like `Liberal` — windows
//!   followed, not enforced — for the rest of its life, since its history has holes (Linux
//!   does the same for connections picked up mid-stream). It is then no longer counted as
//!   one-sided and gets the ordinary timeouts.
//! - **Timeouts.** One-sided connections time out on their own timers:
//!   `tcp_one_sided_established` and `tcp_one_sided_closing` ([`Timeouts`]); CLOSE after a
//!   RST uses `tcp_close`.
//! - **Not assured.** A one-sided entry is not protected from early drop: the originator
//!   alone can create one (SYN, then ACK with the right number, no answer needed), so assured
//!   one-sided entries would let anyone fill a zone with entries that cannot be evicted.
//! - An entry's sidedness belongs to the entry: a one-sided connection keeps these rules if
//!   the zone's profile changes; only `Asym` creates new ones.

use serde::Serialize;

use crate::config::{Profile, Timeouts};
use crate::packet::{tcp_flags as F, TcpInfo};
use crate::stats::InvalidReason;
use crate::tuple::Dir;

/// TCP connection states (Linux names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum TcpState {
    /// Not a state an entry is in; row 0 of the table (what a new connection may start with).
    None = 0,
    /// SYN seen in the original direction.
    SynSent = 1,
    /// SYN-ACK seen in the reply direction.
    SynRecv = 2,
    /// Three-way handshake complete.
    Established = 3,
    /// FIN seen in one direction.
    FinWait = 4,
    /// FIN acknowledged, waiting for the other FIN.
    CloseWait = 5,
    /// FINs seen both ways, waiting for the last ACK.
    LastAck = 6,
    /// Closed normally; lingers to absorb retransmissions.
    TimeWait = 7,
    /// Closed by RST.
    Close = 8,
    /// Simultaneous open: SYN seen in both directions.
    SynSent2 = 9,
}

impl TcpState {
    /// Name as `conntrack -L` prints it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        }
    }

    /// Timeout of this state in seconds.
    pub fn timeout(self, t: &Timeouts) -> u32 {
        match self {
            TcpState::None | TcpState::SynSent | TcpState::SynSent2 => t.tcp_syn_sent,
            TcpState::SynRecv => t.tcp_syn_recv,
            TcpState::Established => t.tcp_established,
            TcpState::FinWait => t.tcp_fin_wait,
            TcpState::CloseWait => t.tcp_close_wait,
            TcpState::LastAck => t.tcp_last_ack,
            TcpState::TimeWait => t.tcp_time_wait,
            TcpState::Close => t.tcp_close,
        }
    }
}

/// Segment classes, the rows of the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Syn = 0,
    SynAck = 1,
    Fin = 2,
    Ack = 3,
    Rst = 4,
}

/// One cell of the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    To(TcpState),
    /// Not allowed here: invalid.
    Iv,
    /// Accepted, state unchanged (retransmitted SYN-ACK, SYN on a live connection).
    Ig,
}

use Next::{Ig, Iv, To};
const NO: Next = To(TcpState::None);
const SS: Next = To(TcpState::SynSent);
const SR: Next = To(TcpState::SynRecv);
const ES: Next = To(TcpState::Established);
const FW: Next = To(TcpState::FinWait);
const CW: Next = To(TcpState::CloseWait);
const LA: Next = To(TcpState::LastAck);
const TW: Next = To(TcpState::TimeWait);
const CL: Next = To(TcpState::Close);
const S2: Next = To(TcpState::SynSent2);

/// `TABLE[dir][class][state]`, columns in [`TcpState`] order
/// (NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE,
/// SYN_SENT2). Linux's table, except: an original-direction ACK on NONE is invalid (no
/// mid-stream pickup: an unsolicited ACK must not open anything, scenario S1), and a
/// reply-direction SYN on TIME_WAIT is invalid (Linux reopens with roles swapped; we only
/// reopen on an original-direction SYN).
const TABLE: [[[Next; 10]; 5]; 2] = [
    [
        // original: NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        /* syn    */
        [SS, SS, Ig, Ig, Ig, Ig, Ig, SS, SS, S2],
        /* synack */ [Iv, Iv, SR, Iv, Iv, Iv, Iv, Iv, Iv, SR],
        /* fin    */ [Iv, Iv, FW, FW, LA, LA, LA, TW, CL, Iv],
        /* ack    */ [Iv, Iv, ES, ES, CW, CW, TW, TW, CL, Iv],
        /* rst    */ [Iv, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    [
        // reply:    NO  SS  SR  ES  FW  CW  LA  TW  CL  S2
        /* syn    */
        [Iv, S2, Iv, Iv, Iv, Iv, Iv, Iv, Iv, S2],
        /* synack */ [Iv, SR, Ig, Ig, Ig, Ig, Ig, Ig, Ig, SR],
        /* fin    */ [Iv, Iv, FW, FW, LA, LA, LA, TW, CL, Iv],
        /* ack    */ [Iv, Ig, SR, ES, CW, CW, TW, TW, CL, Ig],
        /* rst    */ [Iv, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

// NONE is only a column; keep the constant used so the table reads like Linux's.
const _: Next = NO;

/// Classify a segment by its flags, refusing combinations no valid segment carries
/// (Linux `tcp_valid_flags`; ECE, CWR and PSH do not matter).
fn classify(flags: u8) -> Result<Class, InvalidReason> {
    let f = flags & !(F::ECE | F::CWR | F::PSH);
    const VALID: [u8; 9] = [
        F::SYN,
        F::SYN | F::URG,
        F::SYN | F::ACK,
        F::RST,
        F::RST | F::ACK,
        F::FIN | F::ACK,
        F::FIN | F::ACK | F::URG,
        F::ACK,
        F::ACK | F::URG,
    ];
    if !VALID.contains(&f) {
        return Err(InvalidReason::BadFlags);
    }
    Ok(if f & F::RST != 0 {
        Class::Rst
    } else if f & F::SYN != 0 {
        if f & F::ACK != 0 {
            Class::SynAck
        } else {
            Class::Syn
        }
    } else if f & F::FIN != 0 {
        Class::Fin
    } else {
        Class::Ack
    })
}

/// The sequence number after a segment (SYN and FIN count one).
fn seg_end(t: &TcpInfo) -> u32 {
    t.seq
        .wrapping_add(t.payload_len)
        .wrapping_add(u32::from(t.flags & F::SYN != 0))
        .wrapping_add(u32::from(t.flags & F::FIN != 0))
}

/// `a` comes before `b` in sequence space.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` comes after `b` in sequence space.
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

const DIR_WSCALE: u8 = 0x01;
const DIR_MAXACK: u8 = 0x02;
/// Largest window-scale shift allowed by RFC 7323.
const MAX_WSCALE: u8 = 14;
/// Linux's MAXACKWINCONST: slack for acknowledgments behind the receiver's end.
const MAX_ACK_WIN: u32 = 66_000;

/// How far (bytes of sequence space, each way) a segment of a one-sided connection may lie
/// from the highest sequence number its sender used, and an acknowledgment from the highest
/// one it sent. 8 MiB: above Linux's default maximum receive buffer (`tcp_rmem` 6 MiB), which
/// bounds how far ahead a sender can be of data lost before reaching us. Blind injection into a
/// one-sided connection needs a guess within this range (1 in 256 of the sequence space).
pub const ONE_SIDED_SLACK: u32 = 1 << 23;

/// Which directions of a connection this node has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sides {
    /// Ordinary tracking: the SYN only so far, or both directions.
    Both,
    /// Established one-sided (profile `Asym`): only the original direction was ever seen.
    OneSided,
    /// Was one-sided, then the reply direction appeared: windows followed, not enforced.
    PickedUp,
}

/// Window tracking of one direction (the sender's view).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpDir {
    end: u32,
    maxend: u32,
    /// 0 until the first segment of this direction (the "not seen yet" marker).
    maxwin: u32,
    maxack: u32,
    scale: u8,
    flags: u8,
}

impl TcpDir {
    fn from_syn(t: &TcpInfo) -> TcpDir {
        let end = t.seq.wrapping_add(t.payload_len).wrapping_add(1);
        let mut d = TcpDir {
            end,
            maxend: end,
            maxwin: u32::from(t.window).max(1),
            ..TcpDir::default()
        };
        if let Some(ws) = t.wscale {
            d.scale = ws.min(MAX_WSCALE);
            d.flags |= DIR_WSCALE;
        }
        d
    }
}

/// TCP part of a connection entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpConn {
    pub(crate) state: TcpState,
    dirs: [TcpDir; 2],
    sides: Sides,
}

/// What the caller must do after `track` accepted a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Segment accepted; the entry was updated.
    Accept,
    /// An original-direction SYN on a closed (TIME_WAIT/CLOSE) connection: the port pair is
    /// being reused. Remove the old entry and track the SYN as a new connection.
    Reopen,
}

impl TcpConn {
    /// The first segment of a connection. Only a bare SYN opens one, whatever the profile.
    pub(crate) fn new(t: &TcpInfo, _profile: Profile) -> Result<TcpConn, InvalidReason> {
        match classify(t.flags)? {
            Class::Syn => Ok(TcpConn {
                state: TcpState::SynSent,
                dirs: [TcpDir::from_syn(t), TcpDir::default()],
                sides: Sides::Both,
            }),
            _ => Err(InvalidReason::NotNew),
        }
    }

    /// Established one-sided, reply never seen (profile `Asym`).
    pub(crate) fn is_one_sided(&self) -> bool {
        self.sides == Sides::OneSided
    }

    /// Timeout of the current state in seconds: one-sided connections have their own.
    pub(crate) fn timeout(&self, t: &Timeouts) -> u32 {
        match (self.sides, self.state) {
            (Sides::OneSided, TcpState::Established) => t.tcp_one_sided_established,
            (
                Sides::OneSided,
                TcpState::FinWait | TcpState::CloseWait | TcpState::LastAck | TcpState::TimeWait,
            ) => t.tcp_one_sided_closing,
            (_, s) => s.timeout(t),
        }
    }

    /// The connection reached ESTABLISHED at least once (an assured entry: not early-dropped).
    /// One-sided connections are not assured (see the module docs).
    pub(crate) fn is_assured(&self) -> bool {
        self.sides != Sides::OneSided
            && matches!(
                self.state,
                TcpState::Established
                    | TcpState::FinWait
                    | TcpState::CloseWait
                    | TcpState::LastAck
                    | TcpState::TimeWait
            )
    }

    /// Van Rooij's window check, updating the windows when the segment passes or when the
    /// profile does not enforce them. Returns whether the segment was in window.
    fn in_window(&mut self, dir: Dir, t: &TcpInfo, enforce: bool) -> bool {
        let state = self.state;
        let [a, b] = &mut self.dirs;
        let (s, r) = if dir == Dir::Original { (a, b) } else { (b, a) };
        let syn = t.flags & F::SYN != 0;
        let fin = t.flags & F::FIN != 0;
        let rst = t.flags & F::RST != 0;
        let has_ack = t.flags & F::ACK != 0;
        let mut seq = t.seq;
        let mut end = seq
            .wrapping_add(t.payload_len)
            .wrapping_add(u32::from(syn))
            .wrapping_add(u32::from(fin));
        let win = u32::from(t.window);

        if s.maxwin == 0 {
            // First segment of this direction.
            if syn {
                *s = TcpDir::from_syn(t);
                // Window scaling is in force only if both SYNs offered it (RFC 7323 §2.2).
                if s.flags & r.flags & DIR_WSCALE == 0 {
                    s.scale = 0;
                    r.scale = 0;
                }
            } else {
                // Mid-stream pickup: unreachable with Strict/Liberal (only a SYN or SYN-ACK
                // opens a direction); kept for the one-sided profile, which will initialise a
                // direction from the ACK that follows the SYN.
                s.end = end;
                s.maxwin = win.max(1);
                s.maxend = end.wrapping_add(s.maxwin);
                if r.maxwin == 0 {
                    r.end = t.ack;
                    r.maxend = t.ack;
                }
            }
        }

        let mut ack = t.ack;
        if !has_ack || (rst && ack == 0) {
            // No acknowledgment to check: treat it as acknowledging everything sent.
            ack = r.end;
        }
        if seq == end && (!rst || (seq == 0 && state == TcpState::SynSent)) {
            // Empty segment: only the acknowledgment says anything.
            seq = s.end;
            end = s.end;
        }
        let max_ack_win = s.maxwin.max(MAX_ACK_WIN);
        let ok = !after(seq, s.maxend)
            && !before(end, s.end.wrapping_sub(r.maxwin))
            && !after(ack, r.end)
            && !before(ack, r.end.wrapping_sub(max_ack_win));

        if ok || !enforce {
            let swin = if syn { win } else { win << s.scale };
            s.maxwin = s.maxwin.max(swin);
            if after(end, s.end) {
                s.end = end;
            }
            if has_ack && (s.flags & DIR_MAXACK == 0 || after(ack, s.maxack)) {
                s.maxack = ack;
                s.flags |= DIR_MAXACK;
            }
            if r.maxwin != 0 && after(end, s.maxend) {
                r.maxwin = r.maxwin.wrapping_add(end.wrapping_sub(s.maxend));
            }
            let edge = ack.wrapping_add(swin);
            if after(edge, r.maxend.wrapping_sub(1)) {
                r.maxend = if swin == 0 {
                    edge.wrapping_add(1)
                } else {
                    edge
                };
            }
        }
        ok
    }

    /// Profile `Asym`, SYN_SENT: an original-direction ACK or FIN-ACK. With the SYN's end as
    /// sequence number it establishes the connection one-sided; anything else is refused.
    fn establish_one_sided(&mut self, t: &TcpInfo, class: Class) -> Result<Outcome, InvalidReason> {
        if t.seq != self.dirs[0].end {
            return Err(InvalidReason::AsymBadSeq);
        }
        // What the originator acknowledges is where the unseen peer's sequence stands.
        let r = &mut self.dirs[1];
        r.end = t.ack;
        r.maxend = t.ack;
        self.sides = Sides::OneSided;
        self.state = TcpState::Established;
        // The seen direction's bookkeeping (plausible by construction: it starts where the
        // SYN ended).
        self.one_sided_update(Dir::Original, t);
        if class == Class::Fin {
            self.state = TcpState::FinWait;
        }
        Ok(Outcome::Accept)
    }

    /// Whether a segment of the seen direction of a one-sided connection is plausible: its
    /// sequence range near the sender's highest sequence, its acknowledgment near the highest
    /// one it sent (see [`ONE_SIDED_SLACK`]).
    fn one_sided_plausible(&self, t: &TcpInfo) -> bool {
        let s = &self.dirs[0];
        let near = |x: u32, around: u32| {
            !before(x, around.wrapping_sub(ONE_SIDED_SLACK))
                && !after(x, around.wrapping_add(ONE_SIDED_SLACK))
        };
        let end = seg_end(t);
        let ack_ok = t.flags & F::ACK == 0 || s.flags & DIR_MAXACK == 0 || near(t.ack, s.maxack);
        near(t.seq, s.end) && near(end, s.end) && ack_ok
    }

    /// Follow an accepted segment of a one-sided connection: the sender's end, window and
    /// highest acknowledgment; the unseen peer's end and right edge as the acknowledgments
    /// reveal them (used to place a RST or the first segment coming back).
    fn one_sided_update(&mut self, dir: Dir, t: &TcpInfo) {
        let [a, b] = &mut self.dirs;
        let (s, r) = if dir == Dir::Original { (a, b) } else { (b, a) };
        let end = seg_end(t);
        if after(end, s.end) {
            s.end = end;
        }
        let win = u32::from(t.window) << s.scale;
        s.maxwin = s.maxwin.max(win).max(1);
        if t.flags & F::ACK != 0 {
            if s.flags & DIR_MAXACK == 0 || after(t.ack, s.maxack) {
                s.maxack = t.ack;
                s.flags |= DIR_MAXACK;
            }
            if after(t.ack, r.end) {
                r.end = t.ack;
            }
            let edge = t.ack.wrapping_add(win);
            if after(edge, r.maxend) {
                r.maxend = edge;
            }
        }
    }

    /// A segment of a one-sided connection (whatever the zone's profile now is).
    fn track_one_sided(
        &mut self,
        dir: Dir,
        t: &TcpInfo,
        class: Class,
    ) -> Result<Outcome, InvalidReason> {
        let old = self.state;
        let closing = matches!(
            old,
            TcpState::FinWait
                | TcpState::CloseWait
                | TcpState::LastAck
                | TcpState::TimeWait
                | TcpState::Close
        );
        if dir == Dir::Original {
            if class == Class::Syn && closing {
                return Ok(Outcome::Reopen);
            }
            let next = TABLE[0][class as usize][old as usize];
            if next == Iv {
                return Err(InvalidReason::InvalidTransition);
            }
            if !self.one_sided_plausible(t) {
                return Err(if class == Class::Rst {
                    InvalidReason::BadRst
                } else {
                    InvalidReason::OutOfWindow
                });
            }
            if class == Class::Syn {
                // A SYN on a live one-sided connection: accepted, changes nothing (as `Ig`).
                return Ok(Outcome::Accept);
            }
            self.one_sided_update(Dir::Original, t);
            if let To(s) = next {
                self.state = s;
            }
            return Ok(Outcome::Accept);
        }
        // The reply direction shows up.
        let c = self.dirs[0];
        let r = self.dirs[1];
        if class == Class::Rst {
            // Within the originator's receive window from its last acknowledgment.
            let right = r.maxend.max(c.maxack.wrapping_add(1));
            if before(t.seq, c.maxack) || after(t.seq, right) {
                return Err(InvalidReason::BadRst);
            }
            self.state = TcpState::Close;
            self.sides = Sides::PickedUp;
            return Ok(Outcome::Accept);
        }
        let next = match TABLE[1][class as usize][old as usize] {
            Iv => return Err(InvalidReason::InvalidTransition),
            Ig => None,
            To(s) => Some(s),
        };
        // Its data must be near what the originator acknowledged (a SYN-ACK: one before it),
        // its acknowledgment must not cover data the originator never sent.
        let seq_ok = !before(t.seq, r.end.wrapping_sub(ONE_SIDED_SLACK))
            && !after(t.seq, r.end.wrapping_add(ONE_SIDED_SLACK));
        let ack_ok = t.flags & F::ACK == 0
            || (!after(t.ack, c.end) && !before(t.ack, c.end.wrapping_sub(ONE_SIDED_SLACK)));
        if !seq_ok || !ack_ok {
            return Err(InvalidReason::OutOfWindow);
        }
        // Two-sided from now on; the reply direction starts from this segment.
        let end = seg_end(t);
        let mut d = TcpDir {
            end,
            maxend: end,
            maxwin: u32::from(t.window).max(1),
            ..TcpDir::default()
        };
        if class == Class::SynAck {
            if let Some(ws) = t.wscale {
                d.scale = ws.min(MAX_WSCALE);
                d.flags |= DIR_WSCALE;
            }
        } else {
            // Its scale was negotiated out of sight: assume the largest (only loosens).
            d.scale = MAX_WSCALE;
            d.maxwin = (u32::from(t.window) << MAX_WSCALE).max(1);
        }
        if t.flags & F::ACK != 0 {
            d.maxack = t.ack;
            d.flags |= DIR_MAXACK;
        }
        self.dirs[1] = d;
        self.sides = Sides::PickedUp;
        if let Some(s) = next {
            self.state = s;
        }
        Ok(Outcome::Accept)
    }

    /// RFC 5961 §3: a middlebox cannot send a challenge ACK, so it accepts a RST only when its
    /// sequence number falls inside what the receiver is prepared to accept: from the
    /// receiver's highest acknowledgment (or the sender's end if it never acknowledged) to the
    /// right edge of the receiver's window. In SYN_SENT a reply RST must acknowledge the SYN
    /// (RFC 793).
    fn rst_acceptable(&self, dir: Dir, t: &TcpInfo) -> bool {
        let s = &self.dirs[dir.idx()];
        let r = &self.dirs[dir.flip().idx()];
        if self.state == TcpState::SynSent {
            return match dir {
                // The server refuses the SYN: the RST must acknowledge it.
                Dir::Reply => t.flags & F::ACK != 0 && t.ack == r.end,
                // The client abandons its SYN: exactly its next sequence number.
                Dir::Original => t.seq == s.end,
            };
        }
        if s.maxwin == 0 {
            return false;
        }
        let left = if r.flags & DIR_MAXACK != 0 {
            r.maxack
        } else {
            s.end
        };
        let right = s.maxend.max(left.wrapping_add(1));
        !before(t.seq, left) && !after(t.seq, right)
    }
}

/// Run one segment of an existing connection through the state machine.
pub(crate) fn track(
    conn: &mut TcpConn,
    dir: Dir,
    t: &TcpInfo,
    profile: Profile,
) -> Result<Outcome, InvalidReason> {
    let class = classify(t.flags)?;
    if conn.sides == Sides::OneSided {
        return conn.track_one_sided(dir, t, class);
    }
    let old = conn.state;
    if profile == Profile::Asym
        && old == TcpState::SynSent
        && dir == Dir::Original
        && matches!(class, Class::Ack | Class::Fin)
    {
        return conn.establish_one_sided(t, class);
    }
    let next = TABLE[dir.idx()][class as usize][old as usize];
    // A connection that was one-sided has holes in its history: never enforced again.
    let enforce = match profile {
        Profile::Strict | Profile::Asym => conn.sides == Sides::Both,
        Profile::Liberal => false,
    };
    let new = match next {
        Iv => return Err(InvalidReason::InvalidTransition),
        // "Ignore" keeps the state, but only for a direction that already opened properly:
        // a bare ACK from a side whose SYN(-ACK) we never saw must not count as its reply.
        Ig if conn.dirs[dir.idx()].maxwin == 0 => return Err(InvalidReason::InvalidTransition),
        Ig => None,
        To(s) => Some(s),
    };

    match (class, dir, old) {
        (Class::Syn, Dir::Original, TcpState::TimeWait | TcpState::Close) => {
            return Ok(Outcome::Reopen);
        }
        (Class::Syn, Dir::Original, TcpState::SynSent) => {
            // Retransmitted SYN, possibly with a new initial sequence number (RFC 793 allows a
            // reinitialised TCP to pick one): start the original direction over.
            conn.dirs[0] = TcpDir::from_syn(t);
            return Ok(Outcome::Accept);
        }
        (Class::SynAck, _, _) => {
            // A SYN-ACK must acknowledge the other side's SYN exactly.
            let r = &conn.dirs[dir.flip().idx()];
            if enforce && r.maxwin != 0 && t.ack != r.end {
                return Err(InvalidReason::BadSynAck);
            }
        }
        (Class::Rst, _, _) => {
            if enforce && !conn.rst_acceptable(dir, t) {
                return Err(InvalidReason::BadRst);
            }
            conn.state = TcpState::Close;
            return Ok(Outcome::Accept);
        }
        _ => {}
    }

    if !conn.in_window(dir, t, enforce) && enforce {
        return Err(InvalidReason::OutOfWindow);
    }
    if let Some(s) = new {
        conn.state = s;
    }
    Ok(Outcome::Accept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(flags: u8, seq: u32, ack: u32, win: u16, len: u32) -> TcpInfo {
        TcpInfo {
            sport: 1,
            dport: 2,
            seq,
            ack,
            window: win,
            flags,
            wscale: None,
            payload_len: len,
        }
    }

    #[test]
    fn flag_combinations() {
        assert_eq!(classify(F::SYN | F::FIN), Err(InvalidReason::BadFlags));
        assert_eq!(classify(0), Err(InvalidReason::BadFlags));
        assert_eq!(classify(F::FIN), Err(InvalidReason::BadFlags));
        assert_eq!(classify(F::ACK | F::PSH | F::ECE), Ok(Class::Ack));
        assert_eq!(classify(F::SYN | F::ACK), Ok(Class::SynAck));
        assert_eq!(classify(F::RST | F::ACK), Ok(Class::Rst));
    }

    #[test]
    fn handshake_and_data() {
        let p = Profile::Strict;
        let mut c = TcpConn::new(&seg(F::SYN, 100, 0, 1000, 0), p).unwrap();
        let r = track(
            &mut c,
            Dir::Reply,
            &seg(F::SYN | F::ACK, 5000, 101, 2000, 0),
            p,
        );
        assert_eq!(r, Ok(Outcome::Accept));
        assert_eq!(c.state, TcpState::SynRecv);
        track(&mut c, Dir::Original, &seg(F::ACK, 101, 5001, 1000, 0), p).unwrap();
        assert_eq!(c.state, TcpState::Established);
        track(&mut c, Dir::Original, &seg(F::ACK, 101, 5001, 1000, 500), p).unwrap();
        // Far beyond the receiver's window.
        let r = track(
            &mut c,
            Dir::Original,
            &seg(F::ACK, 101 + 100_000, 5001, 1000, 10),
            p,
        );
        assert_eq!(r, Err(InvalidReason::OutOfWindow));
        let r = track(
            &mut c,
            Dir::Original,
            &seg(F::ACK, 101 + 100_000, 5001, 1000, 10),
            Profile::Liberal,
        );
        assert_eq!(r, Ok(Outcome::Accept));
    }
}
