//! ndctl-style options: combined short flags (`-RND`), values as `-r X`, `-rX`, `--region=X` or `--region X`.

/// Parsed options of one command.
pub struct Args {
    flags: Vec<char>,
    values: Vec<(char, String)>,
    /// Arguments that are not options.
    pub positional: Vec<String>,
}

impl Args {
    /// Whether flag `c` was given.
    pub fn flag(&self, c: char) -> bool {
        self.flags.contains(&c)
    }

    /// The last value given for option `c`.
    pub fn value(&self, c: char) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
    }
}

/// The short letter of a long option name.
fn short_of(long: &str) -> Option<char> {
    Some(match long {
        "regions" => 'R',
        "namespaces" => 'N',
        "dimms" => 'D',
        "idle" => 'i',
        "region" => 'r',
        "mode" => 'm',
        "size" => 's',
        "name" => 'n',
        "align" => 'a',
        "map" => 'M',
        "sector-size" => 'l',
        "force" => 'f',
        "reconfig" => 'e',
        "health" => 'H',
        "media-errors" => 'M',
        _ => return None,
    })
}

/// Parses `args` given the command's boolean flags and valued options.
pub fn parse(args: &[String], flags: &str, valued: &str) -> Result<Args, String> {
    let mut out = Args {
        flags: Vec::new(),
        values: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let c = short_of(name).filter(|c| flags.contains(*c) || valued.contains(*c));
            let c = c.ok_or_else(|| format!("unknown option '--{name}'"))?;
            if valued.contains(c) {
                let v = inline
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("option '--{name}' needs a value"))?;
                out.values.push((c, v));
            } else {
                out.flags.push(c);
            }
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (i, c) in shorts.char_indices() {
                if valued.contains(c) {
                    let rest = &shorts[i + c.len_utf8()..];
                    let v = if rest.is_empty() {
                        it.next().cloned()
                    } else {
                        Some(rest.to_string())
                    };
                    out.values
                        .push((c, v.ok_or_else(|| format!("option '-{c}' needs a value"))?));
                    break;
                } else if flags.contains(c) {
                    out.flags.push(c);
                } else {
                    return Err(format!("unknown option '-{c}'"));
                }
            }
        } else {
            out.positional.push(a.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn combined_flags_and_values() {
        let a = parse(&v(&["-RNDi", "-r", "region1"]), "RNDi", "r").unwrap();
        assert!(a.flag('R') && a.flag('N') && a.flag('D') && a.flag('i'));
        assert_eq!(a.value('r'), Some("region1"));
        let a = parse(
            &v(&["-rregion0", "--size=256M", "--mode", "devdax", "x"]),
            "",
            "rsm",
        )
        .unwrap();
        assert_eq!(
            (a.value('r'), a.value('s'), a.value('m')),
            (Some("region0"), Some("256M"), Some("devdax"))
        );
        assert_eq!(a.positional, vec!["x".to_string()]);
        assert!(parse(&v(&["-X"]), "R", "").is_err());
        assert!(parse(&v(&["-r"]), "", "r").is_err());
    }
}
