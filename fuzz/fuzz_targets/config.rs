//! The config parser (`config::Settings`): a TOML file, or, when the first byte is `$`,
//! environment variables (`TURNTABLE_<KEY>=value` lines). Checked beyond not panicking:
//! settings read from a file, written back as TOML (`Settings::to_toml`, what
//! `check-config` prints), read back the same; resolving them (the defaults filled in,
//! every check run) and building each layer's settings from the result does not panic.
//! (Host names are not resolved while fuzzing: see `SettingType for SocketAddr`.)
#![no_main]

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use turntable::config::Settings;

/// The lines of `toml` that set something (secrets and unset settings are comments).
fn set_lines(toml: &str) -> Vec<&str> {
    toml.lines().filter(|l| !l.starts_with('#')).collect()
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let read = match text.strip_prefix('$') {
        Some(env) => {
            let vars: HashMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
            Settings::from_env(|name| vars.get(name).map(OsString::from))
        }
        None => Settings::from_toml(path, text),
    };
    let Ok(settings) = read else {
        return;
    };
    let written = settings.to_toml();
    let again = Settings::from_toml(path, &written)
        .unwrap_or_else(|e| panic!("{written}\ndoes not read back: {e}"));
    assert_eq!(set_lines(&again.to_toml()), set_lines(&written));
    if let Ok(config) = settings.resolve() {
        let _ = config.settings().to_toml();
        let _ = (
            config.dialect_settings(),
            config.limits(),
            config.placement(),
        );
        let _ = (config.cluster_settings(), config.hook_settings());
        let _ = (config.webhook_settings(), config.auth());
    }
});
