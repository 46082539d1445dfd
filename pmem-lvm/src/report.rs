//! Typed rows of LVM's JSON reports (`vgs`, `lvs`, `pvs` with `--reportformat json --units b --nosuffix`).
//!
//! lvm2 prints `{"report": [{"vg": [{"vg_name": "...", "vg_size": "123"}]}]}`:
//! every value is a string, sizes are bytes, tags are comma-separated.

use serde_json::{Map, Value};

/// One kind of report row.
pub trait Row: Sized {
    /// The report's key (`vg`, `lv`, `pv`).
    const KEY: &'static str;
    /// The fields to ask for with `-o`.
    const FIELDS: &'static [&'static str];
    /// Reads a row, or says which field is missing or malformed.
    fn from_fields(f: &Fields<'_>) -> Result<Self, String>;
}

/// The fields of one row.
#[derive(Debug)]
pub struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// A text field.
    pub fn text(&self, k: &str) -> Result<String, String> {
        match self.0.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(format!("field {k} is not a string: {v}")),
            None => Err(format!("field {k} is missing")),
        }
    }

    /// A number field (LVM prints numbers as strings).
    pub fn number(&self, k: &str) -> Result<u64, String> {
        let s = self.text(k)?;
        s.trim()
            .parse()
            .map_err(|_| format!("field {k} is not a number: {s:?}"))
    }

    /// A tag list field.
    pub fn tags(&self, k: &str) -> Result<Vec<String>, String> {
        Ok(self
            .text(k)?
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect())
    }
}

/// Decodes every row of `R`'s report in `json`. Never panics, whatever the input.
pub fn decode<R: Row>(json: &str) -> Result<Vec<R>, String> {
    let v: Value = serde_json::from_str(json.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let reports = v
        .get("report")
        .and_then(Value::as_array)
        .ok_or("no \"report\" array")?;
    let mut rows = Vec::new();
    for r in reports {
        let Some(list) = r.get(R::KEY) else { continue };
        let list = list
            .as_array()
            .ok_or_else(|| format!("\"{}\" is not an array", R::KEY))?;
        for row in list {
            let obj = row
                .as_object()
                .ok_or_else(|| format!("a \"{}\" row is not an object", R::KEY))?;
            rows.push(R::from_fields(&Fields(obj))?);
        }
    }
    Ok(rows)
}

/// A row of `vgs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgRow {
    /// VG name.
    pub name: String,
    /// Size, bytes.
    pub size: u64,
    /// Free, bytes.
    pub free: u64,
    /// Extent size, bytes.
    pub extent_size: u64,
    /// Tags.
    pub tags: Vec<String>,
    /// Number of PVs.
    pub pv_count: u64,
}

impl Row for VgRow {
    const KEY: &'static str = "vg";
    const FIELDS: &'static [&'static str] = &[
        "vg_name",
        "vg_size",
        "vg_free",
        "vg_extent_size",
        "vg_tags",
        "pv_count",
    ];
    fn from_fields(f: &Fields<'_>) -> Result<Self, String> {
        Ok(VgRow {
            name: f.text("vg_name")?,
            size: f.number("vg_size")?,
            free: f.number("vg_free")?,
            extent_size: f.number("vg_extent_size")?,
            tags: f.tags("vg_tags")?,
            pv_count: f.number("pv_count")?,
        })
    }
}

/// A row of `lvs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvRow {
    /// LV name.
    pub name: String,
    /// Its VG.
    pub vg: String,
    /// Size, bytes.
    pub size: u64,
    /// Tags.
    pub tags: Vec<String>,
    /// Device path, e.g. `/dev/vg/lv` (empty when inactive).
    pub path: String,
}

impl Row for LvRow {
    const KEY: &'static str = "lv";
    const FIELDS: &'static [&'static str] =
        &["lv_name", "vg_name", "lv_size", "lv_tags", "lv_path"];
    fn from_fields(f: &Fields<'_>) -> Result<Self, String> {
        Ok(LvRow {
            name: f.text("lv_name")?,
            vg: f.text("vg_name")?,
            size: f.number("lv_size")?,
            tags: f.tags("lv_tags")?,
            path: f.text("lv_path")?,
        })
    }
}

/// A row of `pvs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvRow {
    /// Device path, e.g. `/dev/pmem0.1`.
    pub name: String,
    /// Its VG (empty when in none).
    pub vg: String,
    /// Size, bytes.
    pub size: u64,
    /// Free, bytes.
    pub free: u64,
    /// Tags.
    pub tags: Vec<String>,
}

impl Row for PvRow {
    const KEY: &'static str = "pv";
    const FIELDS: &'static [&'static str] =
        &["pv_name", "vg_name", "pv_size", "pv_free", "pv_tags"];
    fn from_fields(f: &Fields<'_>) -> Result<Self, String> {
        Ok(PvRow {
            name: f.text("pv_name")?,
            vg: f.text("vg_name")?,
            size: f.number("pv_size")?,
            free: f.number("pv_free")?,
            tags: f.tags("pv_tags")?,
        })
    }
}
