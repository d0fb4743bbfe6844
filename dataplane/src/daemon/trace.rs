//! `swctl trace`: build a packet, translate it through a bridge's pipeline with tracing on,
//! execute the resulting datapath actions on a copy of the frame, and report every step and
//! every output frame — without sending anything and without touching rule counters.

use super::bridge::Bridge;
use super::handlers::{flow_error, now_ms};
use crate::execute::{execute, Egress, PacketBuf};
use crate::key::FlowKey;
use crate::packet::build::{frame_from_hex, metadata_from_match, packet_from_match};
use crate::packet::{extract, Layout};
use crate::xlate::trace::key_to_match;
use crate::xlate::{xlate_trace_from, XlateCtx, XlateOutput};
use control::flow::filter::parse_filter;
use control::flow::{format_actions, format_match, ParseMode};
use control::protocol::{ErrorKind, ErrorReply, TracePacket, TraceReply};
use std::fmt::Write as _;

/// Everything needed to trace one packet.
struct Prepared {
    frame: Vec<u8>,
    key: FlowKey,
    layout: Layout,
    start_table: u8,
}

fn bad_packet(message: String) -> ErrorReply {
    ErrorReply::new(ErrorKind::BadPacket, message)
}

fn prepare(packet: &TracePacket) -> Result<Prepared, ErrorReply> {
    match packet {
        TracePacket::Flow(text) => {
            let filter = parse_filter(text, ParseMode::Filter).map_err(|e| flow_error(1, e))?;
            let p = packet_from_match(&filter.spec.matches)
                .map_err(|e| bad_packet(format!("cannot build a packet from {text:?}: {e}")))?;
            Ok(Prepared {
                frame: p.frame,
                key: p.key,
                layout: p.layout,
                start_table: filter.spec.attrs.table,
            })
        }
        TracePacket::Hex { hex, metadata } => {
            let frame = frame_from_hex(hex).map_err(|e| bad_packet(format!("bad frame: {e}")))?;
            let mut key = FlowKey::zero();
            let layout = extract(&frame, &mut key)
                .map_err(|e| bad_packet(format!("frame is malformed ({}): {e}", e.name())))?;
            let mut start_table = 0;
            if !metadata.trim().is_empty() {
                let filter =
                    parse_filter(metadata, ParseMode::Filter).map_err(|e| flow_error(1, e))?;
                metadata_from_match(&filter.spec.matches, &mut key);
                start_table = filter.spec.attrs.table;
            }
            Ok(Prepared {
                frame,
                key,
                layout,
                start_table,
            })
        }
    }
}

/// Trace `packet` through `bridge`'s current pipeline; `ports` are the bridge's forwarding
/// ofports (where `flood` and `all` go).
pub fn trace_packet(
    bridge: &Bridge,
    packet: &TracePacket,
    ports: &[u32],
) -> Result<TraceReply, ErrorReply> {
    let p = prepare(packet)?;
    let pipeline = bridge.pipeline();
    let ctx = XlateCtx {
        pipeline: &pipeline,
        ports,
        now_ms: now_ms(),
        packet_len: p.frame.len() as u64,
    };
    let mut out = XlateOutput::new();
    let mut trace = xlate_trace_from(&ctx, &p.key, p.start_table, &mut out);
    trace.bridge = bridge.name().to_string();

    // Execute on a copy of the frame to show exactly what each output port would receive.
    let mut buf = PacketBuf::from_frame(&p.frame);
    let mut outputs: Vec<(Egress, Vec<u8>)> = Vec::new();
    let exec = execute(&out.actions, &mut buf, p.layout, &p.key, &mut |eg, b| {
        outputs.push((eg, b.data().to_vec()))
    });

    let mut text = trace.render(format_match, format_actions);
    let mut json_outputs = Vec::new();
    if let Err(e) = exec {
        let _ = writeln!(text, "Execution failed: {e} (the frame would be dropped)");
    }
    for (egress, frame) in &outputs {
        if let Egress::Ct(req) = egress {
            // The trace does not run conntrack (it must not create or touch connections).
            let mut line = format!(
                "Conntrack: ct({}zone={}) on the frame as it is here",
                if req.commit { "commit," } else { "" },
                req.zone
            );
            if req.nat.is_some() {
                // The trace has no connection to look up, so it cannot say what NAT would do.
                line.push_str("; NAT applied by conntrack (not simulated here)");
            }
            if let Some(t) = req.recirc.and_then(crate::xlate::recirc_table) {
                let _ = write!(
                    line,
                    "; recirculate to table {t} (trace that pass with table={t},ct_state=...)"
                );
            }
            let _ = writeln!(text, "{line}");
            json_outputs.push(serde_json::json!({
                "egress": "ct",
                "zone": req.zone,
                "commit": req.commit,
                "nat": req.nat.is_some(),
                "recirc_table": req.recirc.and_then(crate::xlate::recirc_table),
            }));
            continue;
        }
        let mut k = FlowKey::zero();
        let packet = match extract(frame, &mut k) {
            Ok(_) => format_match(&key_to_match(&k)),
            Err(e) => format!("(malformed: {})", e.name()),
        };
        let target = match egress {
            Egress::Port(p) => format!("port {p}"),
            Egress::Normal => {
                "NORMAL (decided per packet by the MAC learning table: see fdb-show)".to_string()
            }
            Egress::Ct(_) => continue,
            Egress::Controller { reason, .. } => {
                format!(
                    "controller (reason {}; counted, no controller yet)",
                    reason.name()
                )
            }
        };
        let _ = writeln!(text, "Output to {target}: {packet}");
        json_outputs.push(serde_json::json!({
            "egress": format!("{egress:?}"),
            "port": match egress { Egress::Port(p) => Some(*p), _ => None },
            "packet": packet,
            "frame_hex": hex(frame),
        }));
    }
    let mut detail = serde_json::to_value(&trace)
        .map_err(|e| ErrorReply::new(ErrorKind::Internal, format!("encoding trace: {e}")))?;
    detail["outputs"] = serde_json::Value::Array(json_outputs);
    detail["input_frame_hex"] = serde_json::Value::String(hex(&p.frame));
    detail["text"] = serde_json::Value::String(text.clone());
    Ok(TraceReply { text, detail })
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}
