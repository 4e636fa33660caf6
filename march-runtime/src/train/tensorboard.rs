//! A minimal TensorBoard event-file writer: scalars and text.
//!
//! The file is a sequence of TFRecords (length u64 LE, masked CRC-32C of the
//! length, payload, masked CRC-32C of the payload); each payload is an `Event`
//! protobuf, encoded by hand (wall_time = 1, step = 2, file_version = 3,
//! summary = 5; `Summary.value` = 1; `Value.tag` = 1, `simple_value` = 2,
//! `tensor` = 8, `metadata` = 9; `SummaryMetadata.plugin_data` = 1,
//! `PluginData.plugin_name` = 1; `TensorProto.dtype` = 1 (`DT_STRING` = 7),
//! `string_val` = 8). Text is what TensorBoard's text plugin reads: a
//! string tensor under the plugin name `text`, rendered as Markdown.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn masked(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xA282_EAD8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_bytes(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(((field << 3) | 2) as u64, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Writes `events.out.tfevents.<secs>.<host>` in a directory.
pub struct EventWriter {
    file: BufWriter<File>,
    pub path: PathBuf,
}

impl EventWriter {
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "march".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}",
            now.as_secs(),
            std::process::id()
        ));
        let mut w = EventWriter {
            file: BufWriter::new(File::create(&path)?),
            path,
        };
        let mut event = Vec::new();
        event.push(0x09);
        event.extend_from_slice(&now.as_secs_f64().to_le_bytes());
        field_bytes(3, b"brain.Event:2", &mut event);
        w.record(&event)?;
        w.file.flush()?;
        Ok(w)
    }

    fn record(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let len = (payload.len() as u64).to_le_bytes();
        self.file.write_all(&len)?;
        self.file.write_all(&masked(crc32c(&len)).to_le_bytes())?;
        self.file.write_all(payload)?;
        self.file.write_all(&masked(crc32c(payload)).to_le_bytes())
    }

    /// One scalar at `step`.
    pub fn scalar(&mut self, tag: &str, step: u64, value: f32) -> std::io::Result<()> {
        let mut v = Vec::new();
        field_bytes(1, tag.as_bytes(), &mut v);
        v.push(0x15);
        v.extend_from_slice(&value.to_le_bytes());
        self.value(&v, step)
    }

    /// Markdown `text` at `step` (TensorBoard's text tab).
    pub fn text(&mut self, tag: &str, step: u64, text: &str) -> std::io::Result<()> {
        let mut plugin = Vec::new();
        field_bytes(1, b"text", &mut plugin);
        let mut metadata = Vec::new();
        field_bytes(1, &plugin, &mut metadata);
        // a rank-0 DT_STRING tensor
        let mut tensor = vec![0x08, 7];
        field_bytes(8, text.as_bytes(), &mut tensor);
        let mut v = Vec::new();
        field_bytes(1, tag.as_bytes(), &mut v);
        field_bytes(9, &metadata, &mut v);
        field_bytes(8, &tensor, &mut v);
        self.value(&v, step)
    }

    /// An event at `step` holding one encoded `Summary.Value`.
    fn value(&mut self, v: &[u8], step: u64) -> std::io::Result<()> {
        let mut summary = Vec::new();
        field_bytes(1, v, &mut summary);
        let mut event = Vec::new();
        event.push(0x09);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        event.extend_from_slice(&now.as_secs_f64().to_le_bytes());
        if step != 0 {
            event.push(0x10);
            varint(step, &mut event);
        }
        field_bytes(5, &summary, &mut event);
        self.record(&event)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Read back every scalar of an event file: (tag, step, value). For tests
/// and reports; checks every CRC.
pub fn read_scalars(path: &Path) -> std::io::Result<Vec<(String, u64, f32)>> {
    Ok(events(path)?
        .iter()
        .filter_map(|e| parse_scalar(e))
        .collect())
}

/// Read back every text summary of an event file: (tag, step, text).
pub fn read_texts(path: &Path) -> std::io::Result<Vec<(String, u64, String)>> {
    Ok(events(path)?.iter().filter_map(|e| parse_text(e)).collect())
}

/// The `Event` payloads of an event file, every CRC checked.
fn events(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path)?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes = bytes
            .get(at..at + 8)
            .ok_or_else(|| bad("truncated length"))?;
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(
            bytes
                .get(at + 8..at + 12)
                .ok_or_else(|| bad("truncated"))?
                .try_into()
                .unwrap(),
        );
        if crc != masked(crc32c(len_bytes)) {
            return Err(bad("bad length CRC"));
        }
        let payload = bytes
            .get(at + 12..at + 12 + len)
            .ok_or_else(|| bad("truncated payload"))?;
        let pcrc = u32::from_le_bytes(
            bytes
                .get(at + 12 + len..at + 16 + len)
                .ok_or_else(|| bad("truncated"))?
                .try_into()
                .unwrap(),
        );
        if pcrc != masked(crc32c(payload)) {
            return Err(bad("bad payload CRC"));
        }
        out.push(payload.to_vec());
        at += 16 + len;
    }
    Ok(out)
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Fields of a protobuf message: (field, wire type, bytes or value).
fn fields(b: &[u8]) -> Option<Vec<(u64, u64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let key = read_varint(b, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        let val = match wire {
            0 => read_varint(b, &mut at)?.to_le_bytes().to_vec(),
            1 => {
                at += 8;
                b.get(at - 8..at)?.to_vec()
            }
            2 => {
                let n = read_varint(b, &mut at)? as usize;
                at += n;
                b.get(at - n..at)?.to_vec()
            }
            5 => {
                at += 4;
                b.get(at - 4..at)?.to_vec()
            }
            _ => return None,
        };
        out.push((field, wire, val));
    }
    Some(out)
}

/// An event's step, and the fields and tag of its summary's value.
#[allow(clippy::type_complexity)]
fn summary_value(event: &[u8]) -> Option<(u64, Vec<(u64, u64, Vec<u8>)>, String)> {
    let f = fields(event)?;
    let step = f
        .iter()
        .find(|x| x.0 == 2)
        .map(|x| u64::from_le_bytes(x.2[..8].try_into().unwrap()))
        .unwrap_or(0);
    let summary = &f.iter().find(|x| x.0 == 5)?.2;
    let value = &fields(summary)?.into_iter().find(|x| x.0 == 1)?.2;
    let vf = fields(value)?;
    let tag = String::from_utf8(vf.iter().find(|x| x.0 == 1)?.2.clone()).ok()?;
    Some((step, vf, tag))
}

fn parse_scalar(event: &[u8]) -> Option<(String, u64, f32)> {
    let (step, vf, tag) = summary_value(event)?;
    let v = f32::from_le_bytes(vf.iter().find(|x| x.0 == 2)?.2[..4].try_into().ok()?);
    Some((tag, step, v))
}

fn parse_text(event: &[u8]) -> Option<(String, u64, String)> {
    let (step, vf, tag) = summary_value(event)?;
    let metadata = fields(&vf.iter().find(|x| x.0 == 9)?.2)?;
    let plugin = fields(&metadata.iter().find(|x| x.0 == 1)?.2)?;
    if plugin.iter().find(|x| x.0 == 1)?.2 != b"text" {
        return None;
    }
    let tensor = fields(&vf.iter().find(|x| x.0 == 8)?.2)?;
    let text = String::from_utf8(tensor.iter().find(|x| x.0 == 8)?.2.clone()).ok()?;
    Some((tag, step, text))
}
