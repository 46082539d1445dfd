//! JSON the way ndctl prints it (json-c's pretty format), and ndctl's objects as JSON.

use pmem_ndctl::{DaxRegionInfo, Dimm, Mapping, NamespaceInfo, Region};

/// A JSON value with its keys in insertion order, as json-c keeps them.
pub enum J {
    Str(String),
    Num(u64),
    Int(i64),
    /// A double, printed as json-c prints it (`%.17g`, with `.0` added to whole numbers).
    Double(f64),
    Bool(bool),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    /// Adds `key` to an object.
    pub fn push(&mut self, key: &'static str, v: J) {
        if let J::Obj(o) = self {
            o.push((key, v));
        }
    }

    /// Prints with json-c's `JSON_C_TO_STRING_PRETTY` layout: two-space
    /// indent, no space after the colon, slashes escaped.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| out.push_str(&"  ".repeat(d));
        match self {
            J::Str(s) => escape(out, s),
            J::Num(n) => out.push_str(&n.to_string()),
            J::Int(n) => out.push_str(&n.to_string()),
            J::Double(d) => out.push_str(&double(*d)),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Arr(items) => {
                out.push_str("[\n");
                for (i, v) in items.iter().enumerate() {
                    pad(out, depth + 1);
                    v.write(out, depth + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, depth);
                out.push(']');
            }
            J::Obj(fields) => {
                out.push_str("{\n");
                for (i, (k, v)) in fields.iter().enumerate() {
                    pad(out, depth + 1);
                    escape(out, k);
                    out.push(':');
                    v.write(out, depth + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }
}

/// json-c's rendering of a double. Rust's shortest round-trip form equals `%.17g` for the
/// values printed here (sixteenths of a degree); whole numbers get json-c's `.0`.
fn double(d: f64) -> String {
    let s = d.to_string();
    if d.is_finite() && !s.contains('.') && !s.contains('e') {
        s + ".0"
    } else {
        s
    }
}

fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn s(v: impl Into<String>) -> J {
    J::Str(v.into())
}

/// A DIMM as `ndctl list -D` prints it; with `health`, as `ndctl list -DH` does.
pub fn dimm(d: &Dimm<'_>, health: bool) -> J {
    let mut j = J::Obj(vec![("dev", s(d.name()))]);
    if let Some(id) = d.unique_id() {
        j.push("id", s(id));
    }
    if let Some(h) = d.handle() {
        j.push("handle", J::Num(h.into()));
    }
    if let Some(p) = d.phys_id() {
        j.push("phys_id", J::Num(p.into()));
    }
    if !d.is_enabled() {
        j.push("state", s("disabled"));
    }
    let f = d.flags();
    for (set, key) in [
        (f.failed_map, "flag_failed_map"),
        (f.failed_save, "flag_failed_save"),
        (f.failed_arm, "flag_failed_arm"),
        (f.failed_restore, "flag_failed_restore"),
        (f.failed_flush, "flag_failed_flush"),
        (f.smart_event, "flag_smart_event"),
    ] {
        if set {
            j.push(key, J::Bool(true));
        }
    }
    if let Some(sec) = d.security() {
        j.push("security", s(sec.as_str()));
    }
    if d.security_frozen() {
        j.push("security_frozen", J::Bool(true));
    }
    if let Some(h) = health.then(|| crate::health::dimm_health(d)).flatten() {
        j.push("health", h);
    }
    j
}

fn mapping(m: &Mapping) -> J {
    let mut j = J::Obj(vec![
        ("dimm", s(m.dimm.clone())),
        ("offset", J::Num(m.offset)),
        ("length", J::Num(m.length)),
    ]);
    if let Some(p) = m.position {
        j.push("position", J::Int(p.into()));
    }
    j
}

/// A region as `ndctl list -R` prints it; `mappings` are those of the listed DIMMs;
/// `media` lists its bad blocks (`--media-errors`).
pub fn region(
    r: &Region<'_>,
    mappings: Option<Vec<Mapping>>,
    media: bool,
) -> Result<J, pmem_ndctl::Error> {
    let mut j = J::Obj(vec![("dev", s(r.name())), ("size", J::Num(r.size()))]);
    if let Some(a) = r.align() {
        j.push("align", J::Num(a));
    }
    j.push("available_size", J::Num(r.available_size()));
    if let Some(e) = r.max_available_extent() {
        j.push("max_available_extent", J::Num(e));
    }
    j.push("type", s(r.region_type()?.as_str()));
    if let Some(i) = r.iset_id() {
        j.push("iset_id", J::Num(i));
    }
    if let Some(m) = mappings.filter(|m| !m.is_empty()) {
        j.push("mappings", J::Arr(m.iter().map(mapping).collect()));
    }
    if !r.is_enabled() {
        j.push("state", s("disabled"));
    }
    crate::health::push_region(&mut j, r, media);
    j.push("persistence_domain", s(r.persistence_domain().as_str()));
    Ok(j)
}

/// A namespace as `ndctl list -N` prints it; with `dax_region`, a devdax
/// namespace carries its `daxregion` (as `create-namespace` prints it).
pub fn namespace(n: &NamespaceInfo, dax_region: Option<DaxRegionInfo>) -> J {
    let mut j = J::Obj(vec![
        ("dev", s(n.dev.clone())),
        ("mode", s(n.mode.as_str())),
    ]);
    if let Some(m) = n.map {
        j.push("map", s(m.as_str()));
    }
    j.push("size", J::Num(n.size));
    if let Some(u) = &n.uuid {
        j.push("uuid", s(u.clone()));
    }
    match dax_region {
        Some(d) => j.push("daxregion", daxregion(&d)),
        None => {
            if let Some(c) = &n.chardev {
                j.push("chardev", s(c.clone()));
            }
        }
    }
    if let Some(ss) = n.sector_size {
        j.push("sector_size", J::Int(ss.into()));
    }
    if let Some(a) = n.align {
        j.push("align", J::Num(a));
    }
    if let Some(b) = &n.blockdev {
        j.push("blockdev", s(b.clone()));
    }
    if !n.active {
        j.push("state", s("disabled"));
    }
    if let Some(name) = &n.name {
        j.push("name", s(name.clone()));
    }
    j
}

fn daxregion(d: &DaxRegionInfo) -> J {
    let mut j = J::Obj(vec![("id", J::Int(d.id.into()))]);
    if let Some(size) = d.size {
        j.push("size", J::Num(size));
    }
    if d.available_size != 0 {
        j.push("available_size", J::Num(d.available_size));
    }
    if let Some(a) = d.align {
        j.push("align", J::Num(a));
    }
    let devs: Vec<J> = d
        .devices
        .iter()
        .filter(|dev| dev.size != 0)
        .map(|dev| {
            let mut o = J::Obj(vec![
                ("chardev", s(dev.chardev.clone())),
                ("size", J::Num(dev.size)),
            ]);
            if let Some(t) = dev.target_node {
                o.push("target_node", J::Int(t.into()));
            }
            if let Some(a) = dev.align {
                o.push("align", J::Num(a));
            }
            o.push(
                "mode",
                s(if dev.system_ram {
                    "system-ram"
                } else {
                    "devdax"
                }),
            );
            if !dev.enabled {
                o.push("state", s("disabled"));
            }
            o
        })
        .collect();
    if !devs.is_empty() {
        j.push("devices", J::Arr(devs));
    }
    j
}

#[cfg(test)]
mod tests {
    use super::{double, J};

    #[test]
    fn doubles_print_like_json_c() {
        assert_eq!(double(25.0), "25.0");
        assert_eq!(double(41.25), "41.25");
        assert_eq!(double(-2.5), "-2.5");
        assert_eq!(double(0.0625), "0.0625");
        let j = J::Obj(vec![("t", J::Double(30.0)), ("h", J::Obj(Vec::new()))]);
        assert_eq!(j.pretty(), "{\n  \"t\":30.0,\n  \"h\":{\n  }\n}");
    }
}
