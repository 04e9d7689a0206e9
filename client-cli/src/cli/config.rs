//! `$FIELDSYNC_HOME/config.toml`: defaults for flags, so a device or an ops machine need not
//! repeat them. A flag wins over its environment variable, which wins over the file:
//!
//! ```toml
//! server = "https://fieldsync.example.org"   # --server of enroll and login
//! json = false                               # --json
//! unlock_for = "8h"                          # --for of unlock
//! ca_cert = "/etc/fieldsync/ca.pem"          # --ca-cert
//! ```

use std::path::{Path, PathBuf};

use fieldsync_client::exit::Failure;
use serde::Deserialize;

/// The file's settings; every key is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Option<String>,
    pub json: Option<bool>,
    pub unlock_for: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// Where it was read from, for messages.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl Config {
    /// The file in `home`, or no settings when there is none. A file that cannot be read or
    /// parsed is an error naming the file and what is wrong, never silently ignored.
    pub fn load(home: &Path) -> Result<Config, Failure> {
        let path = home.join("config.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(Failure::Invalid(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            Failure::Invalid(format!(
                "{} is not a valid fieldsync configuration: {}; the keys are server, json, unlock_for and ca_cert",
                path.display(),
                e.message()
            ))
        })?;
        config.path = Some(path);
        Ok(config)
    }

    /// The server address: the flag (or FIELDSYNC_SERVER), else the file's, checked as the
    /// flag is.
    pub fn server(&self, flag: Option<String>) -> Result<String, Failure> {
        if let Some(server) = flag {
            return Ok(server);
        }
        match &self.server {
            Some(server) => super::enroll::server_url(server).map_err(|e| {
                Failure::Invalid(format!("server in {}: {e}", self.shown_path()))
            }),
            None => Err(Failure::Invalid(
                "no server given; pass --server URL, set FIELDSYNC_SERVER, or write server = \"URL\" in $FIELDSYNC_HOME/config.toml".into(),
            )),
        }
    }

    /// How long an unlock lasts: the flag, else the file's, else 8 hours.
    pub fn unlock_for(&self, flag: Option<u64>) -> Result<u64, Failure> {
        if let Some(seconds) = flag {
            return Ok(seconds);
        }
        match &self.unlock_for {
            Some(text) => super::parse_seconds(text)
                .map_err(|e| Failure::Invalid(format!("unlock_for in {}: {e}", self.shown_path()))),
            None => Ok(8 * 3600),
        }
    }

    fn shown_path(&self) -> String {
        self.path
            .as_deref()
            .map_or_else(|| "config.toml".to_owned(), |p| p.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, Result<Config, Failure>) {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("config.toml"), text).expect("write");
        let config = Config::load(dir.path());
        (dir, config)
    }

    #[test]
    fn the_file_gives_defaults_and_flags_win() {
        let (_d, config) = write("server = \"http://127.0.0.1:8470\"\nunlock_for = \"30m\"\n");
        let config = config.expect("valid");
        assert_eq!(
            config.server(None).expect("server"),
            "http://127.0.0.1:8470"
        );
        assert_eq!(
            config.server(Some("http://other:1".into())).expect("flag"),
            "http://other:1"
        );
        assert_eq!(config.unlock_for(None).expect("period"), 1800);
        assert_eq!(config.unlock_for(Some(60)).expect("flag"), 60);
        let none = Config::load(tempfile::tempdir().expect("dir").path()).expect("no file");
        assert_eq!(none.unlock_for(None).expect("default"), 8 * 3600);
        assert!(
            none.server(None)
                .unwrap_err()
                .to_string()
                .contains("--server")
        );
    }

    #[test]
    fn a_bad_file_is_refused_with_its_name_and_the_keys() {
        let (_d, config) = write("sever = \"http://x\"\n");
        let err = config.unwrap_err().to_string();
        assert!(
            err.contains("config.toml") && err.contains("sever"),
            "{err}"
        );
        let (_d, config) = write("unlock_for = \"soon\"\n");
        let err = config
            .expect("parses")
            .unlock_for(None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unlock_for") && err.contains("soon"), "{err}");
    }
}
