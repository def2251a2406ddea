//! `medanchor.toml`: every option of `up` (and the global `log_format`) in
//! one file, overridable by `MEDANCHOR_*` environment variables, both
//! overridden by the command line; plus what only the file holds (the
//! anomaly rules' thresholds, `[anomaly]`).
//!
//! Keys are the options' long names in snake case (`api_bind`,
//! `backup_every_secs`, `storage_price = ["STANDARD=0.02"]`); a variable
//! is `MEDANCHOR_` and the name in upper case (`MEDANCHOR_API_BIND`; a
//! repeatable option's values separated by commas). An unknown key is an
//! error, not a silent default. The file is `--config`, else
//! `$MEDANCHOR_CONFIG`, else `./medanchor.toml` when it exists.
//! `medanchor config check` shows every setting and where it came from,
//! never a secret's value.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory};
use medanchor_ops::anomaly::Rules;

/// The file read when none is named and it exists.
pub const DEFAULT_FILE: &str = "medanchor.toml";
/// The variable naming the file.
pub const FILE_VAR: &str = "MEDANCHOR_CONFIG";
/// Secrets read only from the environment, shown as set or not.
const SECRET_VARS: &[&str] = &["MEDANCHOR_METRICS_TOKEN", "AWS_SECRET_ACCESS_KEY", "MEDANCHOR_API_TOKEN"];

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    CommandLine,
    /// A `MEDANCHOR_*` variable.
    Environment,
    /// `medanchor.toml`.
    File,
    /// The built-in default.
    Default,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::CommandLine => "command line",
            Source::Environment => "environment",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// One of `up`'s options, as the file and the environment name it.
#[derive(Debug, Clone)]
struct Opt {
    id: String,
    long: String,
    key: String,
    var: String,
    flag: bool,
    many: bool,
}

/// `up`'s options (flattened groups included) and the global ones.
fn options() -> Vec<Opt> {
    let cli = crate::Cli::command();
    let up = cli.find_subcommand("up").expect("`up` is a subcommand").clone();
    let globals = cli.get_arguments().filter(|a| a.is_global_set()).cloned();
    up.get_arguments()
        .cloned()
        .chain(globals)
        // The file does not name itself.
        .filter(|a| a.get_id() != "config")
        .filter_map(|a| {
            let long = a.get_long()?.to_string();
            let key = long.replace('-', "_");
            let action = a.get_action();
            Some(Opt {
                id: a.get_id().to_string(),
                var: format!("MEDANCHOR_{}", key.to_ascii_uppercase()),
                key,
                long,
                flag: matches!(action, ArgAction::SetTrue | ArgAction::SetFalse),
                many: matches!(action, ArgAction::Append),
            })
        })
        .collect()
}

/// A file's settings: `up`'s options and the anomaly rules.
#[derive(Debug, Default)]
pub struct File {
    /// Where it was read from.
    pub path: Option<PathBuf>,
    values: BTreeMap<String, Vec<String>>,
    /// `[anomaly]`.
    pub anomaly: Rules,
}

fn scalar(key: &str, v: &toml::Value) -> anyhow::Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => bail!("{key}: expected a string, number or boolean, found {}", other.type_str()),
    })
}

impl File {
    /// Reads and checks `path`: every key an option of `up` (or
    /// `[anomaly]`), every value of the right shape.
    pub fn load(path: &Path) -> anyhow::Result<File> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let table: toml::Table = text.parse().with_context(|| format!("{} is not TOML", path.display()))?;
        let opts = options();
        let mut file = File { path: Some(path.to_path_buf()), ..File::default() };
        for (key, value) in table {
            if key == "anomaly" {
                file.anomaly = value.try_into().with_context(|| format!("{}: [anomaly]", path.display()))?;
                continue;
            }
            let Some(opt) = opts.iter().find(|o| o.key == key) else {
                bail!(
                    "{}: unknown key {key:?} (keys are `medanchor up`'s options in snake case, and [anomaly])",
                    path.display()
                );
            };
            let values = match (&value, opt.many) {
                (toml::Value::Array(items), true) => {
                    items.iter().map(|v| scalar(&key, v)).collect::<anyhow::Result<Vec<_>>>()?
                }
                (toml::Value::Array(_), false) => bail!("{}: {key} takes one value, not a list", path.display()),
                (v, _) => vec![scalar(&key, v).with_context(|| path.display().to_string())?],
            };
            if opt.flag && !matches!(values.as_slice(), [v] if v == "true" || v == "false") {
                bail!("{}: {key} is true or false", path.display());
            }
            file.values.insert(opt.key.clone(), values);
        }
        Ok(file)
    }

    /// The file `args` name: `--config`, `$MEDANCHOR_CONFIG`, or
    /// `./medanchor.toml` when it exists.
    pub fn locate(args: &[OsString]) -> Option<PathBuf> {
        let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
        while let Some(a) = it.next() {
            if a == "--config" {
                return it.next().map(PathBuf::from);
            }
            if let Some(p) = a.strip_prefix("--config=") {
                return Some(PathBuf::from(p));
            }
        }
        if let Some(p) = std::env::var_os(FILE_VAR).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        Path::new(DEFAULT_FILE).exists().then(|| PathBuf::from(DEFAULT_FILE))
    }
}

