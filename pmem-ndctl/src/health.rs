//! Media health: what a DIMM's SMART data says (health state, temperatures, spares, life used,
//! shutdowns) and the bad blocks of regions and namespaces, as plain values.
//!
//! The reads live with their objects ([`Dimm::health`](crate::Dimm::health),
//! [`Region::badblocks`](crate::Region::badblocks),
//! [`Namespace::badblocks`](crate::Namespace::badblocks)); this module holds the types and
//! the decoding, which need no hardware and are tested here.

use ndctl_sys as sys;
use std::fmt;

/// A DIMM's overall health as its SMART data reports it (`health_state` in `ndctl list -H`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum HealthState {
    /// No problem reported.
    Ok,
    /// A problem that needs attention but loses no data yet (`non-critical`).
    NonCritical,
    /// Data is at risk (`critical`).
    Critical,
    /// The DIMM has failed (`fatal`).
    Fatal,
}

impl HealthState {
    /// The name ndctl prints.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ok => "ok",
            HealthState::NonCritical => "non-critical",
            HealthState::Critical => "critical",
            HealthState::Fatal => "fatal",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the DIMM saw its last power loss as a clean shutdown (`shutdown_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum ShutdownState {
    /// The last shutdown flushed everything.
    Clean,
    /// The last shutdown may have lost writes in flight (an unsafe, "dirty" shutdown).
    Dirty,
}

impl ShutdownState {
    /// The name ndctl prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownState::Clean => "clean",
            ShutdownState::Dirty => "dirty",
        }
    }
}

/// Which SMART alarms have tripped (`alarm_*` in `ndctl list -H`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HealthAlarms {
    /// The media temperature crossed its threshold.
    pub temperature: bool,
    /// The controller temperature crossed its threshold.
    pub controller_temperature: bool,
    /// The spare capacity fell below its threshold.
    pub spares: bool,
}

/// The alarm thresholds a DIMM is set to; `None` where that alarm is disabled
/// (`alarm_enabled_*` and `*_threshold` in `ndctl list -H`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HealthThresholds {
    /// Media temperature alarm threshold, °C.
    pub temperature_celsius: Option<f64>,
    /// Controller temperature alarm threshold, °C.
    pub controller_temperature_celsius: Option<f64>,
    /// Spare capacity alarm threshold, percent.
    pub spares_percentage: Option<u32>,
}

/// A DIMM's SMART health. Each field is `None` when the DIMM's family does not report it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct DimmHealth {
    /// The overall health state.
    pub state: Option<HealthState>,
    /// Media temperature, °C.
    pub temperature_celsius: Option<f64>,
    /// Controller temperature, °C.
    pub controller_temperature_celsius: Option<f64>,
    /// Spare capacity left, percent.
    pub spares_percentage: Option<u32>,
    /// Alarms that have tripped.
    pub alarms: Option<HealthAlarms>,
    /// Alarm thresholds (`None` when the DIMM does not answer the threshold query).
    pub thresholds: Option<HealthThresholds>,
    /// Share of the rated endurance used, percent.
    pub life_used_percentage: Option<u32>,
    /// How the last shutdown went.
    pub shutdown_state: Option<ShutdownState>,
    /// Number of unsafe (dirty) shutdowns the DIMM has counted over its life.
    pub unsafe_shutdown_count: Option<u32>,
}

/// The fields of one SMART answer, as libndctl returns them (undecoded).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SmartFields {
    pub flags: u32,
    pub health: u32,
    pub temperature: u32,
    pub ctrl_temperature: u32,
    pub spares: u32,
    pub alarm_flags: u32,
    pub life_used: u32,
    pub shutdown_state: u32,
    pub shutdown_count: u32,
}

/// The fields of one SMART threshold answer, undecoded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThresholdFields {
    pub alarm_control: u32,
    pub temperature: u32,
    pub ctrl_temperature: u32,
    pub spares: u32,
}

/// Decodes a SMART temperature: 1/16 °C units in bits 14..0, bit 15 the sign.
pub fn decode_temperature(raw: u32) -> f64 {
    let t = f64::from(raw & 0x7fff) / 16.0;
    if raw & 0x8000 != 0 {
        -t
    } else {
        t
    }
}

impl DimmHealth {
    /// Decodes a SMART answer (and the threshold answer, when there was one), keeping
    /// only the fields the answer's validity flags vouch for.
    pub(crate) fn decode(s: SmartFields, t: Option<ThresholdFields>) -> Self {
        let valid = |bit: u32| s.flags & bit != 0;
        let state = valid(sys::ND_SMART_HEALTH_VALID).then_some({
            if s.health & sys::ND_SMART_FATAL_HEALTH != 0 {
                HealthState::Fatal
            } else if s.health & sys::ND_SMART_CRITICAL_HEALTH != 0 {
                HealthState::Critical
            } else if s.health & sys::ND_SMART_NON_CRITICAL_HEALTH != 0 {
                HealthState::NonCritical
            } else {
                HealthState::Ok
            }
        });
        let thresholds = t.map(|t| {
            let on = |bit: u32| t.alarm_control & bit != 0;
            HealthThresholds {
                temperature_celsius: on(sys::ND_SMART_TEMP_TRIP)
                    .then(|| decode_temperature(t.temperature)),
                controller_temperature_celsius: on(sys::ND_SMART_CTEMP_TRIP)
                    .then(|| decode_temperature(t.ctrl_temperature)),
                spares_percentage: on(sys::ND_SMART_SPARE_TRIP).then_some(t.spares),
            }
        });
        DimmHealth {
            state,
            temperature_celsius: valid(sys::ND_SMART_TEMP_VALID)
                .then(|| decode_temperature(s.temperature)),
            controller_temperature_celsius: valid(sys::ND_SMART_CTEMP_VALID)
                .then(|| decode_temperature(s.ctrl_temperature)),
            spares_percentage: valid(sys::ND_SMART_SPARES_VALID).then_some(s.spares),
            alarms: valid(sys::ND_SMART_ALARM_VALID).then_some(HealthAlarms {
                temperature: s.alarm_flags & sys::ND_SMART_TEMP_TRIP != 0,
                controller_temperature: s.alarm_flags & sys::ND_SMART_CTEMP_TRIP != 0,
                spares: s.alarm_flags & sys::ND_SMART_SPARE_TRIP != 0,
            }),
            thresholds,
            life_used_percentage: valid(sys::ND_SMART_USED_VALID).then_some(s.life_used),
            shutdown_state: valid(sys::ND_SMART_SHUTDOWN_VALID).then_some(
                if s.shutdown_state != 0 {
                    ShutdownState::Dirty
                } else {
                    ShutdownState::Clean
                },
            ),
            unsafe_shutdown_count: valid(sys::ND_SMART_SHUTDOWN_COUNT_VALID)
                .then_some(s.shutdown_count),
        }
    }

    /// Whether nothing in the answer calls for attention: the state (when reported) is
    /// [`HealthState::Ok`] and no alarm has tripped.
    pub fn is_healthy(&self) -> bool {
        self.state.map_or(true, |s| s == HealthState::Ok)
            && self.alarms.map_or(true, |a| {
                !(a.temperature || a.controller_temperature || a.spares)
            })
    }
}

/// The size of the sectors bad blocks are counted in.
pub const SECTOR: u64 = 512;

/// A run of bad sectors, as the kernel's `badblocks` files and ndctl report it: an offset
/// and a length in 512-byte sectors, relative to the object it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct BadBlock {
    /// First bad sector.
    pub offset: u64,
    /// Number of bad sectors.
    pub length: u32,
}

impl BadBlock {
    /// A run of `length` bad sectors from sector `offset`.
    pub fn new(offset: u64, length: u32) -> Self {
        BadBlock { offset, length }
    }

    /// The run as a byte range `(start, length)`.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.offset.saturating_mul(SECTOR),
            u64::from(self.length) * SECTOR,
        )
    }
}

/// Sum of the lengths, in sectors (`badblock_count` in `ndctl list`).
pub fn sector_count(blocks: &[BadBlock]) -> u64 {
    blocks.iter().map(|b| u64::from(b.length)).sum()
}

/// The parts of `region_blocks` (relative to a region starting at byte `region_start`)
/// that fall into the device `[dev_start, dev_start + dev_size)`, relative to the device.
/// This is how ndctl places a region's bad blocks in an fsdax or devdax namespace's data.
pub fn clip_to_device(
    region_blocks: &[BadBlock],
    region_start: u64,
    dev_start: u64,
    dev_size: u64,
) -> Vec<BadBlock> {
    let dev_end = dev_start.saturating_add(dev_size);
    region_blocks
        .iter()
        .filter_map(|b| {
            let (off, len) = b.bytes();
            let begin = region_start.saturating_add(off).max(dev_start);
            let end = region_start
                .saturating_add(off)
                .saturating_add(len)
                .min(dev_end);
            (begin < end).then(|| {
                let length = u32::try_from((end - begin) / SECTOR).unwrap_or(u32::MAX);
                BadBlock::new((begin - dev_start) / SECTOR, length)
            })
        })
        .filter(|b| b.length > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_decode_like_libndctl() {
        for raw in [
            0u32,
            16,
            25 * 16 + 8,
            0x8000 | 40,
            0x7fff,
            0x8000 | 0x7fff,
            1,
        ] {
            // SAFETY: a pure function of its argument.
            let theirs = unsafe { sys::ndctl_decode_smart_temperature(raw) };
            assert_eq!(decode_temperature(raw), theirs, "raw {raw:#x}");
        }
        assert_eq!(decode_temperature(25 * 16 + 8), 25.5);
        assert_eq!(decode_temperature(0x8000 | 40), -2.5);
    }

    #[test]
    fn only_valid_fields_are_kept() {
        let none = DimmHealth::decode(SmartFields::default(), None);
        assert_eq!(none, DimmHealth::default());
        assert!(none.is_healthy());

        let s = SmartFields {
            flags: sys::ND_SMART_HEALTH_VALID
                | sys::ND_SMART_SPARES_VALID
                | sys::ND_SMART_SHUTDOWN_COUNT_VALID
                | sys::ND_SMART_SHUTDOWN_VALID,
            health: sys::ND_SMART_CRITICAL_HEALTH | sys::ND_SMART_NON_CRITICAL_HEALTH,
            temperature: 30 * 16,
            spares: 93,
            shutdown_state: 1,
            shutdown_count: 7,
            life_used: 12,
            ..SmartFields::default()
        };
        let h = DimmHealth::decode(s, None);
        assert_eq!(h.state, Some(HealthState::Critical));
        assert_eq!(h.temperature_celsius, None, "temperature not flagged valid");
        assert_eq!(h.life_used_percentage, None, "life used not flagged valid");
        assert_eq!(h.spares_percentage, Some(93));
        assert_eq!(h.shutdown_state, Some(ShutdownState::Dirty));
        assert_eq!(h.unsafe_shutdown_count, Some(7));
        assert!(!h.is_healthy());
    }

    #[test]
    fn worst_health_bit_wins_and_alarms_and_thresholds_decode() {
        let s = SmartFields {
            flags: sys::ND_SMART_HEALTH_VALID
                | sys::ND_SMART_ALARM_VALID
                | sys::ND_SMART_TEMP_VALID,
            health: sys::ND_SMART_FATAL_HEALTH | sys::ND_SMART_NON_CRITICAL_HEALTH,
            alarm_flags: sys::ND_SMART_SPARE_TRIP,
            temperature: 41 * 16 + 4,
            ..SmartFields::default()
        };
        let t = ThresholdFields {
            alarm_control: sys::ND_SMART_TEMP_TRIP | sys::ND_SMART_SPARE_TRIP,
            temperature: 80 * 16,
            ctrl_temperature: 99 * 16,
            spares: 10,
        };
        let h = DimmHealth::decode(s, Some(t));
        assert_eq!(h.state, Some(HealthState::Fatal));
        assert_eq!(h.temperature_celsius, Some(41.25));
        let a = h.alarms.expect("alarms valid");
        assert!(a.spares && !a.temperature && !a.controller_temperature);
        let th = h.thresholds.expect("thresholds given");
        assert_eq!(th.temperature_celsius, Some(80.0));
        assert_eq!(th.controller_temperature_celsius, None, "alarm disabled");
        assert_eq!(th.spares_percentage, Some(10));
        let ok = DimmHealth::decode(
            SmartFields {
                flags: sys::ND_SMART_HEALTH_VALID,
                ..SmartFields::default()
            },
            None,
        );
        assert_eq!(ok.state.map(HealthState::as_str), Some("ok"));
        assert!(ok.is_healthy());
    }

    #[test]
    fn region_bad_blocks_clip_to_a_device() {
        let region_start = 0x1_0000_0000;
        // Device: 2 MiB into the region, 4 MiB long.
        let dev_start = region_start + (2 << 20);
        let dev_size = 4 << 20;
        let first_dev_sector = (2 << 20) / SECTOR;
        let blocks = [
            BadBlock::new(0, 8),                         // before the device
            BadBlock::new(first_dev_sector - 4, 8),      // straddles its start
            BadBlock::new(first_dev_sector + 100, 1),    // inside
            BadBlock::new(first_dev_sector + 8190, 10),  // straddles its end
            BadBlock::new(first_dev_sector + 8192, 100), // after it
        ];
        let clipped = clip_to_device(&blocks, region_start, dev_start, dev_size);
        assert_eq!(
            clipped,
            vec![
                BadBlock::new(0, 4),
                BadBlock::new(100, 1),
                BadBlock::new(8190, 2)
            ]
        );
        assert_eq!(sector_count(&clipped), 7);
        assert_eq!(BadBlock::new(3, 2).bytes(), (1536, 1024));
        assert!(clip_to_device(&blocks, region_start, dev_start, 0).is_empty());
    }
}
