//! `ndctl list -H` and `--media-errors`: DIMM health and bad blocks as ndctl prints them.

use crate::json::J;
use pmem_ndctl::health::sector_count;
use pmem_ndctl::{BadBlock, Dimm, DimmHealth, Namespace, Region};

/// The `health` object of `ndctl list -DH`, `None` when the DIMM has no SMART command
/// (ndctl then prints no `health` key). A failed query prints `health_state: unknown`.
pub fn dimm_health(d: &Dimm<'_>) -> Option<J> {
    match d.health() {
        Ok(None) => None,
        Ok(Some(h)) => Some(health(&h)),
        Err(_) => Some(J::Obj(vec![("health_state", J::Str("unknown".into()))])),
    }
}

fn health(h: &DimmHealth) -> J {
    let mut j = J::Obj(Vec::new());
    if let Some(s) = h.state {
        j.push("health_state", J::Str(s.as_str().into()));
    }
    if let Some(t) = h.temperature_celsius {
        j.push("temperature_celsius", J::Double(t));
    }
    if let Some(t) = h.controller_temperature_celsius {
        j.push("controller_temperature_celsius", J::Double(t));
    }
    if let Some(s) = h.spares_percentage {
        j.push("spares_percentage", J::Int(s.into()));
    }
    if let Some(a) = h.alarms {
        j.push("alarm_temperature", J::Bool(a.temperature));
        j.push(
            "alarm_controller_temperature",
            J::Bool(a.controller_temperature),
        );
        j.push("alarm_spares", J::Bool(a.spares));
    }
    if let Some(t) = h.thresholds {
        j.push(
            "alarm_enabled_media_temperature",
            J::Bool(t.temperature_celsius.is_some()),
        );
        if let Some(v) = t.temperature_celsius {
            j.push("temperature_threshold", J::Double(v));
        }
        j.push(
            "alarm_enabled_ctrl_temperature",
            J::Bool(t.controller_temperature_celsius.is_some()),
        );
        if let Some(v) = t.controller_temperature_celsius {
            j.push("controller_temperature_threshold", J::Double(v));
        }
        j.push(
            "alarm_enabled_spares",
            J::Bool(t.spares_percentage.is_some()),
        );
        if let Some(v) = t.spares_percentage {
            j.push("spares_threshold", J::Int(v.into()));
        }
    }
    if let Some(l) = h.life_used_percentage {
        j.push("life_used_percentage", J::Int(l.into()));
    }
    if let Some(s) = h.shutdown_state {
        j.push("shutdown_state", J::Str(s.as_str().into()));
    }
    if let Some(c) = h.unsafe_shutdown_count {
        j.push("shutdown_count", J::Int(c.into()));
    }
    j
}

/// One `badblocks` entry; `dimms_from` (the sector where the listed object starts in
/// its region) lets ndctl's `dimms` list be found, when ndctl prints one.
fn entry(region: &Region<'_>, b: &BadBlock, dimms_from: Option<u64>) -> J {
    let mut j = J::Obj(vec![
        ("offset", J::Num(b.offset)),
        ("length", J::Int(b.length.into())),
    ]);
    if let Some(base) = dimms_from {
        let in_region = BadBlock::new(base + b.offset, b.length);
        let names: Vec<J> = region
            .badblock_dimms(&in_region)
            .iter()
            .map(|d| J::Str(d.name()))
            .collect();
        if !names.is_empty() {
            j.push("dimms", J::Arr(names));
        }
    }
    j
}

/// Adds `badblock_count` (when any) and, with `--media-errors`, `badblocks` to `j`.
fn push(j: &mut J, region: &Region<'_>, bbs: &[BadBlock], dimms_from: Option<u64>, media: bool) {
    let count = sector_count(bbs);
    if count == 0 {
        return;
    }
    j.push("badblock_count", J::Num(count));
    if media {
        let list = bbs.iter().map(|b| entry(region, b, dimms_from)).collect();
        j.push("badblocks", J::Arr(list));
    }
}

/// A region's bad blocks, as `ndctl list -R [--media-errors]` adds them; whether it
/// added any. (ndctl lists nothing, not even the count, when `--media-errors` is asked
/// but the region's address is unreadable.)
pub fn push_region(j: &mut J, r: &Region<'_>, media: bool) -> bool {
    let bbs = r.badblocks();
    if bbs.is_empty() || (media && r.resource().is_none()) {
        return false;
    }
    push(j, r, &bbs, Some(0), media);
    true
}

/// A namespace's bad blocks, as `ndctl list -N [--media-errors]` adds them. ndctl
/// computes them per personality; a raw namespace shows its region's, when it has any.
pub fn push_namespace(j: &mut J, ns: &Namespace<'_>, media: bool) {
    let region = ns.region();
    let sector_of = |start: Option<u64>| {
        start
            .zip(region.resource())
            .map(|(s, r)| s.saturating_sub(r) / pmem_ndctl::health::SECTOR)
    };
    if let Some(pfn) = ns.pfn() {
        match pfn.resource() {
            Some(start) => push(j, &region, &ns.badblocks(), sector_of(Some(start)), media),
            // ndctl reads the block device's list only for --media-errors.
            None if media => push(j, &region, &ns.badblocks(), None, media),
            None => {}
        }
    } else if let Some(dax) = ns.dax() {
        push(
            j,
            &region,
            &ns.badblocks(),
            sector_of(dax.resource()),
            media,
        );
    } else if ns.btt().is_some() {
        // ndctl counts a sector namespace's bad blocks but does not list them.
        push(j, &region, &ns.badblocks(), None, false);
    } else {
        if !push_region(j, &region, media) && media {
            push(j, &region, &ns.badblocks(), None, media);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::health;
    use pmem_ndctl::{DimmHealth, HealthAlarms, HealthState, HealthThresholds, ShutdownState};

    /// Every field present, in the order (and number format) of ndctl's json-smart.c.
    #[test]
    fn full_health_prints_in_ndctls_key_order() {
        let mut h = DimmHealth::default();
        h.state = Some(HealthState::Critical);
        h.temperature_celsius = Some(41.25);
        h.controller_temperature_celsius = Some(50.0);
        h.spares_percentage = Some(90);
        let mut a = HealthAlarms::default();
        a.temperature = true;
        h.alarms = Some(a);
        let mut t = HealthThresholds::default();
        t.temperature_celsius = Some(80.0);
        t.spares_percentage = Some(10);
        h.thresholds = Some(t);
        h.life_used_percentage = Some(5);
        h.shutdown_state = Some(ShutdownState::Dirty);
        h.unsafe_shutdown_count = Some(3);
        let want = r#"{
  "health_state":"critical",
  "temperature_celsius":41.25,
  "controller_temperature_celsius":50.0,
  "spares_percentage":90,
  "alarm_temperature":true,
  "alarm_controller_temperature":false,
  "alarm_spares":false,
  "alarm_enabled_media_temperature":true,
  "temperature_threshold":80.0,
  "alarm_enabled_ctrl_temperature":false,
  "alarm_enabled_spares":true,
  "spares_threshold":10,
  "life_used_percentage":5,
  "shutdown_state":"dirty",
  "shutdown_count":3
}"#;
        assert_eq!(health(&h).pretty(), want);
    }
}
