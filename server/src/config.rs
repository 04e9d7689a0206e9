//! The configuration file (`--config FILE` or `FIELDSYNC_CONFIG`): TOML whose keys are the
//! long flags of `serve` without their dashes (`max-body = 1048576`; `max_body` also works).
//!
//! A flag wins over its `FIELDSYNC_*` variable, which wins over the file, which wins over the
//! built-in default. The file's values become the flags' defaults before the command line is
//! parsed, so clap resolves that order itself, and every default stays written once: on its
//! flag. The file is checked whole before anything starts: an unknown key or a value its
//! flag would refuse is an error naming the file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// Flags that are not settings, so not keys of the file.
const NOT_SETTINGS: &[&str] = &["config", "print-config", "help", "version"];

/// A file's settings: key (as its flag, without dashes) to values.
#[derive(Debug, Default)]
pub struct FileSettings {
    pub path: Option<PathBuf>,
    values: BTreeMap<String, Vec<String>>,
}

impl FileSettings {
    /// Whether the file gave `key`.
    pub fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }
}

/// The file named by `--config` in `argv`, else by `FIELDSYNC_CONFIG`, if any.
fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("FIELDSYNC_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Read the configuration file (if one is named) and make its values the defaults of
/// `cmd`'s flags. `serve` is the command whose flags are the file's keys; other
/// subcommands take the keys they share with it (the data directory, the database).
pub fn with_file(cmd: Command, argv: &[OsString]) -> Result<(Command, FileSettings), String> {
    let Some(path) = config_path(argv) else {
        return Ok((cmd, FileSettings::default()));
    };
    let serve = cmd
        .find_subcommand("serve")
        .ok_or("no serve command")?
        .clone();
    let file = read(&path, &serve)?;
    let cmd = apply(cmd, &file.values);
    Ok((cmd, file))
}

fn read(path: &Path, serve: &Command) -> Result<FileSettings, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the configuration file {shown}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{shown} is not valid TOML: {}", e.message()))?;
    let settings: BTreeMap<&str, &Arg> = serve
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| (l, a)))
        .filter(|(l, _)| !NOT_SETTINGS.contains(l))
        .collect();
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some(arg) = settings.get(name.as_str()) else {
            let hint = closest(&name, settings.keys().copied())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "{shown}: unknown setting `{key}`{hint}; the settings are the flags of `fieldsync-server serve --help`, without their dashes"
            ));
        };
        let list = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| scalar(&key, v, &shown.to_string()))
                .collect::<Result<Vec<_>, _>>()?,
            v => vec![scalar(&key, v, &shown.to_string())?],
        };
        check(arg, &list).map_err(|e| format!("{shown}: `{key}`: {e}"))?;
        values.insert(name, list);
    }
    Ok(FileSettings {
        path: Some(path.to_owned()),
        values,
    })
}

fn scalar(key: &str, value: toml::Value, shown: &str) -> Result<String, String> {
    Ok(match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => {
            return Err(format!(
                "{shown}: `{key}` is a {}; give a string, a number or a list of them",
                other.type_str()
            ));
        }
    })
}

/// Run `values` through the flag's own parser, alone, so that a bad value is reported as
/// the file's.
fn check(arg: &Arg, values: &[String]) -> Result<(), String> {
    let long = arg.get_long().unwrap_or_default();
    let probe = Command::new("fieldsync-server").no_binary_name(true).arg(
        Arg::new("value")
            .long(long.to_owned())
            .value_parser(arg.get_value_parser().clone())
            .action(ArgAction::Append),
    );
    if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
        return Err("takes one value, not a list".into());
    }
    let mut argv = Vec::new();
    for v in values {
        argv.push(format!("--{long}"));
        argv.push(v.clone());
    }
    probe.try_get_matches_from(argv).map(|_| ()).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        first.trim_start_matches("error: ").to_owned()
    })
}

/// Make `values` the defaults of the flags of `cmd` and of its subcommands.
fn apply(cmd: Command, values: &BTreeMap<String, Vec<String>>) -> Command {
    let cmd = cmd.mut_args(|a| match a.get_long().and_then(|l| values.get(l)) {
        Some(v) => a.default_values(v.clone()),
        None => a,
    });
    cmd.mut_subcommands(|sc| apply(sc, values))
}

/// The known key nearest to a mistyped one, if any is near.
fn closest<'a>(typed: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(typed, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// `serve --print-config`: every setting, its effective value and where it came from, as
/// TOML a file could hold, with secrets redacted.
pub fn print(cmd: &Command, matches: &ArgMatches, file: &FileSettings) -> String {
    let from_file = file
        .path
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    let mut out = String::from(
        "# fieldsync-server serve: effective settings (a flag beats its FIELDSYNC_ variable, which beats the file, which beats the default)\n",
    );
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if NOT_SETTINGS.contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => arg.get_env().map_or_else(
                || "environment".into(),
                |e| format!("env {}", e.to_string_lossy()),
            ),
            Some(ValueSource::DefaultValue) if file.has(long) => format!("file {from_file}"),
            _ => "default".to_owned(),
        };
        let shown: Vec<String> = raw.iter().map(|v| toml_value(&redact(long, v))).collect();
        let line = match shown.len() {
            0 => format!("# {long} = (not set)"),
            1 if !matches!(arg.get_action(), ArgAction::Append) => {
                format!("{long} = {}", shown[0])
            }
            _ => format!("{long} = [{}]", shown.join(", ")),
        };
        out.push_str(&format!("{line:<60} # {source}\n"));
    }
    out
}

/// A value as TOML: numbers and booleans bare, anything else a quoted string.
fn toml_value(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v == "true" || v == "false" {
        v.to_owned()
    } else {
        serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
    }
}

/// Passwords never printed: the one a database URL may hold, and any setting named for one.
fn redact(key: &str, value: &str) -> String {
    if key == "database" {
        crate::storage::postgres::redact(value)
    } else if ["password", "secret", "token"]
        .iter()
        .any(|w| key.contains(w))
    {
        "***".to_owned()
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_miss_is_suggested() {
        let keys = ["max-body", "max-exports", "listen", "login-attempts"];
        assert_eq!(closest("max-bdy", keys.into_iter()), Some("max-body"));
        assert_eq!(closest("lisen", keys.into_iter()), Some("listen"));
        assert_eq!(closest("colour", keys.into_iter()), None);
    }
}
