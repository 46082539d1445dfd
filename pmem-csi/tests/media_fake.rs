//! Tier 1, against a fake: media health in the driver. QEMU's NVDIMMs report no SMART and
//! no platform media errors, so a fake device manager (the simulator, plus a media report
//! naming one volume's device as holding bad blocks and nmem0 as critical) drives the
//! abnormal VolumeCondition of ListVolumes / ControllerGetVolume and the media gauges.

mod common;

use common::*;
use pmem_csi::error::Result as CsiResult;
use pmem_csi::manager::{Device, DeviceManager, NamespaceManager};
use pmem_csi::media::{DimmMedia, MediaReport};
use pmem_csi::proto::*;
use std::sync::{Arc, Mutex};

/// The simulator, with a media report: the devices of the volumes in `bad` hold 8 bad
/// sectors; nmem0 is critical with 3 unsafe shutdowns; nmem1 answers no SMART.
struct FakeMediaManager {
    inner: Arc<dyn DeviceManager>,
    bad: Mutex<Vec<String>>,
}

impl DeviceManager for FakeMediaManager {
    forward_to_inner!(
        create,
        can_update_record,
        update_record,
        min_size,
        delete,
        expand,
        list,
        left_out,
        capacity
    );
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn can_expand(&self) -> bool {
        false
    }
    fn media(&self, devices: &[Device]) -> CsiResult<MediaReport> {
        let mut r = MediaReport {
            dimms: vec![
                DimmMedia {
                    dimm: "nmem0".into(),
                    state: Some("critical".into()),
                    healthy: false,
                    unsafe_shutdowns: Some(3),
                    temperature_celsius: Some(41.5),
                },
                DimmMedia {
                    dimm: "nmem1".into(),
                    healthy: true,
                    ..DimmMedia::default()
                },
            ],
            region_bad_sectors: vec![("region0".into(), 8), ("region1".into(), 0)],
            ..MediaReport::default()
        };
        let bad = self.bad.lock().unwrap().clone();
        for d in devices {
            if bad.contains(&d.id.to_string()) {
                r.devices.insert(
                    d.path.clone(),
                    format!("the device {} has 8 bad 512-byte sectors", d.path),
                );
            }
        }
        Ok(r)
    }
}

fn fake(dir: &std::path::Path) -> Arc<FakeMediaManager> {
    let sim = NamespaceManager::sim(&[4 << 30], dir.join("sim.json")).unwrap();
    Arc::new(FakeMediaManager {
        inner: Arc::new(sim),
        bad: Mutex::new(Vec::new()),
    })
}

async fn conditions(c: &mut Clients) -> Vec<(String, bool, String)> {
    let mut out: Vec<(String, bool, String)> = entries(c)
        .await
        .into_iter()
        .map(|e| {
            let v = e.volume.unwrap();
            let cond = e.status.unwrap().volume_condition.unwrap();
            (v.volume_id, cond.abnormal, cond.message)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_media_volumes_on_bad_blocks_report_an_abnormal_condition() {
    let dir = tempfile::tempdir().unwrap();
    let manager = fake(dir.path());
    let mut c = serve_manager(&dir.path().join("first"), manager.clone()).await;
    let bad = c
        .controller
        .create_volume(create_req("bad-one", 64 << 20))
        .await
        .unwrap();
    let bad_id = bad.into_inner().volume.unwrap().volume_id;
    let good = c
        .controller
        .create_volume(create_req("good-one", 64 << 20))
        .await
        .unwrap();
    let good_id = good.into_inner().volume.unwrap().volume_id;
    manager.bad.lock().unwrap().push(bad_id.clone());

    // A driver reads media health when it starts and on each pass over its devices.
    let mut c = serve_manager(&dir.path().join("second"), manager).await;
    let got = conditions(&mut c).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let bad_row = got
        .iter()
        .find(|r| r.0 == bad_id)
        .expect("bad volume listed");
    assert!(bad_row.1, "{bad_row:?}");
    assert!(
        bad_row.2.contains(&bad_id) && bad_row.2.contains("8 bad 512-byte sectors"),
        "{bad_row:?}"
    );
    let good_row = got
        .iter()
        .find(|r| r.0 == good_id)
        .expect("good volume listed");
    assert!(!good_row.1, "{good_row:?}");

    let one = c
        .controller
        .controller_get_volume(ControllerGetVolumeRequest {
            volume_id: bad_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let cond = one.status.unwrap().volume_condition.unwrap();
    assert!(
        cond.abnormal && cond.message.contains("bad 512-byte sectors"),
        "{cond:?}"
    );
}

#[test]
fn fake_media_gauges_carry_dimm_health_and_bad_sectors() {
    let dir = tempfile::tempdir().unwrap();
    let report = fake(dir.path()).media(&[]).unwrap();
    let m = pmem_csi::metrics::Metrics::new();
    m.set_media(&report);
    let text = m.render();
    for line in [
        "pmem_csi_dimm_health_state{dimm=\"nmem0\"} 2",
        "pmem_csi_dimm_unsafe_shutdowns{dimm=\"nmem0\"} 3",
        "pmem_csi_dimm_temperature_celsius{dimm=\"nmem0\"} 41.5",
        "pmem_csi_region_bad_sectors{region=\"region0\"} 8",
        "pmem_csi_region_bad_sectors{region=\"region1\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // A DIMM without SMART has no health series rather than a made-up value.
    assert!(!text.contains("dimm=\"nmem1\""), "{text}");
}
