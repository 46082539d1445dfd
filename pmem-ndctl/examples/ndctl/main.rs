//! `ndctl`: a work-alike of the `ndctl` commands below, built only on pmem-ndctl.
//! It prints what ndctl prints (same JSON keys and values, sizes as numbers).
//!
//! ```text
//! ndctl list [-R] [-N] [-D] [-H] [-M] [-i] [-r REGION]
//! ndctl create-namespace [-r REGION] [-m fsdax|devdax|sector|raw] [-s SIZE] [-n NAME] [-a ALIGN] [-M mem|dev] [-l SECTOR]
//! ndctl create-namespace -f -e NAMESPACE [-m MODE]   (label-less namespaces: converted in place)
//! ndctl destroy-namespace [-f] NAMESPACE|all
//! ndctl init-labels [-f] NMEM...|all
//! ndctl enable-region REGION|all
//! ndctl disable-region REGION|all
//! ```

mod args;
mod health;
mod json;

use args::Args;
use json::J;
use pmem_ndctl::{Context, Error, MapLocation, Mode, NamespaceSpec, Region, Size};
use std::process::ExitCode;

const USAGE: &str = "usage: ndctl <command> [<options>]
  list [-R] [-N] [-D] [-H|--health] [-M|--media-errors] [-i] [-r REGION]
  create-namespace [-r REGION] [-m fsdax|devdax|sector|raw] [-s SIZE] [-n NAME] [-a ALIGN] [-M mem|dev] [-l SECTOR]
  create-namespace -f -e NAMESPACE [-m fsdax|devdax|sector|raw]
  destroy-namespace [-f] NAMESPACE|all
  init-labels [-f] NMEM...|all
  enable-region REGION|all
  disable-region REGION|all";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(129);
    };
    let result = match cmd.as_str() {
        "list" => args::parse(rest, "RNDiHM", "r").and_then(|a| list(&a)),
        "create-namespace" => args::parse(rest, "f", "rmsnaMle").and_then(|a| create(&a)),
        "destroy-namespace" => args::parse(rest, "f", "").and_then(|a| destroy(&a)),
        "init-labels" => args::parse(rest, "f", "").and_then(|a| init_labels(&a)),
        "enable-region" => args::parse(rest, "", "").and_then(|a| xable(&a, true)),
        "disable-region" => args::parse(rest, "", "").and_then(|a| xable(&a, false)),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ndctl {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn err(e: Error) -> String {
    e.to_string()
}

/// `region` matches `ident` as ndctl's filter does: `all`, the name, or the id.
fn region_matches(region: &Region<'_>, ident: Option<&str>) -> bool {
    match ident {
        None | Some("all") => true,
        Some(i) => region.name() == i || i.parse::<u32>().is_ok_and(|id| id == region.id()),
    }
}

fn list(a: &Args) -> Result<(), String> {
    let (mut want_r, mut want_n, want_d, idle) =
        (a.flag('R'), a.flag('N'), a.flag('D'), a.flag('i'));
    let (health, media) = (a.flag('H'), a.flag('M'));
    let filter = a.value('r');
    if let Some(extra) = a.positional.first() {
        return Err(format!("unknown parameter \"{extra}\""));
    }
    if !want_r && !want_n && !want_d {
        want_r = filter.is_some();
        want_n = !want_r;
    }
    let ctx = Context::new().map_err(err)?;
    let mut dimms: Option<Vec<J>> = None;
    let mut regions: Option<Vec<J>> = None;
    let mut namespaces: Option<Vec<J>> = None;
    // ndctl keeps the namespaces of the last listed region as its namespace list: when
    // that region has some, the output is an object (`regions`) rather than an array.
    let mut last_region_has_namespaces = false;
    for bus in ctx.buses() {
        if filter.is_some() && !bus.regions().any(|r| region_matches(&r, filter)) {
            continue;
        }
        if want_d {
            for d in bus.dimms() {
                let in_filtered = filter.is_none()
                    || bus.regions().any(|r| {
                        region_matches(&r, filter) && r.dimms().iter().any(|x| x.name() == d.name())
                    });
                if in_filtered && (idle || d.is_enabled()) {
                    dimms
                        .get_or_insert_with(Vec::new)
                        .push(json::dimm(&d, health));
                }
            }
        }
        for r in bus.regions().filter(|r| region_matches(r, filter)) {
            let mut jregion = None;
            if want_r && (idle || r.is_enabled()) {
                let mappings = want_d.then(|| {
                    let enabled: Vec<String> = bus
                        .dimms()
                        .filter(|d| idle || d.is_enabled())
                        .map(|d| d.name())
                        .collect();
                    r.mappings()
                        .into_iter()
                        .filter(|m| enabled.contains(&m.dimm))
                        .collect()
                });
                jregion = Some(json::region(&r, mappings, media).map_err(err)?);
                last_region_has_namespaces = false;
            }
            if want_n {
                let mut found = Vec::new();
                for ns in r.namespaces().filter(|n| n.is_active() || idle) {
                    let mut j = json::namespace(&ns.info().map_err(err)?, None);
                    health::push_namespace(&mut j, &ns, media);
                    found.push(j);
                }
                if !found.is_empty() {
                    last_region_has_namespaces = true;
                    match &mut jregion {
                        Some(jr) => jr.push("namespaces", J::Arr(found)),
                        None => namespaces.get_or_insert_with(Vec::new).extend(found),
                    }
                }
            }
            if let Some(jr) = jregion {
                regions.get_or_insert_with(Vec::new).push(jr);
            }
        }
    }
    let present = [
        dimms.is_some(),
        regions.is_some(),
        namespaces.is_some() || last_region_has_namespaces,
    ]
    .iter()
    .filter(|p| **p)
    .count();
    let out = if present > 1 {
        let mut o = J::Obj(Vec::new());
        if let Some(d) = dimms {
            o.push("dimms", J::Arr(d));
        }
        let has_regions = regions.is_some();
        if let Some(r) = regions {
            o.push("regions", J::Arr(r));
        }
        if let Some(n) = namespaces.filter(|_| !has_regions) {
            o.push("namespaces", J::Arr(n));
        }
        Some(o)
    } else {
        dimms.or(regions).or(namespaces).map(J::Arr)
    };
    if let Some(o) = out {
        println!("{}", o.pretty());
    }
    Ok(())
}

fn create(a: &Args) -> Result<(), String> {
    if let Some(extra) = a.positional.first() {
        return Err(format!("unknown parameter \"{extra}\""));
    }
    let parse_size = |k: char| -> Result<Option<Size>, String> {
        a.value(k)
            .map(|v| v.parse::<Size>().map_err(|e| e.to_string()))
            .transpose()
    };
    let mode = a
        .value('m')
        .map(|m| m.parse::<Mode>())
        .transpose()
        .map_err(err)?
        .unwrap_or(Mode::Fsdax);
    let map = a
        .value('M')
        .map(|m| m.parse::<MapLocation>())
        .transpose()
        .map_err(err)?;
    let sector_size = a
        .value('l')
        .map(|v| {
            v.parse::<Size>()
                .map_err(|e| e.to_string())
                .and_then(|s| u32::try_from(s.0).map_err(|_| format!("invalid sector size {v}")))
        })
        .transpose()?;
    let mut ctx = Context::new().map_err(err)?;
    if let Some(target) = a.value('e') {
        return reconfigure(&mut ctx, a, target, mode);
    }
    let candidates: Vec<String> = match a.value('r') {
        Some(r) if r != "all" => vec![ctx.region(r).map_err(err)?.name()],
        _ => ctx.regions().map(|r| r.name()).collect(),
    };
    let mut last = None;
    for region in candidates {
        let mut spec = NamespaceSpec::filling(region, mode);
        spec.size = parse_size('s')?;
        spec.name = a.value('n').map(str::to_string);
        spec.align = parse_size('a')?;
        spec.map = map;
        spec.sector_size = sector_size;
        match ctx.create_namespace(&spec) {
            Ok(info) => {
                print_namespace(&ctx, &info);
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .map(err)
        .unwrap_or_else(|| "no region to create a namespace in".into()))
}

/// `-e NAMESPACE`: a label-less namespace given `mode` in place (the only
/// reconfiguration this work-alike does). Like ndctl, an active namespace
/// needs `-f`, and `-f` overwrites whatever it held.
fn reconfigure(ctx: &mut Context, a: &Args, target: &str, mode: Mode) -> Result<(), String> {
    if let Some(k) = ['r', 's', 'n', 'a', 'M', 'l']
        .into_iter()
        .find(|k| a.value(*k).is_some())
    {
        return Err(format!(
            "-{k} does not apply to a label-less namespace (-e)"
        ));
    }
    let ns = ctx.namespace(target).map_err(err)?;
    if !ns.is_label_less() {
        return Err(format!(
            "{}: has labels: destroy it and create a new one",
            ns.name()
        ));
    }
    if ns.is_active() && !a.flag('f') {
        return Err(format!(
            "{} is active, specify --force for re-configuration",
            ns.name()
        ));
    }
    let name = ns.name();
    let info = ctx.convert_label_less(&name, mode, true).map_err(err)?;
    print_namespace(ctx, &info);
    Ok(())
}

/// Prints a namespace as create-namespace does.
fn print_namespace(ctx: &Context, info: &pmem_ndctl::NamespaceInfo) {
    let ns = ctx.namespace(&info.dev).ok();
    let dax_region = ns
        .as_ref()
        .and_then(|n| n.dax())
        .and_then(|d| d.dax_region());
    let mut j = json::namespace(info, dax_region);
    if let Some(ns) = &ns {
        health::push_namespace(&mut j, ns, false);
    }
    println!("{}", j.pretty());
}

fn destroy(a: &Args) -> Result<(), String> {
    let force = a.flag('f');
    let [target] = a.positional.as_slice() else {
        return Err("expected one namespace (or 'all')".into());
    };
    let mut ctx = Context::new().map_err(err)?;
    let names: Vec<String> = if target == "all" {
        ctx.namespaces()
            .filter(|n| n.size() > 0)
            .map(|n| n.name())
            .collect()
    } else {
        vec![ctx.namespace(target).map_err(err)?.name()]
    };
    let mut done = 0;
    let mut failure = None;
    for n in names {
        match ctx.destroy_namespace(&n, force) {
            Ok(()) => done += 1,
            Err(e) => failure = Some(e),
        }
    }
    eprintln!(
        "destroyed {done} namespace{}",
        if done == 1 { "" } else { "s" }
    );
    failure.map_or(Ok(()), |e| Err(err(e)))
}

fn init_labels(a: &Args) -> Result<(), String> {
    let force = a.flag('f');
    if a.positional.is_empty() {
        return Err("expected one or more DIMMs (nmemN, or 'all')".into());
    }
    let mut ctx = Context::new().map_err(err)?;
    let names: Vec<String> = if a.positional.iter().any(|p| p == "all") {
        ctx.dimms().map(|d| d.name()).collect()
    } else {
        a.positional
            .iter()
            .map(|p| ctx.dimm(p).map(|d| d.name()))
            .collect::<Result<_, _>>()
            .map_err(err)?
    };
    let mut done = 0;
    let mut failure = None;
    for n in &names {
        match ctx.init_labels(n, force) {
            Ok(()) => done += 1,
            Err(e) => {
                eprintln!("{e}");
                failure = Some(e);
            }
        }
    }
    eprintln!(
        "initialized {done} nmem{}",
        if done == 1 { "" } else { "s" }
    );
    failure.map_or(Ok(()), |e| Err(err(e)))
}

fn xable(a: &Args, enable: bool) -> Result<(), String> {
    let [target] = a.positional.as_slice() else {
        return Err("expected one region (or 'all')".into());
    };
    let mut ctx = Context::new().map_err(err)?;
    let names: Vec<String> = ctx
        .regions()
        .filter(|r| region_matches(r, Some(target)))
        .map(|r| r.name())
        .collect();
    if names.is_empty() {
        return Err(err(Error::NotFound {
            object: target.clone(),
        }));
    }
    let mut done = 0;
    let mut failure = None;
    for n in &names {
        let r = if enable {
            ctx.enable_region(n)
        } else {
            ctx.disable_region(n)
        };
        match r {
            Ok(()) => done += 1,
            Err(e) => failure = Some(e),
        }
    }
    let verb = if enable { "enabled" } else { "disabled" };
    eprintln!("{verb} {done} region{}", if done == 1 { "" } else { "s" });
    failure.map_or(Ok(()), |e| Err(err(e)))
}
