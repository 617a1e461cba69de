//! The command line: each setting's flag (from its declaration's [`Spec`]) and the
//! [`Flags`] clap collects them into.

use super::*;

/// A setting as declared: what its flag, variable and `--help` line are made of.
#[derive(Debug)]
pub struct Spec {
    /// The TOML key; the flag and the variable are made from it.
    pub name: &'static str,
    pub value_name: &'static str,
    pub(super) help: &'static [&'static str],
    /// What `--help` shows as the default instead of the default's own form.
    pub(super) default_text: Option<&'static str>,
    /// The environment variable, where it is not `TURNTABLE_<NAME>`.
    pub(super) env: Option<&'static str>,
    pub(super) arity: Arity,
}

impl Spec {
    /// `--max-message-bytes` for `max_message_bytes`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// `TURNTABLE_MAX_MESSAGE_BYTES` for `max_message_bytes`, unless the setting names
    /// its own (`env "..."` in its declaration).
    pub fn env(&self) -> String {
        match self.env {
            Some(env) => env.to_owned(),
            None => format!("{ENV_PREFIX}{}", self.name.to_ascii_uppercase()),
        }
    }

    /// The help text, one line without a final period (as clap shows doc comments).
    pub fn help(&self) -> String {
        let lines: Vec<&str> = self.help.iter().map(|l| l.trim()).collect();
        let text = lines.join(" ");
        text.strip_suffix('.').unwrap_or(&text).to_owned()
    }

    /// The default as `--help` shows it.
    pub fn default_text(&self, defaults: &Settings) -> String {
        match self.default_text {
            Some(text) => text.to_owned(),
            None => defaults.show(self.name).unwrap_or_default(),
        }
    }

    pub(super) fn arg(&self, defaults: &Settings) -> Arg {
        let help = format!(
            "{} [default: {}] [env: {}]",
            self.help(),
            self.default_text(defaults),
            self.env()
        );
        let arg = Arg::new(self.name)
            .long(self.name.replace('_', "-"))
            .value_name(self.value_name)
            .help(help);
        match self.arity {
            Arity::One => arg.action(ArgAction::Set),
            Arity::Switch => arg
                .action(ArgAction::Set)
                .num_args(0..=1)
                .default_missing_value("true"),
            Arity::Many => arg.action(ArgAction::Append),
        }
    }
}

/// How a setting's flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// `--shards 4`, once.
    One,
    /// `--pin`, `--pin=false`, `--pin false`.
    Switch,
    /// `--worlds a --worlds b,c`: the values add up.
    Many,
}

/// The settings' flags as given on the command line, not yet parsed: a clap [`Args`]
/// to flatten into a command. [`Settings::from_flags`] parses and checks them, so a
/// bad value gets the same one-line error as one from the file or the environment.
///
/// [`Args`]: clap::Args
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub(super) given: Vec<(&'static str, Vec<String>)>,
}

impl clap::FromArgMatches for Flags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Flags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for spec in SETTINGS {
            if let Some(values) = matches.get_many::<String>(spec.name) {
                self.given.retain(|(name, _)| *name != spec.name);
                self.given.push((spec.name, values.cloned().collect()));
            }
        }
        Ok(())
    }
}

impl clap::Args for Flags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = Config::defaults().settings();
        cmd.args(SETTINGS.iter().map(|spec| spec.arg(&defaults)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