fn as_args(opt: &Opt, values: &[String]) -> Vec<OsString> {
    if opt.flag {
        return if values.iter().any(|v| v == "true" || v == "1") {
            vec![format!("--{}", opt.long).into()]
        } else {
            vec![]
        };
    }
    values.iter().map(|v| OsString::from(format!("--{}={v}", opt.long))).collect()
}

fn env_values(opt: &Opt) -> Option<Vec<String>> {
    let v = std::env::var(&opt.var).ok()?;
    Some(if opt.many {
        v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    } else {
        vec![v]
    })
}

/// The options each source set, for `up`: what the command line gave,
/// then each environment variable for an option it did not, then the
/// file for the rest. Returns the arguments to parse and each option's
/// source.
pub fn resolve(args: Vec<OsString>, file: &File) -> anyhow::Result<(Vec<OsString>, BTreeMap<String, Source>)> {
    let cli = crate::Cli::command();
    let Ok(matches) = cli.try_get_matches_from(args.clone()) else {
        // Let the real parse report the mistake.
        return Ok((args, BTreeMap::new()));
    };
    let Some(("up", up)) = matches.subcommand() else { return Ok((args, BTreeMap::new())) };
    let mut out = args;
    let mut sources = BTreeMap::new();
    for opt in options() {
        // Global options are propagated into the subcommand's matches.
        let given = up.value_source(&opt.id) == Some(ValueSource::CommandLine);
        let source = if given {
            Source::CommandLine
        } else if let Some(values) = env_values(&opt) {
            out.extend(as_args(&opt, &values));
            Source::Environment
        } else if let Some(values) = file.values.get(&opt.key) {
            out.extend(as_args(&opt, values));
            Source::File
        } else {
            Source::Default
        };
        sources.insert(opt.key.clone(), source);
    }
    Ok((out, sources))
}

/// A URL's password replaced (`smtp://user:***@host`).
fn hide_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_string() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return value.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => value.to_string(),
    }
}

/// Whether a setting's value must not be shown.
fn secret(key: &str) -> bool {
    ["secret", "token", "password", "passphrase"].iter().any(|s| key.contains(s))
}

/// `medanchor config check`: the file read and checked, then every
/// setting `up` would start with and where it came from; secrets only as
/// set or not.
pub fn check(file: &File) -> anyhow::Result<()> {
    // `up` as it would start from here: the same resolution, the same parse.
    let (args, sources) = resolve(vec!["medanchor".into(), "up".into()], file)?;
    let cli = crate::Cli::command();
    let matches = cli.try_get_matches_from(&args).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let Some(("up", up)) = matches.subcommand() else { bail!("checking `up`'s options") };
    match &file.path {
        Some(p) => println!("{}: ok", p.display()),
        None => println!("no configuration file (--config, ${FILE_VAR} or ./{DEFAULT_FILE}): built-in defaults"),
    }
    for opt in options() {
        let from = sources.get(&opt.key).copied().unwrap_or(Source::Default);
        let value = if opt.flag {
            up.get_flag(&opt.id).to_string()
        } else {
            up.get_raw(&opt.id)
                .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>().join(","))
                .unwrap_or_default()
        };
        let shown =
            if secret(&opt.key) && !value.is_empty() { "(set, hidden)".to_string() } else { hide_password(&value) };
        println!("  {:<32} {:<40} {}", opt.key, shown, from.name());
    }
    let r = &file.anomaly;
    println!(
        "  [anomaly] distinct {}× (min {}), off-hours < {}% after {}, break-glass {} in {} d, enhanced {}× (min {}), denials {} in {} min, sign-ins {} in {} min",
        r.distinct_factor,
        r.distinct_min,
        r.off_hours_share * 100.0,
        r.off_hours_min_history,
        r.break_glass,
        r.break_glass_days,
        r.enhanced_factor,
        r.enhanced_min,
        r.denials,
        r.denials_window_ms / 60_000,
        r.sign_in_failures,
        r.sign_in_window_ms / 60_000
    );
    for var in SECRET_VARS {
        let set = std::env::var_os(var).is_some_and(|v| !v.is_empty());
        println!("  {var:<32} {}", if set { "(set, hidden)" } else { "(not set)" });
    }
    Ok(())
}
