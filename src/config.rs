//! The optional config file: a TOML table keyed by flag names (`deep-storage = "./var/deep"`,
//! `listen = "127.0.0.1:8082"`), given with `--config` or `BRAID_CONFIG`. Its settings become
//! flags of the command being run unless the command line gives the flag or the flag's
//! environment variable is set: flags win over environment variables, which win over the file.
//! Keys that no command knows are errors; keys that only other commands use are left alone, so
//! one file can serve every command.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;

use crate::Cli;

/// The command line with the config file's settings added as flags.
pub fn args_with_config_file(mut args: Vec<OsString>) -> Result<Vec<OsString>> {
    let Some(path) = config_path(&args) else {
        return Ok(args);
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;

    let root = Cli::command();
    let mut command = root.clone();
    for arg in args.iter().skip(1) {
        if let Some(sub) = arg.to_str().and_then(|name| command.find_subcommand(name)) {
            command = sub.clone();
        }
    }
    let known_anywhere = |key: &str| long_flags(&root).contains(&key.to_string());
    let mut added = Vec::new();
    for (key, value) in &table {
        if !known_anywhere(key) {
            bail!("config file {}: no braid command has a --{key} flag", path.display());
        }
        let Some(arg) =
            command.get_arguments().chain(root.get_arguments()).find(|a| a.get_long() == Some(key))
        else {
            continue;
        };
        let flag = format!("--{key}");
        let given =
            args.iter().filter_map(|a| a.to_str()).any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        let from_env = arg.get_env().is_some_and(|name| std::env::var_os(name).is_some());
        if given || from_env {
            continue;
        }
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for value in values {
            match value {
                toml::Value::Boolean(true) => added.push(OsString::from(&flag)),
                toml::Value::Boolean(false) => {}
                toml::Value::String(text) => added.push(format!("{flag}={text}").into()),
                toml::Value::Integer(n) => added.push(format!("{flag}={n}").into()),
                toml::Value::Float(x) => added.push(format!("{flag}={x}").into()),
                other => bail!(
                    "config file {}: {key} is a {}; expected a string, number, boolean or a list of them",
                    path.display(),
                    other.type_str()
                ),
            }
        }
    }
    // Before a "--" that ends the flags, if there is one.
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(at..at, added);
    Ok(args)
}

fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(|p| PathBuf::from(p.as_ref()));
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("BRAID_CONFIG").map(PathBuf::from)
}

/// Every long flag of a command and its subcommands.
fn long_flags(command: &clap::Command) -> Vec<String> {
    let mut flags: Vec<String> =
        command.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect();
    for sub in command.get_subcommands() {
        flags.extend(long_flags(sub));
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn with_config(text: &str, list: &[&str]) -> Result<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("braid.toml");
        std::fs::write(&path, text).unwrap();
        let mut full = args(list);
        full.extend(args(&["--config", path.to_str().unwrap()]));
        Ok(args_with_config_file(full)?
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| !a.ends_with("braid.toml") && a != "--config")
            .collect())
    }

    #[test]
    fn file_settings_fill_in_flags_the_command_line_left_out() {
        let text = "deep-storage = \"./var/deep\"\nlisten = \"127.0.0.1:9000\"\nrate = 10\n";
        let got = with_config(text, &["braid", "serve", "--listen", "127.0.0.1:1"]).unwrap();
        // --listen from the command line wins; rate belongs to quickstart only.
        assert_eq!(got, ["braid", "serve", "--listen", "127.0.0.1:1", "--deep-storage=./var/deep"]);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = with_config("deep-storag = \"x\"\n", &["braid", "serve"]).unwrap_err().to_string();
        assert!(err.contains("no braid command has a --deep-storag flag"), "{err}");
    }
}
